"""Outbound legs: our INVITE to a SIP URI (another centre, a customer), from dialling to BYE.

Theory of operation. ``OutboundLegs.place`` opens a ``MediaLeg``, sends an
INVITE with our SDP offer (built by ``invite_with_offer``, which the agents'
phones use too) to the URI given, and returns the leg (``INVITING``). Each
response to that INVITE comes back through ``response``: a provisional one
means it rings (``RINGING``); a 2xx is acknowledged (RFC 3261 §13.2.2.4), its
SDP answer applied to the media, and the leg talks (``TALKING``); a failure,
or no final answer at all (``timed_out``: timer B or a transport error), ends
it (``ENDED``, with the status). ``end`` is our side giving up: a CANCEL while
it rings (RFC 3261 §9.1: only after a provisional response, so one asked for
before any is sent when the first arrives, and a 2xx that crosses it is
acknowledged and then ended with a BYE), a BYE once it talks. The far end's
BYE comes through ``hung_up``. ``OUTBOUND_TRANSITIONS`` is the machine.

What the owner must hear (answered, failed, hung up) goes to the ``report``
callback given to ``place``, once per leg and input; the owner decides what
it means (a site overflow bridges the caller, a callback would ring the
agent). A leg's target is a literal address or a name resolved once with the
system resolver (A/AAAA, no RFC 3263 SRV or NAPTR: not done).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from ivr.media import MediaLeg, Pacer, PortPool
from ivr.sdp import LocalSession, SdpError, SessionDescription
from ivr.sip.dialog_requests import new_request, via_for_contact
from ivr.sip.dialogs import Dialog, DialogId, Dialogs, DialogState
from ivr.sip.errors import ParseError
from ivr.sip.fields import NameAddress, parse_name_address
from ivr.sip.message import Request, Response
from ivr.sip.transaction_outputs import Peer, TransactionKey
from ivr.sip.transactions import Output, TransactionLayer, client_key
from ivr.sip.uri import SipUri, Uri

log = logging.getLogger(__name__)

SDP = "application/sdp"
RESOLVE_SECONDS = 2.0  # a name that takes longer to resolve fails the leg


def invite_with_offer(
    target: Uri,
    *,
    host: str,
    contact: NameAddress,
    sdp: bytes,
    from_user: str = "acd",
    headers: Iterable[tuple[str, str]] = (),
) -> Request:
    """An INVITE to ``target`` carrying our SDP offer, from ``from_user`` at our host."""
    return new_request(
        "INVITE",
        uri=target,
        from_address=parse_name_address(f"<sip:{from_user}@{host}>"),
        to_address=NameAddress(uri=target),
        via=via_for_contact(contact),
        contact=contact,
        headers=[("Content-Type", SDP), *headers],
        body=sdp,
    )


class OutboundState(Enum):
    __hash__ = object.__hash__

    INVITING = "inviting"  # INVITE sent, nothing heard yet
    RINGING = "ringing"  # a provisional response came
    CANCELLING = "cancelling"  # we gave up: CANCEL sent, or owed until a provisional comes
    TALKING = "talking"  # 2xx acknowledged, media configured
    ENDED = "ended"


class OutboundInput(Enum):
    __hash__ = object.__hash__

    PROVISIONAL = "provisional"
    ACCEPTED = "accepted"  # a 2xx
    REFUSED = "refused"  # a final failure, or no final answer (timer B, transport)
    GIVEN_UP = "given_up"  # our side ends it (CANCEL or BYE)
    HUNG_UP = "hung_up"  # their BYE


S, In = OutboundState, OutboundInput
OUTBOUND_TRANSITIONS: Mapping[tuple[OutboundState, OutboundInput], OutboundState] = (
    MappingProxyType(
        {
            (S.INVITING, In.PROVISIONAL): S.RINGING,
            (S.RINGING, In.PROVISIONAL): S.RINGING,
            (S.INVITING, In.ACCEPTED): S.TALKING,
            (S.RINGING, In.ACCEPTED): S.TALKING,
            (S.INVITING, In.REFUSED): S.ENDED,
            (S.RINGING, In.REFUSED): S.ENDED,
            (S.INVITING, In.GIVEN_UP): S.CANCELLING,
            (S.RINGING, In.GIVEN_UP): S.CANCELLING,
            (S.CANCELLING, In.PROVISIONAL): S.CANCELLING,
            (S.CANCELLING, In.GIVEN_UP): S.CANCELLING,
            (S.CANCELLING, In.REFUSED): S.ENDED,  # the 487, or a failure that crossed it
            (S.CANCELLING, In.ACCEPTED): S.ENDED,  # a 2xx that crossed it: ACK, then BYE
            (S.TALKING, In.GIVEN_UP): S.ENDED,
            (S.TALKING, In.HUNG_UP): S.ENDED,
        }
    )
)
del S, In


@dataclass(frozen=True, slots=True, kw_only=True)
class LegAnswered:
    """The far end answered: the leg talks, its media is configured."""

    leg: OutboundLeg


@dataclass(frozen=True, slots=True, kw_only=True)
class LegFailed:
    """The far end refused, never answered, or could not be reached (``status`` None)."""

    leg: OutboundLeg
    status: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LegHungUp:
    """The far end sent BYE."""

    leg: OutboundLeg


LegReport = LegAnswered | LegFailed | LegHungUp


class OutboundLeg:
    """Our INVITE to one URI, its dialog and its media."""

    __slots__ = (
        "destination",
        "dialog",
        "invite",
        "key",
        "media",
        "report",
        "session",
        "state",
        "target",
    )

    def __init__(
        self,
        *,
        target: SipUri,
        invite: Request,
        key: TransactionKey,
        destination: Peer,
        media: MediaLeg,
        session: LocalSession,
        report: Callable[[LegReport], None],
    ) -> None:
        self.target = target
        self.invite = invite
        self.key = key  # the INVITE's client transaction: its responses, its CANCEL
        self.destination = destination
        self.media = media
        self.session = session
        self.report = report
        self.dialog: Dialog | None = None
        self.state = OutboundState.INVITING

    def move(self, given: OutboundInput) -> OutboundState:
        try:
            self.state = OUTBOUND_TRANSITIONS[(self.state, given)]
        except KeyError:
            raise AssertionError(f"{given.value} for an outbound leg {self.state.value}") from None
        return self.state

    @property
    def ringing(self) -> bool:
        return self.state in (OutboundState.INVITING, OutboundState.RINGING)

    def __repr__(self) -> str:
        return f"OutboundLeg({self.target}, {self.state.value})"


class Unreachable(Exception):
    """No leg could be placed: the target's name did not resolve, or no media port is free."""


