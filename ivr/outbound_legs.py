"""Outbound legs: our INVITE to a customer (a call back), from ringing to the end of the talk.

Theory of operation. ``OutboundLegs.dial`` sends an INVITE with our SDP offer
from a new ``MediaLeg`` to a SIP URI (a trunk, from a template such as
``sip:{number}@trunk``, or the Contact of the caller who booked the call
back) for one call of the core, and keeps the leg until it ends. Responses
come back through ``response`` and move the leg's machine
(``OUTBOUND_TRANSITIONS``): a provisional response means it rings, a 2xx is
acknowledged (RFC 3261 §13.2.2.4) and reported as ``Answered``, a failure or
a transaction timeout as ``Failed`` with a reason the core can keep
(``busy``, ``declined``, ``no_answer``, ``unreachable``, ``failed_<status>``).
A customer who does not answer within ``ring_seconds`` is given up on:
``Failed("no_answer")`` at once, and the INVITE cancelled (§9.1; a 2xx that
crosses the CANCEL is acknowledged and ended with a BYE). The customer's BYE
is ``HungUp``; ``end`` lets the leg go from our side (CANCEL while ringing,
BYE once answered), reporting nothing: the core asked for it.

The interface is narrow on purpose (``dial``, ``response``,
``invite_timed_out``, ``by_dialog``, ``hung_up``, ``end``, the timer pair,
``close_all``) so that other outbound calls (a transfer to another site) can
share it. Timers are data: ``next_deadline`` and ``advance(now)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from acd.ids import CallId
from ivr.media import MediaLeg, Pacer, PortPool
from ivr.sdp import LocalSession, SdpError, SessionDescription
from ivr.sip.dialog_requests import new_request, via_for_contact
from ivr.sip.dialogs import Dialog, DialogId, Dialogs, DialogState
from ivr.sip.errors import ParseError
from ivr.sip.fields import NameAddress, parse_name_address
from ivr.sip.message import Request, Response
from ivr.sip.transaction_outputs import Peer, TransactionKey
from ivr.sip.transactions import Output, TransactionLayer, client_key
from ivr.sip.uri import SipUri, parse_uri

log = logging.getLogger(__name__)

SDP = "application/sdp"
DEFAULT_RING_SECONDS = 30.0


class OutboundState(Enum):
    __hash__ = object.__hash__

    INVITING = "inviting"  # INVITE sent, nothing heard yet
    RINGING = "ringing"  # a provisional response came
    CANCELLING = "cancelling"  # given up on, or let go: CANCEL sent or owed
    ANSWERED = "answered"  # 2xx acknowledged
    ENDED = "ended"


class OutboundInput(Enum):
    __hash__ = object.__hash__

    PROVISIONAL = "provisional"
    ACCEPTED = "accepted"  # a 2xx
    REFUSED = "refused"  # a final failure, or no final answer at all (timer B)
    GIVEN_UP = "given_up"  # rang too long, or the core ended the call
    ENDED = "ended"  # a BYE either way


S, In = OutboundState, OutboundInput
OUTBOUND_TRANSITIONS = MappingProxyType(
    {
        (S.INVITING, In.PROVISIONAL): S.RINGING,
        (S.RINGING, In.PROVISIONAL): S.RINGING,
        (S.INVITING, In.ACCEPTED): S.ANSWERED,
        (S.RINGING, In.ACCEPTED): S.ANSWERED,
        (S.INVITING, In.REFUSED): S.ENDED,
        (S.RINGING, In.REFUSED): S.ENDED,
        (S.INVITING, In.GIVEN_UP): S.CANCELLING,
        (S.RINGING, In.GIVEN_UP): S.CANCELLING,
        (S.CANCELLING, In.PROVISIONAL): S.CANCELLING,
        (S.CANCELLING, In.GIVEN_UP): S.CANCELLING,
        (S.CANCELLING, In.REFUSED): S.ENDED,  # the 487, or a failure that crossed the CANCEL
        (S.CANCELLING, In.ACCEPTED): S.ENDED,  # a 2xx that crossed it: ACK, then BYE
        (S.ANSWERED, In.GIVEN_UP): S.ENDED,  # BYE
        (S.ANSWERED, In.ENDED): S.ENDED,
    }
)
del S, In


@dataclass(frozen=True, slots=True, kw_only=True)
class Answered:
    """The customer answered: the leg's media is configured and can be bridged."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed:
    """The customer was not reached."""

    call_id: CallId
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HungUp:
    """The customer hung up after answering."""

    call_id: CallId


