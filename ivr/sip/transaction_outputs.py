"""What the transaction layer is given and gives back: peers, keys and outputs.

The vocabulary shared by the client and server transaction machines
(``ivr.sip.client_transactions``, ``ivr.sip.server_transactions``) and the
layer that holds them (``ivr.sip.transactions``), kept apart so that none of
them imports another in a circle.

``Peer`` is an address and a transport: where a message came from or must go.
``TransactionKey`` names one transaction (RFC 3261 §17.1.3, §17.2.3). Outputs
are frozen records: ``Transmit`` is an order for the transport adapter, the
others are facts for the transaction user (TU), in the order they happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from ivr.sip.message import Message, Request, Response, serialize
from ivr.sip.uri import SipUri, Uri

TransportName = Literal["udp", "tcp"]
_TRANSPORTS = frozenset({"udp", "tcp"})
DEFAULT_PORT = 5060  # RFC 3261 §19.1.2, for UDP and TCP alike


class InvalidTransition(AssertionError):
    """The TU asked a transaction for something its state does not allow: a bug, never input."""


class _Enum(Enum):
    """An enum hashed by identity: its members are singletons (transition-table keys)."""

    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True)  # positional too: Peer(host, port, "tcp") reads plainly
class Peer:
    """An address and transport: where a message came from, or where it goes."""

    host: str  # an IP address or a name for the adapter to resolve; IPv6 without brackets
    port: int
    transport: TransportName = "udp"

    def __post_init__(self) -> None:
        if self.transport not in _TRANSPORTS:
            raise ValueError(f"unsupported transport {self.transport!r}")
        if not 0 < self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")

    @property
    def reliable(self) -> bool:
        """Whether the transport delivers or fails by itself, so SIP need not retransmit."""
        return self.transport != "udp"

    @classmethod
    def for_uri(cls, uri: Uri) -> Peer:
        """Where a request for ``uri`` goes, without DNS (RFC 3263 §4 with a literal target).

        ``maddr`` overrides the host (RFC 3261 §19.1.1); the port defaults to
        5060; the transport comes from the ``transport`` parameter, TCP for a
        SIPS URI (we carry no TLS), else UDP. A name is left for the adapter
        to resolve.
        """
        if not isinstance(uri, SipUri):
            raise ValueError(f"cannot send a request to a {uri.scheme}: URI")
        transport = uri.transport or ("tcp" if uri.scheme == "sips" else "udp")
        if transport not in _TRANSPORTS:
            raise ValueError(f"unsupported transport {transport!r}")
        return cls(
            host=uri.maddr or uri.host,
            port=uri.port or DEFAULT_PORT,
            transport="tcp" if transport == "tcp" else "udp",
        )


class Role(_Enum):
    CLIENT = "client"  # we sent the request
    SERVER = "server"  # we received it


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionKey:
    """One transaction: the top Via branch, the method, and for a server the sent-by.

    A client matches a response by branch and CSeq method (§17.1.3); a server
    matches a request by branch, sent-by and method, an ACK counting as its
    INVITE (§17.2.3). A CANCEL shares its INVITE's branch but not its method,
    so it is a transaction of its own. For a request from an RFC 2543 client
    (no magic cookie) the branch is a digest of the fields §17.2.3 compares.
    """

    role: Role
    branch: str
    method: str
    sent_by: str = ""  # the server's view of the client's top Via sent-by, lower case

    @property
    def to_tag(self) -> str:
        """A To tag for our final response to this request: the same for each retransmission."""
        return self.branch.removeprefix("z9hG4bK")[-20:].replace(".", "") or "acd"


# -- outputs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Transmit:
    """Send ``data`` (``message`` serialized) to ``destination``."""

    message: Message
    destination: Peer
    key: TransactionKey | None = None  # report a failure to send with transport_failed(key)
    # Serialized once when left out; a transaction re-sends the same Transmit, bytes and all.
    data: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if not self.data:
            object.__setattr__(self, "data", serialize(self.message))


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived:
    """A new request for the TU, to answer with ``respond(key, ...)``; never a retransmission."""

    request: Request
    key: TransactionKey
    source: Peer
    # For a CANCEL: the INVITE server transaction it matches (RFC 3261 §9.2), or None,
    # in which case the TU should answer 481.
    cancels: TransactionKey | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AckReceived:
    """An ACK no transaction absorbed: for a 2xx, the dialog's to handle (RFC 6026 §7.1)."""

    request: Request
    source: Peer
    key: TransactionKey | None = None  # the INVITE server transaction in Accepted, if any


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived:
    """A response to the TU's request; response retransmissions the TU need not see are absorbed."""

    response: Response
    key: TransactionKey


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimedOut:
    """No answer came in time (timer B, F or H): as a 408 for the TU (RFC 3261 §8.1.3.1)."""

    key: TransactionKey


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportError:
    """The adapter could not send one of this transaction's messages (RFC 3261 §17.1.4, §17.2.4)."""

    key: TransactionKey


@dataclass(frozen=True, slots=True, kw_only=True)
class Terminated:
    """The transaction is over and forgotten; the TU may forget ``key`` too."""

    key: TransactionKey


Output = (
    Transmit
    | RequestReceived
    | AckReceived
    | ResponseReceived
    | TransactionTimedOut
    | TransportError
    | Terminated
)


def is_provisional(response: Response) -> bool:
    return response.status < 200


def is_success(response: Response) -> bool:
    return 200 <= response.status < 300


__all__ = [
    "DEFAULT_PORT",
    "AckReceived",
    "InvalidTransition",
    "Output",
    "Peer",
    "RequestReceived",
    "ResponseReceived",
    "Role",
    "Terminated",
    "TransactionKey",
    "TransactionTimedOut",
    "Transmit",
    "TransportError",
    "TransportName",
]
