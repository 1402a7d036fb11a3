"""Agents' phones: our INVITEs for the core's offers, their answers, CANCEL, BYE and hold.

Theory of operation. ``AgentPhones`` is the half of ``ivr.calls`` that calls
out. ``ring`` sends an offer to the phone the agent registered (to the
address the REGISTER came from, RFC 3581 §4, with the Request-URI of the
binding) with our SDP offer from a new ``MediaLeg`` (the INVITE is
``ivr.outbound_legs.invite_with_offer``'s, as for calls to other sites);
each response to that INVITE comes back through ``response`` and moves the
leg's machine
(``ivr.agent_legs``); what the core must hear (``OfferAccepted``,
``OfferRejected``, ``AgentHungUp``, ``AgentDeviceLost``) goes out through
``report``. ``retract`` cancels a ringing phone (RFC 3261 §9.1) or hangs up
one that answered too late; ``hang_up`` ends a talking leg with a BYE.

Accepted on the desktop while the phone rings (``answer_on_desktop``): the
core is connected already, and the agent expects to talk at once, so the
ringing INVITE is cancelled and a new one goes to the same phone asking it to
answer by itself, in each of the three ways phones read it: ``Call-Info:
<...>;answer-after=0`` (Polycom, Snom, Grandstream, Linphone, baresip from
1.1 with ``sip_autoanswer``), ``Alert-Info: <...>;info=alert-autoanswer;
delay=0`` (Yealink, Mitel/Aastra, Cisco SPA) and RFC 5373's ``Answer-Mode:
Auto`` (without ``Require``, so a phone that does not know it still rings
rather than refusing with 420). Real contact centres do the same (a CTI
"answer" on a phone without a remote-answer API is a new auto-answer call).
The first INVITE never asks for it: an offer is the agent's to take or leave.
A phone set to honour none of these rings again, and the agent picks it up;
its answer is bridged at once (``answered``). If it is refused or not
answered within the offer's ring time (``answer_by``, our own timer: the
core's ring timeout ended with the accept), the core hears ``PhoneUnanswered``
and the server sends the caller back to the queue (``api.server``).

Hold from the desktop (``follow_hold``): the core held or retrieved the call,
and the phone's dialog follows by re-INVITE (``ivr.phone_hold``: the rules,
glare and refusals); a 408, a 481 or no answer to it ends the dialog (§14.1)
and the core hears ``AgentHungUp``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from acd.actions import OfferCall
from acd.commands import AgentDeviceLost, AgentHungUp, OfferAccepted, OfferRejected
from acd.ids import AgentId, CallId
from ivr.agent_legs import AgentInput, AgentLeg, AgentLegState
from ivr.media import MediaLeg, Pacer, PortPool
from ivr.outbound_legs import invite_with_offer
from ivr.phone_hold import ReinviteState
from ivr.sdp import Direction, LocalSession, SdpError, SessionDescription
from ivr.sip.dialogs import Dialog, DialogId, Dialogs, DialogState
from ivr.sip.errors import ParseError
from ivr.sip.fields import NameAddress
from ivr.sip.message import Request, Response
from ivr.sip.registrar import Binding
from ivr.sip.transaction_outputs import Peer, TransactionKey
from ivr.sip.transactions import Output, TransactionLayer, client_key
from ivr.sip.uri import SipUri, Uri, parse_uri

log = logging.getLogger(__name__)

SDP = "application/sdp"
MIN_RING_SECONDS = 0.5  # an auto-answer INVITE rings at least this long, however late the accept


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneUnanswered:
    """The agent accepted on the desktop, but their phone refused or never answered the call."""

    call_id: CallId
    agent_id: AgentId


PhoneReport = OfferAccepted | OfferRejected | AgentHungUp | AgentDeviceLost | PhoneUnanswered


def auto_answer_headers(host: str) -> list[tuple[str, str]]:
    """What asks a phone to answer by itself, in the three dialects phones read (see above)."""
    return [
        ("Call-Info", f"<sip:acd@{host}>;answer-after=0"),
        ("Alert-Info", "<urn:alert:service:normal>;info=alert-autoanswer;delay=0"),  # RFC 7462
        ("Answer-Mode", "Auto"),  # RFC 5373 §3
    ]


class AgentPhones:
    """Every agent phone leg we rang, by offer, by INVITE transaction and by dialog."""

    def __init__(
        self,
        *,
        host: str,
        transactions: TransactionLayer,
        dialogs: Dialogs,
        send: Callable[[list[Output]], None],
        report: Callable[[PhoneReport], None],
        answered: Callable[[AgentLeg], None],
        contact: Callable[[], NameAddress],
        locate: Callable[[AgentId, float], Binding | None],
        has_account: Callable[[AgentId], bool],
        ports: PortPool,
        pacer: Pacer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self._transactions = transactions
        self._dialogs = dialogs
        self._send = send
        self._report = report
        self._answered = answered  # an auto-answer leg answered: the caller is bridged to it
        self._contact = contact
        self._locate = locate
        self._has_account = has_account
        self._ports = ports
        self._pacer = pacer
        self._clock = clock
        self._by_dialog: dict[DialogId, AgentLeg] = {}  # once answered
        self._invites: dict[TransactionKey, AgentLeg] = {}  # by our INVITE's transaction
        self._reinvites: dict[TransactionKey, AgentLeg] = {}  # by our re-INVITEs' (hold)
        self._offers: dict[tuple[CallId, AgentId], AgentLeg] = {}

    def leg(self, call_id: CallId, agent_id: AgentId) -> AgentLeg | None:
        return self._offers.get((call_id, agent_id))

    def answered_leg(self, call_id: CallId) -> AgentLeg | None:
        """The phone leg that answered ``call_id`` and is talking in it, if any."""
        for (call, _), leg in self._offers.items():
            if call == call_id and leg.state is AgentLegState.BRIDGED:
                return leg
        return None

    def by_dialog(self, dialog: DialogId) -> AgentLeg | None:
        return self._by_dialog.get(dialog)

    def _now(self) -> float:
        return self._clock()

    def _request(self, request: Request, destination: Peer) -> None:
        self._send(self._transactions.request(request, destination, self._now()))

    def end_call(self, call_id: CallId) -> None:
        """The call is over: every phone still ringing for it or talking in it is let go."""
        for call, agent_id in list(self._offers):
            if call == call_id:
                self.retract(call, agent_id)

    def close_all(self) -> None:
        for leg in list(self._offers.values()):
            leg.media.close()

    def _bye(self, dialog: Dialog, destination: Peer) -> None:
        if dialog.state is not DialogState.TERMINATED:
            self._request(dialog.request("BYE"), destination)

    # == ringing ======================================================================

    async def ring(self, offer: OfferCall, *, caller_waiting: bool) -> None:
        """Ring the agent's phone for ``offer``, if they have one; tell the core if it is gone."""
        agent_id = offer.agent_id
        if not self._has_account(agent_id):
            return  # a desktop-only agent: the WebSocket offer is all there is
        binding = self._locate(agent_id, self._now())
        if binding is None:
            self._report(AgentDeviceLost(agent_id=agent_id))
            return
        if not caller_waiting:  # not a SIP caller (injected over REST): nothing to bridge to
            return
        await self._invite(
            agent_id,
            offer.call_id,
            target=parse_uri(binding.uri),
            destination=phone_address(binding),
            ring_seconds=max(offer.deadline - self._now(), MIN_RING_SECONDS),
        )

    async def answer_on_desktop(self, call_id: CallId, agent_id: AgentId) -> bool:
        """Accepted on the desktop while the phone rings: ring again, asking it to answer.

        False when there is no ringing leg for the offer (nothing was done).
        """
        ringing = self._offers.get((call_id, agent_id))
        if ringing is None or not ringing.ringing:
            return False
        self.retract(call_id, agent_id)
        await self._invite(
            agent_id,
            call_id,
            target=ringing.invite.uri,
            destination=ringing.destination,
            ring_seconds=ringing.ring_seconds,
            auto_answer=True,
        )
        log.info("call %s accepted on %s's desktop: asking the phone to answer", call_id, agent_id)
        return True

    async def _invite(
        self,
        agent_id: AgentId,
        call_id: CallId,
        *,
        target: Uri,
        destination: Peer,
        ring_seconds: float,
        auto_answer: bool = False,
    ) -> None:
        media = await MediaLeg.open(ports=self._ports, pacer=self._pacer)
        session = LocalSession(address=self.host)
        sdp = session.offer(port=media.port)
        contact = self._contact()
        headers = [("Subject", f"call {call_id}")]
        if auto_answer:
            headers += auto_answer_headers(self.host)
        invite = invite_with_offer(
            target, host=self.host, contact=contact, sdp=sdp.encode(), headers=headers
        )
        now = self._now()
        outputs = self._transactions.request(invite, destination, now)
        key = client_key(invite)
        assert key is not None  # new_request gave it a branch of ours
        leg = AgentLeg(
            agent_id=agent_id,
            call_id=call_id,
            invite=invite,
            key=key,
            destination=destination,
            media=media,
            session=session,
            ring_seconds=ring_seconds,
            auto_answer=auto_answer,
            answer_by=now + ring_seconds if auto_answer else None,
        )
        self._invites[key] = leg
        self._offers[(call_id, agent_id)] = leg
        self._send(outputs)
        log.info(
            "ringing %s's phone for call %s",
            agent_id,
            call_id,
            extra={"call_id": call_id, "agent_id": agent_id},
        )

    # == responses ====================================================================

    def response(self, response: Response, key: TransactionKey) -> None:
        """A response to one of our requests; our INVITEs' and re-INVITEs' matter."""
        reinvited = self._reinvites.get(key)
        if reinvited is not None:
            self._reinvite_answered(reinvited, key, response)
            return
        leg = self._invites.get(key)
        if leg is None:
            return  # a BYE's or CANCEL's: nothing more to do
        try:
            dialog = self._dialogs.apply_response(leg.invite, response)
        except ParseError:
            dialog = None
        status = response.status
        if status < 200:
            leg.move(AgentInput.PROVISIONAL)
            if leg.state is AgentLegState.CANCELLING:
                self._send(self._transactions.cancel(leg.key, self._now()))  # §9.1: now we may
            return
        if status >= 300:
            self._invite_failed(leg)
            return
        if dialog is None:
            return  # a 2xx of a dialog already ended
        if leg.dialog is not None:  # a retransmitted 2xx: the same ACK again (§13.2.2.4)
            self._request(dialog.ack(leg.invite), leg.destination)
            return
        leg.dialog = dialog
        self._by_dialog[dialog.id] = leg
        self._request(dialog.ack(leg.invite), leg.destination)
        if leg.move(AgentInput.ACCEPTED) is AgentLegState.ENDED:
            self._bye(dialog, leg.destination)  # it crossed our CANCEL
            self._forget(leg)
            return
        try:
            leg.media.configure(leg.session.accept(SessionDescription.parse(response.body)))
        except SdpError as error:
            log.warning(
                "%s's phone answered with SDP we cannot use: %s",
                leg.agent_id,
                error,
                extra={"call_id": leg.call_id, "agent_id": leg.agent_id},
            )
            leg.move(AgentInput.ENDED)
            self._bye(dialog, leg.destination)
            self._forget(leg)
            self._report(self._lost(leg))
            return
        leg.answer_by = None
        if leg.auto_answer:
            self._answered(leg)  # the core connected the call when the desktop accepted
        else:
            self._report(OfferAccepted(agent_id=leg.agent_id, call_id=leg.call_id))

    def invite_timed_out(self, key: TransactionKey) -> None:
        """No final answer to our INVITE (timer B, or a transport error)."""
        reinvited = self._reinvites.pop(key, None)
        if reinvited is not None:
            if reinvited.hold.offering_now and reinvited.reinvite is not None:
                log.warning("%s's phone did not answer our re-INVITE", reinvited.agent_id)
                self._dialog_lost(reinvited)  # §14.1: the UAC terminates the dialog
            return
        leg = self._invites.get(key)
        if leg is not None and leg.state is not AgentLegState.ENDED:
            self._invite_failed(leg)

    def _lost(self, leg: AgentLeg) -> OfferRejected | PhoneUnanswered:
        """What the core hears of a phone that did not take the call."""
        if leg.auto_answer:
            return PhoneUnanswered(call_id=leg.call_id, agent_id=leg.agent_id)
        return OfferRejected(agent_id=leg.agent_id, call_id=leg.call_id)

    def _invite_failed(self, leg: AgentLeg) -> None:
        was_ringing = leg.ringing
        if leg.state is AgentLegState.ENDED:
            return
        leg.move(AgentInput.REFUSED)
        self._forget(leg)
        if was_ringing:  # not when we cancelled it: the core knows already
            self._report(self._lost(leg))

    # == the end ======================================================================

    def retract(self, call_id: CallId, agent_id: AgentId) -> None:
        leg = self._offers.get((call_id, agent_id))
        if leg is None:
            return
        if leg.ringing or leg.state is AgentLegState.CANCELLING:
            leg.move(AgentInput.RETRACTED)
            self._send(self._transactions.cancel(leg.key, self._now()))
        elif leg.talking:
            self.hang_up(leg)

    def hung_up(self, leg: AgentLeg) -> None:
        """The agent's phone sent BYE."""
        if not leg.talking:
            return
        leg.move(AgentInput.ENDED)
        self._forget(leg)
        self._report(AgentHungUp(call_id=leg.call_id))

    def hang_up(self, leg: AgentLeg) -> None:
        if leg.dialog is not None and leg.talking:
            leg.move(AgentInput.ENDED)
            self._bye(leg.dialog, leg.destination)
        self._forget(leg)

    def _dialog_lost(self, leg: AgentLeg) -> None:
        """A 408, a 481 or silence to our re-INVITE: the phone is gone (RFC 3261 §14.1)."""
        if leg.dialog is not None:
            self._bye(leg.dialog, leg.destination)
        self.hung_up(leg)

    def _forget(self, leg: AgentLeg) -> None:
        if leg.state is not AgentLegState.ENDED:
            return
        leg.media.close()
        self._invites.pop(leg.key, None)
        if self._offers.get((leg.call_id, leg.agent_id)) is leg:  # not its auto-answer successor
            del self._offers[(leg.call_id, leg.agent_id)]
        if leg.dialog is not None:
            self._by_dialog.pop(leg.dialog.id, None)
        for key in [k for k, held in self._reinvites.items() if held is leg]:
            del self._reinvites[key]

    # == hold by re-INVITE (ivr.phone_hold) ============================================

    def follow_hold(self, leg: AgentLeg, held: bool) -> None:
        """The core held (or retrieved) the call: the phone's dialog follows, if it must."""
        leg.hold.want(held)
        self._offer_hold(leg)

    def _offer_hold(self, leg: AgentLeg) -> None:
        held = leg.hold.offer_due()
        dialog = leg.dialog
        if held is None or dialog is None or dialog.state is not DialogState.CONFIRMED:
            return
        direction = Direction.SENDONLY if held else Direction.SENDRECV
        sdp = leg.session.offer(port=leg.media.port, direction=direction)
        reinvite = dialog.request("INVITE", headers=[("Content-Type", SDP)], body=sdp.encode())
        key = client_key(reinvite)
        assert key is not None
        leg.hold.sent(held)
        leg.reinvite = reinvite
        self._reinvites[key] = leg
        self._request(reinvite, leg.destination)
        log.info(
            "call %s: %s %s's phone", leg.call_id, "holding" if held else "resuming", leg.agent_id
        )

    def _reinvite_answered(self, leg: AgentLeg, key: TransactionKey, response: Response) -> None:
        reinvite = leg.reinvite
        current = reinvite is not None and client_key(reinvite) == key and leg.hold.offering_now
        request = reinvite if current and reinvite is not None else None
        status = response.status
        if status < 200:
            return
        dialog = leg.dialog
        if dialog is not None and request is not None:
            with contextlib.suppress(ParseError):  # a bad Contact: the target stays
                self._dialogs.apply_response(request, response)  # a 408 or 481 ends it
        if 200 <= status < 300:
            if request is None:
                return  # a copy of a 2xx already taken: its transaction's ACK was sent
            assert dialog is not None
            self._request(dialog.ack(request), leg.destination)
            try:
                agreement = leg.session.accept(SessionDescription.parse(response.body))
            except SdpError as error:
                log.warning("%s's phone answered our re-INVITE badly: %s", leg.agent_id, error)
                leg.hold.refused()
                return
            leg.media.configure(agreement)
            leg.hold.agreed_offer()
            self._offer_hold(leg)  # the core may have changed its mind meanwhile
            return
        if request is None:
            return
        if status in (408, 481):
            self._dialog_lost(leg)
        elif status == 491:  # glare: both re-INVITEd at once (RFC 3261 §14.1)
            leg.hold.glared(self._now())  # the switchboard re-arms its timer after a response
        else:
            log.warning(
                "call %s: %s's phone refused the %s (%d); the call goes on",
                leg.call_id,
                leg.agent_id,
                "hold" if leg.hold.offering else "resume",
                status,
            )
            leg.hold.refused()

    # == time =========================================================================

    def _legs(self) -> Iterable[AgentLeg]:
        return self._offers.values()

    def next_deadline(self) -> float | None:
        """The next auto-answer ring timeout or end of a back-off after a 491."""
        deadlines = [
            d
            for leg in self._legs()
            for d in (leg.answer_by if leg.ringing else None, leg.hold.retry_at)
            if d is not None
        ]
        return min(deadlines, default=None)

    def advance(self, now: float) -> None:
        for leg in list(self._legs()):
            if leg.ringing and leg.answer_by is not None and leg.answer_by <= now:
                log.info("call %s: %s's phone did not answer", leg.call_id, leg.agent_id)
                leg.answer_by = None
                self.retract(leg.call_id, leg.agent_id)
                self._report(self._lost(leg))
            retry_at = leg.hold.retry_at
            backing_off = leg.hold.state is ReinviteState.BACKING_OFF
            if backing_off and retry_at is not None and retry_at <= now:
                leg.hold.retry()
                self._offer_hold(leg)


def phone_address(binding: Binding) -> Peer:
    """Where to send requests for a registered phone.

    The Contact URI, when the REGISTER came from the host it names: the phone
    is reachable as it says (and a registration made on its behalf, as SIPp
    does from another port, still works). Otherwise the phone is behind NAT
    and said an address we cannot reach: the source the REGISTER came from
    (RFC 3581 §4; over TCP, the connection it came on).
    """
    source = binding.source
    uri = parse_uri(binding.uri)
    if source.transport.value == "tcp":
        return Peer(source.host, source.port, "tcp")
    if isinstance(uri, SipUri) and uri.host == source.host:
        contact = Peer.for_uri(uri)
        if contact.transport == "udp":
            return contact
    return Peer(source.host, source.port, "udp")