OutboundReport = Answered | Failed | HungUp


class OutboundLeg:
    """Our INVITE to one customer for one call, its dialog and its media."""

    __slots__ = (
        "call_id",
        "deadline",
        "destination",
        "dialog",
        "invite",
        "key",
        "media",
        "session",
        "state",
        "target",
    )

    def __init__(
        self,
        *,
        call_id: CallId,
        target: str,
        invite: Request,
        key: TransactionKey,
        destination: Peer,
        media: MediaLeg,
        session: LocalSession,
        deadline: float,
    ) -> None:
        self.call_id = call_id
        self.target = target
        self.invite = invite
        self.key = key
        self.destination = destination
        self.media = media
        self.session = session
        self.deadline: float | None = deadline  # until it is answered or given up
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
        return f"OutboundLeg({self.call_id} to {self.target}, {self.state.value})"


def failure_reason(status: int) -> str:
    """The core's reason for a final failure to our INVITE."""
    if status in (486, 600):
        return "busy"
    if status == 603:
        return "declined"
    if status in (408, 480, 487):
        return "no_answer"
    return f"failed_{status}"


class OutboundLegs:
    """Every outbound leg, by call, by INVITE transaction and by dialog."""

    def __init__(
        self,
        *,
        host: str,
        transactions: TransactionLayer,
        dialogs: Dialogs,
        send: Callable[[list[Output]], None],
        report: Callable[[OutboundReport], None],
        contact: Callable[[], NameAddress],
        ports: PortPool,
        pacer: Pacer,
        clock: Callable[[], float] = time.time,
        ring_seconds: float = DEFAULT_RING_SECONDS,
    ) -> None:
        self.host = host
        self._transactions = transactions
        self._dialogs = dialogs
        self._send = send
        self._report = report
        self._contact = contact
        self._ports = ports
        self._pacer = pacer
        self._clock = clock
        self.ring_seconds = ring_seconds
        self._by_call: dict[CallId, OutboundLeg] = {}
        self._invites: dict[TransactionKey, OutboundLeg] = {}
        self._by_dialog: dict[DialogId, OutboundLeg] = {}

    def leg(self, call_id: CallId) -> OutboundLeg | None:
        return self._by_call.get(call_id)

    def by_dialog(self, dialog: DialogId) -> OutboundLeg | None:
        return self._by_dialog.get(dialog)

    def _now(self) -> float:
        return self._clock()

    def _request(self, request: Request, destination: Peer) -> None:
        self._send(self._transactions.request(request, destination, self._now()))

    async def dial(self, call_id: CallId, target: str, *, caller_id: str = "acd") -> None:
        """INVITE ``target`` (a SIP URI) for ``call_id``; ``Failed`` if it can't be sent."""
        if call_id in self._by_call:
            raise ValueError(f"call {call_id} has an outbound leg already")
        try:
            uri = parse_uri(target)
            if not isinstance(uri, SipUri):
                raise ValueError(f"not a SIP URI: {target!r}")
            destination = Peer.for_uri(uri)
        except (ParseError, ValueError) as error:
            log.warning("call %s: cannot call back %r: %s", call_id, target, error)
            self._report(Failed(call_id=call_id, reason="unreachable"))
            return
        try:
            media = await MediaLeg.open(ports=self._ports, pacer=self._pacer, continuous=True)
        except Exception as error:  # PortsExhausted and socket errors: no audio, no call
            log.warning("call %s: no media leg for the call back: %s", call_id, error)
            self._report(Failed(call_id=call_id, reason="no_media"))
            return
        session = LocalSession(address=self.host)
        contact = self._contact()
        invite = new_request(
            "INVITE",
            uri=uri,
            from_address=parse_name_address(f"<sip:{caller_id}@{self.host}>"),
            to_address=NameAddress(uri=uri),
            via=via_for_contact(contact),
            contact=contact,
            headers=[("Content-Type", SDP), ("Subject", f"call back {call_id}")],
            body=session.offer(port=media.port).encode(),
        )
        key = client_key(invite)
        assert key is not None  # new_request gave it a branch of ours
        leg = OutboundLeg(
            call_id=call_id,
            target=target,
            invite=invite,
            key=key,
            destination=destination,
            media=media,
            session=session,
            deadline=self._now() + self.ring_seconds,
        )
        self._by_call[call_id] = leg
        self._invites[key] = leg
        self._request(invite, destination)
        log.info("calling back %s for call %s", target, call_id)

    def response(self, response: Response, key: TransactionKey) -> bool:
        """A response to one of our requests; True when it was to one of our INVITEs."""
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
            self._failed(leg, failure_reason(status))
            return True
        if dialog is None:
            return True  # a 2xx of a dialog already ended
        if leg.dialog is not None:  # a retransmitted 2xx: the same ACK again (§13.2.2.4)
            self._request(dialog.ack(leg.invite), leg.destination)
            return True
        leg.dialog = dialog
        self._by_dialog[dialog.id] = leg
        self._request(dialog.ack(leg.invite), leg.destination)
        leg.deadline = None
        if leg.move(OutboundInput.ACCEPTED) is OutboundState.ENDED:
            self._bye(leg)  # it crossed our CANCEL
            self._forget(leg)
            return True
        try:
            leg.media.configure(leg.session.accept(SessionDescription.parse(response.body)))
        except SdpError as error:
            log.warning(
                "call %s: the customer answered with SDP we cannot use: %s", leg.call_id, error
            )
            leg.move(OutboundInput.GIVEN_UP)
            self._bye(leg)
            self._forget(leg)
            self._report(Failed(call_id=leg.call_id, reason="bad_sdp"))
            return True
        self._report(Answered(call_id=leg.call_id))
        return True

    def invite_timed_out(self, key: TransactionKey) -> bool:
        """No final answer to our INVITE (timer B, or a transport error)."""
        leg = self._invites.get(key)
        if leg is None:
            return False
        self._failed(leg, "unreachable")
        return True

    def _failed(self, leg: OutboundLeg, reason: str) -> None:
        if leg.state is OutboundState.ENDED:
            return
        was_ringing = leg.ringing
        leg.move(OutboundInput.REFUSED)
        self._forget(leg)
        if was_ringing:  # not when we gave up: that was reported (or asked for) already
            self._report(Failed(call_id=leg.call_id, reason=reason))

    def hung_up(self, leg: OutboundLeg) -> None:
        """The customer sent BYE (already answered 200)."""
        if leg.state is not OutboundState.ANSWERED:
            return
        leg.move(OutboundInput.ENDED)
        self._forget(leg)
        self._report(HungUp(call_id=leg.call_id))

    def end(self, call_id: CallId) -> None:
        """Let the call's leg go from our side: CANCEL while ringing, BYE once answered."""
        leg = self._by_call.get(call_id)
        if leg is not None:
            self._give_up(leg)

    def _give_up(self, leg: OutboundLeg) -> None:
        leg.deadline = None
        if leg.ringing or leg.state is OutboundState.CANCELLING:
            leg.move(OutboundInput.GIVEN_UP)
            self._send(self._transactions.cancel(leg.key, self._now()))
        elif leg.state is OutboundState.ANSWERED:
            leg.move(OutboundInput.GIVEN_UP)
            self._bye(leg)
            self._forget(leg)

    def _bye(self, leg: OutboundLeg) -> None:
        dialog = leg.dialog
        if dialog is not None and dialog.state is not DialogState.TERMINATED:
            self._request(dialog.request("BYE"), leg.destination)

    def _forget(self, leg: OutboundLeg) -> None:
        if leg.state is not OutboundState.ENDED:
            return
        leg.media.close()
        self._invites.pop(leg.key, None)
        if self._by_call.get(leg.call_id) is leg:
            del self._by_call[leg.call_id]
        if leg.dialog is not None:
            self._by_dialog.pop(leg.dialog.id, None)
            self._dialogs.remove(leg.dialog.id)

    def close_all(self) -> None:
        """The server is stopping: every leg is let go (BYE, or CANCEL while ringing)."""
        for leg in list(self._by_call.values()):
            try:
                self._give_up(leg)
            finally:
                leg.media.close()

    # == time ===========================================================================

    def next_deadline(self) -> float | None:
        return min((leg.deadline for leg in self._by_call.values() if leg.deadline), default=None)

    def advance(self, now: float) -> None:
        """Give up on customers who rang for ``ring_seconds`` without answering."""
        for leg in list(self._by_call.values()):
            if leg.deadline is not None and leg.deadline <= now and leg.ringing:
                self._give_up(leg)
                self._report(Failed(call_id=leg.call_id, reason="no_answer"))
