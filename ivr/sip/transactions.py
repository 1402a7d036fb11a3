"""The SIP transaction layer, sans-IO (RFC 3261 §17 and §18, RFC 6026).

Theory of operation
-------------------
``TransactionLayer`` holds every live client and server transaction and
routes what comes in to the one it belongs to. The asyncio transport parses
a datagram or a framed TCP message, calls ``receive(message, source, now)``
and carries out what comes back: ``Transmit`` orders (the bytes are ready)
and facts for the transaction user (TU): ``RequestReceived``,
``ResponseReceived``, ``AckReceived``, ``TransactionTimedOut``,
``TransportError``, ``Terminated``. The TU answers with ``respond`` and sends
with ``request``; the transport re-arms one timer at ``next_deadline()`` and
calls ``advance(now)`` when it fires. Nothing here reads a clock or touches a
socket, so every test runs on a numeric clock.

Matching (§17.1.3, §17.2.3). A response goes to the client transaction
whose branch and method equal its top Via branch and CSeq method; one that
matches nothing is dropped (RFC 6026 §8.9: the 2xx retransmissions a UAC must
ACK reach it through the INVITE's Accepted state instead). A request goes to
the server transaction keyed by its top Via branch, sent-by and method, an
ACK looking for its INVITE. A request that matches nothing starts a
transaction, except an ACK, which is passed up as ``AckReceived`` (the ACK for
a 2xx is a transaction of its own, for the dialog). A CANCEL starts a
non-INVITE transaction and names the INVITE transaction it matches
(``RequestReceived.cancels``), for the TU to answer 487 there (§9.2).

RFC 2543 requests (a branch without the magic cookie, or none) are matched
too, by a digest of the Request-URI, Call-ID, From tag, CSeq number and top
Via, the fields §17.2.3 lists. The To tag is left out, which lets the ACK of a
failure find its INVITE without remembering the tag we put in the response.

Arrival (§18.2.1, RFC 3581 §4). A new request's top Via gets ``received``
when its sent-by host is not the address it came from, and ``rport`` filled
in when the client asked for it, so that responses built from it by
``response_to`` route back. Over UDP responses go to the source address, at
the source port when rport was asked for, else at the sent-by port; over TCP
they go back on the connection the request came in on (the same ``Peer``).

Memory. A transaction is dropped the moment it terminates, and its timers
with it. Server transactions are capped (``max_server_transactions``): past
the cap a new request is answered 503 with Retry-After, statelessly, and
never reaches the TU; one the TU never answers lives on (an INVITE may ring
for minutes), so the TU must answer every request it is given. Client
transactions end by timer B or F at the latest, except an INVITE with a
provisional response, which waits for its final one until the TU cancels it
(``cancel``; then 64*T1 at most, §9.1).
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass, replace

from ivr.sip.client_transactions import ClientState, ClientTransaction, cancel_request
from ivr.sip.fields import BRANCH_MAGIC_COOKIE, Via
from ivr.sip.message import Message, Request, Response, response_to
from ivr.sip.server_transactions import ServerState, ServerTransaction
from ivr.sip.timers import Schedule, TimerName, Timers
from ivr.sip.transaction_outputs import (
    DEFAULT_PORT,
    AckReceived,
    InvalidTransition,
    Output,
    Peer,
    RequestReceived,
    ResponseReceived,
    Role,
    Terminated,
    TransactionKey,
    TransactionTimedOut,
    Transmit,
    TransportError,
    TransportName,
)

DEFAULT_MAX_SERVER_TRANSACTIONS = 10_000
_LEGACY_PREFIX = "rfc2543."  # never starts with the magic cookie, so never equals a real branch


def new_branch() -> str:
    """A fresh Via branch: the magic cookie and 96 random bits (RFC 3261 §8.1.1.7)."""
    return BRANCH_MAGIC_COOKIE + secrets.token_hex(12)


def _legacy_branch(request: Request, via: Via, cseq_number: int) -> str:
    """The key of an RFC 2543 request: a digest of what §17.2.3 compares, bar the To tag."""
    sender = request.from_address
    parts = (
        str(request.uri),
        request.call_id or "",
        (sender.tag if sender is not None else None) or "",
        str(cseq_number),
        str(via),
    )
    digest = hashlib.blake2s("\n".join(parts).encode("utf-8", "surrogateescape"), digest_size=12)
    return _LEGACY_PREFIX + digest.hexdigest()


def server_key(request: Request) -> TransactionKey | None:
    """The server transaction ``request`` belongs to (§17.2.3); ``None`` without Via or CSeq."""
    via, cseq = request.top_via, request.cseq
    if via is None or cseq is None:
        return None
    branch = via.branch if via.is_rfc3261_branch else None
    return TransactionKey(
        role=Role.SERVER,
        branch=branch or _legacy_branch(request, via, cseq.number),
        method="INVITE" if request.method == "ACK" else request.method,
        sent_by=via.sent_by.lower(),
    )


def client_key(message: Message) -> TransactionKey | None:
    """The client transaction of our request, or of a response to it (§17.1.3)."""
    via, cseq = message.top_via, message.cseq
    if via is None or cseq is None or via.branch is None:
        return None
    return TransactionKey(role=Role.CLIENT, branch=via.branch, method=cseq.method)


def _same_host(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a.lower() == b.lower()  # a name in sent-by never equals an address


def stamp_arrival(request: Request, source: Peer) -> Request:
    """``request`` with received and rport set in its top Via (§18.2.1, RFC 3581 §4)."""
    via = request.top_via
    if via is None:
        return request
    wants_port = via.wants_rport and via.rport is None
    if _same_host(via.host, source.host) and not wants_port:
        return request
    stamped = via.with_param("received", source.host)
    if wants_port:
        stamped = stamped.with_param("rport", str(source.port))
    headers = request.headers.copy()
    vias = headers.get_all("Via")
    headers.replace("Via", [str(stamped), *vias[1:]])
    return replace(request, headers=headers)


def response_destination(via: Via, source: Peer) -> Peer:
    """Where the responses to a request that came from ``source`` go (§18.2.2, RFC 3581 §4)."""
    if source.reliable:
        return source  # the connection the request came on
    port = source.port if via.wants_rport else (via.port or DEFAULT_PORT)
    return Peer(host=source.host, port=port, transport=source.transport)


def via_destination(via: Via) -> Peer:
    """Where a response goes with no request to look at: from the top Via alone (§18.2.2)."""
    transport: TransportName = "tcp" if via.transport == "TCP" else "udp"
    return Peer(
        host=via.received or via.host,
        port=via.rport or via.port or DEFAULT_PORT,
        transport=transport,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionStatistics:
    """A snapshot of the layer for an exporter."""

    server_transactions: int
    client_transactions: int
    timers: int  # armed
    timer_entries: int  # in the schedule's heap, stale ones included: a small multiple of timers
    refused: int  # requests answered 503 past the cap
    stray_responses: int  # responses that matched no client transaction (dropped)


class TransactionLayer:
    """Every live SIP transaction, and the matching that leads a message to its own."""

    __slots__ = (
        "_clients",
        "_max_servers",
        "_refused",
        "_retry_after",
        "_schedule",
        "_secret",
        "_servers",
        "_stray_responses",
        "timers",
    )

    def __init__(
        self,
        *,
        timers: Timers | None = None,
        max_server_transactions: int = DEFAULT_MAX_SERVER_TRANSACTIONS,
        retry_after: int = 5,
    ) -> None:
        if max_server_transactions < 0:
            raise ValueError("max_server_transactions must not be negative")
        self.timers = timers or Timers()
        self._max_servers = max_server_transactions
        self._retry_after = retry_after  # seconds, in the 503 past the cap (§21.5.4)
        self._servers: dict[TransactionKey, ServerTransaction] = {}
        self._clients: dict[TransactionKey, ClientTransaction] = {}
        self._schedule: Schedule[TransactionKey, TimerName] = Schedule()
        self._secret = secrets.token_bytes(16)  # for the To tags of stateless 503s
        self._refused = 0
        self._stray_responses = 0

    def __len__(self) -> int:
        """Live transactions, client and server."""
        return len(self._servers) + len(self._clients)

    def statistics(self) -> TransactionStatistics:
        return TransactionStatistics(
            server_transactions=len(self._servers),
            client_transactions=len(self._clients),
            timers=len(self._schedule),
            timer_entries=self._schedule.entries,
            refused=self._refused,
            stray_responses=self._stray_responses,
        )

    def state(self, key: TransactionKey) -> ServerState | ClientState | None:
        """Where the transaction stands, or ``None`` once it has terminated (or never was)."""
        transaction = self._servers.get(key) if key.role is Role.SERVER else self._clients.get(key)
        return None if transaction is None else transaction.state

    # -- from the network -----------------------------------------------------

    def receive(self, message: Message, source: Peer, now: float) -> list[Output]:
        """A message the transport read from ``source``."""
        if isinstance(message, Response):
            return self._receive_response(message, now)
        return self._receive_request(message, source, now)

    def _receive_response(self, response: Response, now: float) -> list[Output]:
        key = client_key(response)
        transaction = None if key is None else self._clients.get(key)
        if transaction is None:
            self._stray_responses += 1
            return []  # RFC 6026 §8.9: a stray response is dropped
        return self._reaped(transaction, transaction.receive(response, now))

    def _receive_request(self, request: Request, source: Peer, now: float) -> list[Output]:
        key = server_key(request)
        if key is None:
            return []  # no Via or no CSeq: nothing can match it or answer it
        transaction = self._servers.get(key)
        if transaction is not None:
            return self._reaped(transaction, transaction.receive(request, source, now))
        if request.method == "ACK":
            return [AckReceived(request=request, source=source)]
        via = request.top_via
        assert via is not None  # server_key found one
        destination = response_destination(via, source)
        if len(self._servers) >= self._max_servers:
            self._refused += 1
            return [self._overloaded(request, key, source, destination)]
        cancels = None
        if request.method == "CANCEL":  # §9.2: the INVITE with the same branch and sent-by
            invite = replace(key, method="INVITE")
            cancels = invite if invite in self._servers else None
        transaction = ServerTransaction(
            key=key,
            request=stamp_arrival(request, source),
            source=source,
            destination=destination,
            timers=self.timers,
            schedule=self._schedule,
        )
        self._servers[key] = transaction
        return transaction.start(cancels=cancels)

    def _overloaded(
        self, request: Request, key: TransactionKey, source: Peer, destination: Peer
    ) -> Transmit:
        # §8.2.7: a stateless UAS gives a retransmission the same To tag as the original.
        tag = hashlib.blake2s(repr(key).encode(), digest_size=8, key=self._secret).hexdigest()
        response = response_to(
            stamp_arrival(request, source),
            503,
            to_tag=tag,
            headers=[("Retry-After", str(self._retry_after))],
        )
        return Transmit(message=response, destination=destination)

    # -- from the TU ----------------------------------------------------------

    def request(self, request: Request, destination: Peer, now: float) -> list[Output]:
        """Start a client transaction for ``request``; an ACK is just sent (it has none).

        The request's top Via must carry a branch of ours (``new_branch()``):
        it names the transaction, and responses find it by that.
        """
        if request.method == "ACK":
            return [Transmit(message=request, destination=destination)]  # §13.2.2.4
        via, cseq = request.top_via, request.cseq
        if via is None or not via.is_rfc3261_branch:
            raise ValueError("a request needs a top Via with an RFC 3261 branch")
        if cseq is None or cseq.method != request.method:
            raise ValueError("a request needs a CSeq with its own method")
        key = client_key(request)
        assert key is not None
        if key in self._clients:
            raise ValueError(f"branch {via.branch} is already in use for {request.method}")
        transaction = ClientTransaction(
            key=key,
            request=request,
            destination=destination,
            timers=self.timers,
            schedule=self._schedule,
        )
        self._clients[key] = transaction
        if request.method == "CANCEL":
            invite = self._clients.get(replace(key, method="INVITE"))
            if invite is not None:
                invite.cancelled(now)
        return self._reaped(transaction, transaction.start(now))

    def respond(
        self, transaction: TransactionKey | Request, response: Response, now: float
    ) -> list[Output]:
        """Send the TU's ``response`` in the server transaction named by key or request.

        A response out of turn (a second final response) raises
        ``InvalidTransition``. Once the transaction is over, a 2xx to an INVITE
        (the dialog's retransmission, RFC 6026 §8.7) is sent statelessly to
        where its Via says; anything else is dropped, since the peer has
        already been told (timeout, transport error) or given up.
        """
        key = transaction if isinstance(transaction, TransactionKey) else server_key(transaction)
        if key is None or key.role is not Role.SERVER:
            raise ValueError("respond() takes a server transaction's key or its request")
        cseq = response.cseq
        if cseq is None or cseq.method != key.method:
            raise ValueError(f"a response to {key.method} needs a CSeq for {key.method}")
        server = self._servers.get(key)
        if server is None:
            via = response.top_via
            if key.method == "INVITE" and 200 <= response.status < 300 and via is not None:
                return [Transmit(message=response, destination=via_destination(via))]
            return []
        return self._reaped(server, server.respond(response, now))

    def cancel(self, key: TransactionKey, now: float) -> list[Output]:
        """Send a CANCEL for our INVITE ``key`` in a new client transaction (§9.1).

        Nothing is sent when the INVITE has no provisional response yet (§9.1
        says to wait for one: the TU calls again after it) or is already over.
        If no final response follows within 64*T1, the INVITE times out
        (§9.1), so a peer that never answers 487 cannot keep it alive.
        """
        invite = self._clients.get(key)
        if invite is None or not invite.invite or invite.state is not ClientState.PROCEEDING:
            return []
        cancel = cancel_request(invite.request)
        if client_key(cancel) in self._clients:
            return []  # already cancelled
        return self.request(cancel, invite.destination, now)

    def transport_failed(self, key: TransactionKey, now: float) -> list[Output]:
        """The adapter could not send a message of ``key`` (ICMP error, TCP reset…)."""
        transaction = self._servers.get(key) if key.role is Role.SERVER else self._clients.get(key)
        if transaction is None:
            return []
        return self._reaped(transaction, transaction.transport_failed(now))

    # -- time -----------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When ``advance`` must next be called, or ``None`` when no timer is armed."""
        return self._schedule.next_deadline()

    def advance(self, now: float) -> list[Output]:
        """Fire every timer due at ``now``, earliest first."""
        outputs: list[Output] = []
        while (due := self._schedule.pop_due(now)) is not None:
            key, timer = due
            transaction = (
                self._servers.get(key) if key.role is Role.SERVER else self._clients.get(key)
            )
            if transaction is not None:
                outputs += self._reaped(transaction, transaction.timer_fired(timer, now))
        return outputs

    def _reaped(
        self, transaction: ServerTransaction | ClientTransaction, outputs: list[Output]
    ) -> list[Output]:
        """``outputs``, once ``transaction`` is forgotten if it has just terminated."""
        state = transaction.state
        if state is ServerState.TERMINATED or state is ClientState.TERMINATED:
            table = self._servers if transaction.key.role is Role.SERVER else self._clients
            table.pop(transaction.key, None)
            self._schedule.cancel_all(transaction.key)
        return outputs


__all__ = [
    "DEFAULT_MAX_SERVER_TRANSACTIONS",
    "AckReceived",
    "ClientState",
    "InvalidTransition",
    "Output",
    "Peer",
    "RequestReceived",
    "ResponseReceived",
    "Role",
    "ServerState",
    "Terminated",
    "TransactionKey",
    "TransactionLayer",
    "TransactionStatistics",
    "TransactionTimedOut",
    "Transmit",
    "TransportError",
    "cancel_request",
    "client_key",
    "new_branch",
    "response_destination",
    "server_key",
    "stamp_arrival",
    "via_destination",
]
