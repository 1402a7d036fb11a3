"""Agents' phones: our INVITEs for the core's offers, their answers, CANCEL and BYE.

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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from acd.actions import OfferCall
from acd.commands import AgentDeviceLost, AgentHungUp, OfferAccepted, OfferRejected
from acd.ids import AgentId, CallId
from ivr.agent_legs import AgentInput, AgentLeg, AgentLegState
from ivr.media import MediaLeg, Pacer, PortPool
from ivr.outbound_legs import invite_with_offer
from ivr.sdp import LocalSession, SdpError, SessionDescription
from ivr.sip.dialogs import Dialog, DialogId, Dialogs, DialogState
from ivr.sip.errors import ParseError
from ivr.sip.fields import NameAddress
from ivr.sip.message import Request, Response
from ivr.sip.registrar import Binding
from ivr.sip.transaction_outputs import Peer, TransactionKey
from ivr.sip.transactions import Output, TransactionLayer, client_key
from ivr.sip.uri import SipUri, parse_uri

log = logging.getLogger(__name__)

SDP = "application/sdp"
PhoneReport = OfferAccepted | OfferRejected | AgentHungUp | AgentDeviceLost


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
        self._contact = contact
        self._locate = locate
        self._has_account = has_account
        self._ports = ports
        self._pacer = pacer
        self._clock = clock
        self._by_dialog: dict[DialogId, AgentLeg] = {}  # once answered
        self._invites: dict[TransactionKey, AgentLeg] = {}  # by our INVITE's transaction
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
        media = await MediaLeg.open(ports=self._ports, pacer=self._pacer)
        session = LocalSession(address=self.host)
        sdp = session.offer(port=media.port)
        target = parse_uri(binding.uri)
        invite = invite_with_offer(
            target,
            host=self.host,
            contact=self._contact(),
            sdp=sdp.encode(),
            headers=[("Subject", f"call {offer.call_id}")],
        )
        destination = phone_address(binding)
        outputs = self._transactions.request(invite, destination, self._now())
        key = client_key(invite)
        assert key is not None  # new_request gave it a branch of ours
        leg = AgentLeg(
            agent_id=agent_id,
            call_id=offer.call_id,
            invite=invite,
            key=key,
            destination=destination,
            media=media,
            session=session,
        )
        self._invites[key] = leg
        self._offers[(offer.call_id, agent_id)] = leg
        self._send(outputs)
        log.info(
            "ringing %s's phone for call %s",
            agent_id,
            offer.call_id,
            extra={"call_id": offer.call_id, "agent_id": agent_id},
        )

    def response(self, response: Response, key: TransactionKey) -> None:
        """A response to one of our requests; only our INVITEs' matter."""
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
            self._report(OfferRejected(agent_id=leg.agent_id, call_id=leg.call_id))
            return
        self._report(OfferAccepted(agent_id=leg.agent_id, call_id=leg.call_id))

    def invite_timed_out(self, key: TransactionKey) -> None:
        """No final answer to our INVITE (timer B, or a transport error)."""
        leg = self._invites.get(key)
        if leg is not None and leg.state is not AgentLegState.ENDED:
            self._invite_failed(leg)

    def _invite_failed(self, leg: AgentLeg) -> None:
        was_ringing = leg.ringing
        if leg.state is AgentLegState.ENDED:
            return
        leg.move(AgentInput.REFUSED)
        self._forget(leg)
        if was_ringing:  # not when we cancelled it: the core knows already
            self._report(OfferRejected(agent_id=leg.agent_id, call_id=leg.call_id))

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

    def _forget(self, leg: AgentLeg) -> None:
        if leg.state is not AgentLegState.ENDED:
            return
        leg.media.close()
        self._invites.pop(leg.key, None)
        self._offers.pop((leg.call_id, leg.agent_id), None)
        if leg.dialog is not None:
            self._by_dialog.pop(leg.dialog.id, None)


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