class OutboundLegs:
    """Every outbound leg we placed, by INVITE transaction and by dialog."""

    def __init__(
        self,
        *,
        host: str,
        transactions: TransactionLayer,
        dialogs: Dialogs,
        send: Callable[[list[Output]], None],
        contact: Callable[[], NameAddress],
        ports: PortPool,
        pacer: Pacer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self._transactions = transactions
        self._dialogs = dialogs
        self._send = send
        self._contact = contact
        self._ports = ports
        self._pacer = pacer
        self._clock = clock
        self._invites: dict[TransactionKey, OutboundLeg] = {}
        self._by_dialog: dict[DialogId, OutboundLeg] = {}

    def __len__(self) -> int:
        return len(self._invites)

    def by_dialog(self, dialog: DialogId) -> OutboundLeg | None:
        return self._by_dialog.get(dialog)

    def _now(self) -> float:
        return self._clock()

    async def place(
        self,
        target: SipUri,
        *,
        report: Callable[[LegReport], None],
        from_user: str = "acd",
        headers: Iterable[tuple[str, str]] = (),
    ) -> OutboundLeg:
        """Send an INVITE with our offer to ``target``; ``Unreachable`` if it cannot go out."""
        destination = await _resolved(Peer.for_uri(target))
        try:
            media = await MediaLeg.open(ports=self._ports, pacer=self._pacer)
        except Exception as error:  # PortsExhausted and socket errors
            raise Unreachable(f"no media port: {error}") from error
        session = LocalSession(address=self.host)
        sdp = session.offer(port=media.port).encode()
        invite = invite_with_offer(
            target,
            host=self.host,
            contact=self._contact(),
            sdp=sdp,
            from_user=from_user,
            headers=headers,
        )
        key = client_key(invite)
        assert key is not None  # new_request gave it a branch of ours
        leg = OutboundLeg(
            target=target,
            invite=invite,
            key=key,
            destination=destination,
            media=media,
            session=session,
            report=report,
        )
        self._invites[key] = leg
        self._send(self._transactions.request(invite, destination, self._now()))
        return leg

    def response(self, response: Response, key: TransactionKey) -> bool:
        """A response to one of our requests: whether it was to one of our legs' INVITEs."""
        leg = self._invites.get(key)
        if leg is None:
            return False
        try:
            dialog = self._dialogs.apply_response(leg.invite, response)
        except ParseError:
            dialog = None
        status = response.status
        if status < 200:
            leg.move(OutboundInput.PROVISIONAL)
            if leg.state is OutboundState.CANCELLING:
                self._send(self._transactions.cancel(leg.key, self._now()))  # §9.1: now we may
            return True
        if status >= 300:
            self._refused(leg, status)
            return True
        if dialog is None:
            return True  # a 2xx of a dialog already ended
        if leg.dialog is not None:  # a retransmitted 2xx: the same ACK again (§13.2.2.4)
            self._request(dialog.ack(leg.invite), leg.destination)
            return True
        leg.dialog = dialog
        self._by_dialog[dialog.id] = leg
        self._request(dialog.ack(leg.invite), leg.destination)
        if leg.move(OutboundInput.ACCEPTED) is OutboundState.ENDED:
            self._bye(dialog, leg.destination)  # it crossed our CANCEL
            self._forget(leg)
            return True
        try:
            leg.media.configure(leg.session.accept(SessionDescription.parse(response.body)))
        except SdpError as error:
            log.warning("%s answered with SDP we cannot use: %s", leg.target, error)
            leg.move(OutboundInput.GIVEN_UP)
            self._bye(dialog, leg.destination)
            self._forget(leg)
            leg.report(LegFailed(leg=leg, status=488))
            return True
        leg.report(LegAnswered(leg=leg))
        return True

    def timed_out(self, key: TransactionKey) -> bool:
        """No final answer to an INVITE (timer B, a transport error); whether it was ours."""
        leg = self._invites.get(key)
        if leg is None:
            return False
        if leg.state is not OutboundState.ENDED:
            self._refused(leg, None)
        return True

    def _refused(self, leg: OutboundLeg, status: int | None) -> None:
        if leg.state is OutboundState.ENDED:
            return
        given_up = leg.state is OutboundState.CANCELLING
        leg.move(OutboundInput.REFUSED)
        self._forget(leg)
        if not given_up:  # not when we cancelled it: the owner knows already
            leg.report(LegFailed(leg=leg, status=status))

    def hung_up(self, leg: OutboundLeg) -> None:
        """The far end sent BYE (already answered 200)."""
        if leg.state is not OutboundState.TALKING:
            return
        leg.move(OutboundInput.HUNG_UP)
        self._forget(leg)
        leg.report(LegHungUp(leg=leg))

    def end(self, leg: OutboundLeg) -> None:
        """Our side ends the leg: CANCEL while it rings, BYE once it talks."""
        if leg.ringing or leg.state is OutboundState.CANCELLING:
            leg.move(OutboundInput.GIVEN_UP)
            self._send(self._transactions.cancel(leg.key, self._now()))
        elif leg.state is OutboundState.TALKING:
            leg.move(OutboundInput.GIVEN_UP)
            if leg.dialog is not None:
                self._bye(leg.dialog, leg.destination)
            self._forget(leg)

    def close_all(self) -> None:
        """The server stops: every leg is let go (CANCEL or BYE), its media closed."""
        for leg in list(self._invites.values()):
            try:
                self.end(leg)
            except Exception:  # stopping anyway: close what can be closed
                log.exception("could not end %s at shutdown", leg)
            leg.media.close()
        self._invites.clear()
        self._by_dialog.clear()

    def _request(self, request: Request, destination: Peer) -> None:
        self._send(self._transactions.request(request, destination, self._now()))

    def _bye(self, dialog: Dialog, destination: Peer) -> None:
        if dialog.state is not DialogState.TERMINATED:
            self._request(dialog.request("BYE"), destination)

    def _forget(self, leg: OutboundLeg) -> None:
        if leg.state is not OutboundState.ENDED:
            return
        leg.media.close()
        self._invites.pop(leg.key, None)
        if leg.dialog is not None:
            self._by_dialog.pop(leg.dialog.id, None)


async def _resolved(peer: Peer) -> Peer:
    """``peer`` with its host as an address: literal already, or resolved once (A/AAAA)."""
    try:
        ipaddress.ip_address(peer.host)
    except ValueError:
        pass
    else:
        return peer
    loop = asyncio.get_running_loop()
    kind = socket.SOCK_DGRAM if peer.transport == "udp" else socket.SOCK_STREAM
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            found = await loop.getaddrinfo(peer.host, peer.port, type=kind)
    except (OSError, TimeoutError) as error:
        raise Unreachable(f"cannot resolve {peer.host}: {error}") from error
    if not found:
        raise Unreachable(f"{peer.host} has no address")
    address = str(found[0][4][0])
    return Peer(address, peer.port, peer.transport)
