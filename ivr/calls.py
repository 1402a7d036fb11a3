"""Calls over SIP: callers answered into the IVR and the queues, agents' phones rung and bridged.

Theory of operation. ``Calls`` is the transaction user for everything that
is a call, inside the ``Switchboard`` that owns the transport and the
transaction layer. It never decides routing: it turns SIP into the core's
inputs (``notices``: a ``QueueEntry`` for a caller a flow or a dialled queue
hands over, then ``OfferAccepted``, ``OfferRejected``, ``CallerHungUp``,
``AgentHungUp``, ``AgentDeviceLost``, and ``CallTransferred`` for a REFER)
and the core's actions into SIP and media (``act``: ``OfferCall`` rings a
phone and ``RetractOffer`` cancels it, both through ``ivr.agent_phones``,
``ConnectCall`` bridges, ``PlayAnnouncement`` speaks, ``TransferToSite``
calls the other site and bridges the caller to it (``ivr.site_calls``), and
a ``CallEnded`` hangs up whatever leg is left). The notices and the jobs
are ``ivr.notices_and_jobs``.

Two ways in, one order. What arrives from the network is handled at once
(``request``, ``response``, ``ack``: plain functions of the message and the
time); what needs a socket bound first (a ``MediaLeg`` for an answer or an
offer) and every core action goes through one job queue served in order by
``run``, so an offer is never retracted before it was sent. Timers are data:
the dialogs' 2xx retransmissions (RFC 3261 §13.3.1.4), the flows' deadlines
and the sites' answer deadlines come out of ``next_deadline``, and the
switchboard calls ``advance(now)``.

The parts, each over the callers' legs (``ivr.caller_legs.Callers``):
``ivr.answering`` (a caller's INVITE, and redirect mode's ringing callers),
``ivr.caller_flows`` (the IVR flow's actions, prompts, music on hold,
announcements, the callback menu, voicemail), ``ivr.connections`` (a caller
bridged to an agent's phone, hold from either side), ``ivr.transfers``
(REFER, a blind transfer's requeue, the hand-off to another site),
``ivr.agent_phones``, ``ivr.site_calls`` and ``ivr.calling_back``. What is
here ties them together: which part a request or a job goes to, and the end
of a caller's leg, which concerns them all.

Not done: a caller's re-INVITE (answered 488, the call continues; the
agent phone's re-INVITE is hold and retrieve, RFC 3264 §8.4); for transfers,
see ``ivr.transfers``. Calls still up when the server stops are hung up
(BYE) before the transport closes, calls bridged to another site included.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from pathlib import Path

from acd.actions import (
    ConnectCall,
    OfferCall,
    PlayAnnouncement,
    RejectCall,
    RetractOffer,
    TransferToSite,
)
from acd.commands import CallerHungUp
from acd.ids import AgentId, CallId
from ivr.agent_legs import AgentLeg
from ivr.agent_phones import AgentPhones
from ivr.answering import Answering, InviteToAnswer
from ivr.caller_flows import CallerFlows, relayed_digit
from ivr.caller_legs import IN_A_FLOW, WAITING, CallerInput, CallerLeg, Callers, CallerState
from ivr.calling_back import DEFAULT_RING_SECONDS, CallingBack
from ivr.connections import Connections
from ivr.flow_config import Flow
from ivr.media import Pacer, Player, PortPool
from ivr.messages import Messages
from ivr.notices_and_jobs import (
    CallEnded,
    CallOnHold,
    CallRequeued,
    Job,
    Notice,
    TransferRefused,
)
from ivr.outbound_legs import OutboundLegs
from ivr.referrals import refusal_status
from ivr.sip.dialogs import (
    AnswerUnacknowledged,
    Dialog,
    Dialogs,
    DialogState,
    RetransmitAnswer,
)
from ivr.sip.errors import ParseError
from ivr.sip.fields import NameAddress, parse_name_address
from ivr.sip.message import Request, Response, response_to
from ivr.sip.registrar import Binding
from ivr.sip.transaction_outputs import Peer, RequestReceived, TransactionKey
from ivr.sip.transactions import Output, TransactionLayer
from ivr.site_calls import OverflowMode, SiteCalls
from ivr.transfers import Transfers

log = logging.getLogger(__name__)


class Calls:
    """The calls' side of the switchboard: the SIP dialogs, media legs and the core's actions."""

    def __init__(
        self,
        *,
        host: str,
        transactions: TransactionLayer,
        carry_out: Callable[[list[Output]], None],
        wake: Callable[[], None],
        locate: Callable[[AgentId, float], Binding | None],
        has_account: Callable[[AgentId], bool],
        queues: Callable[[], Collection[str]],
        new_call_id: Callable[[], CallId],
        flow: Flow | None = None,
        ports: PortPool | None = None,
        player: Player | None = None,
        voicemail_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        callback_uri: str | None = None,
        callback_ring_seconds: float = DEFAULT_RING_SECONDS,
        find_agent: Callable[[str], AgentId | None] = lambda _name: None,
        overflow: OverflowMode = OverflowMode.BRIDGE,
    ) -> None:
        self.host = host
        self.port = 0  # set by the switchboard once the transport is bound
        self._transactions = transactions
        self._carry_out = carry_out
        self._wake = wake
        self.ports = ports or PortPool(host=host)
        self.pacer = Pacer()
        self.player = player or Player()
        self._clock = clock
        # None: no directory for messages, and a voicemail node hangs up.
        self.messages = None if voicemail_dir is None else Messages(voicemail_dir, clock=clock)
        self.dialogs = Dialogs(timers=transactions.timers)
        self.notices: asyncio.Queue[Notice] = asyncio.Queue()
        self._jobs: asyncio.Queue[Job | InviteToAnswer] = asyncio.Queue()
        self._callers = Callers()
        self.phones = AgentPhones(
            host=host,
            transactions=transactions,
            dialogs=self.dialogs,
            send=self._send,
            report=self.notices.put_nowait,
            answered=lambda leg: self.connections.phone_answered(leg),
            contact=lambda: self.contact,
            locate=locate,
            has_account=has_account,
            ports=self.ports,
            pacer=self.pacer,
            clock=clock,
        )
        self.outbound = OutboundLegs(
            host=host,
            transactions=transactions,
            dialogs=self.dialogs,
            send=self._send,
            contact=lambda: self.contact,
            ports=self.ports,
            pacer=self.pacer,
            clock=clock,
        )
        self.sites = SiteCalls(
            legs=self.outbound, player=self.player, hang_up_caller=self._hang_up_caller, clock=clock
        )
        self.calling_back = CallingBack(
            legs=self.outbound,
            phones=self.phones,
            player=self.player,
            report=self.notices.put_nowait,
            callback_uri=callback_uri,
            ring_seconds=callback_ring_seconds,
            clock=clock,
        )
        self.flows = CallerFlows(
            flow=flow,
            player=self.player,
            messages=self.messages,
            calling_back=self.calling_back,
            callers=self._callers,
            report=self.notices.put_nowait,
            hang_up=self._hang_up_caller,
            wake=wake,
            clock=clock,
        )
        self.answering = Answering(
            host=host,
            contact=lambda: self.contact,
            ports=self.ports,
            pacer=self.pacer,
            dialogs=self.dialogs,
            callers=self._callers,
            flows=self.flows,
            queues=queues,
            new_call_id=new_call_id,
            overflow=overflow,
            respond=self._respond,
            queue_job=self._jobs.put_nowait,
            close_caller=self._close_caller,
            clock=clock,
        )
        self.connections = Connections(
            callers=self._callers,
            phones=self.phones,
            calling_back=self.calling_back,
            hold_music=self.flows.hold,
            respond=self._respond,
            report=self.notices.put_nowait,
            clock=clock,
        )
        self.transfers = Transfers(
            host=host,
            contact=lambda: self.contact,
            queues=queues,
            find_agent=find_agent,
            callers=self._callers,
            phones=self.phones,
            connections=self.connections,
            sites=self.sites,
            hold_music=self.flows.hold,
            respond=self._respond,
            request=self._request,
            report=self.notices.put_nowait,
            end_call=self._end_call,
            wake=wake,
        )

    # == views ==========================================================================

    def caller(self, call_id: CallId) -> CallerLeg | None:
        return self._callers.get(call_id)

    def agent_leg(self, call_id: CallId, agent_id: AgentId) -> AgentLeg | None:
        return self.phones.leg(call_id, agent_id)

    def callers(self) -> list[CallerLeg]:
        return self._callers.all()

    @property
    def contact(self) -> NameAddress:
        return parse_name_address(f"<sip:acd@{self.host}:{self.port}>")

    # == the job queue ==================================================================

    def act(self, job: Job) -> None:
        """A core action (or the end of a call) to carry out in order; never blocks."""
        self._jobs.put_nowait(job)

    async def run(self) -> None:
        """Serve the jobs, and pace the media, until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.pacer.run(), name="media pacer")
            try:
                while True:
                    job = await self._jobs.get()
                    try:
                        await self._serve(job)
                    except Exception:  # one bad call must not stop every other
                        call_id = getattr(job, "call_id", None)
                        log.exception("could not carry out %s", job, extra={"call_id": call_id})
            finally:
                self._close_all()

    async def _serve(self, job: Job | InviteToAnswer) -> None:
        if isinstance(job, InviteToAnswer):
            await self.answering.answer(job)
            return
        if self.answering.settle(job):
            return
        if isinstance(job, OfferCall):
            if job.callback_number is not None:  # ring only if we can dial the customer
                waiting = self.calling_back.target(job.call_id, job.callback_number) is not None
            else:
                caller = self._callers.get(job.call_id)
                waiting = caller is not None and caller.state in WAITING
            await self.phones.ring(job, caller_waiting=waiting)
        elif isinstance(job, RetractOffer):
            self.phones.retract(job.call_id, job.agent_id)
        elif isinstance(job, ConnectCall) and job.callback_number is not None:
            await self.calling_back.connect(job, job.callback_number)
        elif isinstance(job, ConnectCall):
            await self.connections.connect(job)
        elif isinstance(job, PlayAnnouncement):
            self.flows.announce(job)
        elif isinstance(job, CallOnHold):
            self.connections.follow_hold(job)
        elif isinstance(job, TransferToSite):
            await self.transfers.to_site(job)
        elif isinstance(job, CallEnded | RejectCall):
            self._end_call(job.call_id)
        elif isinstance(job, CallRequeued):
            self.transfers.requeue(job.call_id)
        elif isinstance(job, TransferRefused):
            self.transfers.settle_referral(job.call_id, *refusal_status(job.error_id))

    def _now(self) -> float:
        return self._clock()

    def _send(self, outputs: list[Output]) -> None:
        self._carry_out(outputs)
        self._wake()

    def _respond(self, key: TransactionKey, response: Response) -> None:
        self._send(self._transactions.respond(key, response, self._now()))

    def _request(self, request: Request, destination: Peer) -> list[Output]:
        outputs = self._transactions.request(request, destination, self._now())
        self._send(outputs)
        return outputs

    # == requests from the network ======================================================

    def request(self, received: RequestReceived) -> None:
        """A request for calls (INVITE, BYE, INFO, CANCEL) that passed the common checks."""
        request = received.request
        to = request.to_address
        if request.method == "CANCEL":
            self._cancelled(received)
        elif to is not None and to.tag is not None:
            self._in_dialog(received)
        elif request.method == "INVITE":
            self.answering.invite(received)
        else:  # a BYE or INFO outside any dialog (RFC 3261 §12.2.2)
            self._respond(received.key, response_to(request, 481, to_tag=received.key.to_tag))

    def _cancelled(self, received: RequestReceived) -> None:
        """RFC 3261 §9.2: 200 to the CANCEL; 487 to the INVITE if it is not answered yet."""
        self._respond(received.key, response_to(received.request, 200, to_tag=received.key.to_tag))
        invite = received.cancels
        caller = None if invite is None else self.answering.cancelled(invite)
        if caller is not None:
            self._caller_left(caller)  # 487 to the INVITE, and the core hears the hang-up

    def _in_dialog(self, received: RequestReceived) -> None:
        request = received.request
        try:
            found = self.dialogs.apply_request(request, self._now())
        except ParseError:
            self._respond(received.key, response_to(request, 400))
            return
        if isinstance(found, Response) or found is None:
            self._respond(received.key, found or response_to(request, 481))
            return
        caller = self._callers.by_dialog(found.id)
        agent = self.phones.by_dialog(found.id)
        method = request.method
        if method == "BYE":
            self._respond(received.key, response_to(request, 200))
            site = self.outbound.by_dialog(found.id)
            if caller is not None:
                self._caller_left(caller)
            elif agent is not None:
                self.phones.hung_up(agent)
            elif site is not None:
                self.outbound.hung_up(site)
        elif method == "REFER" and agent is not None:
            self.transfers.referred(received, agent)
        elif method == "REFER":
            refusal = response_to(request, 403, "Only an agent's phone may transfer")
            self._respond(received.key, refusal)
        elif method == "INFO":
            digit = relayed_digit(request)
            self._respond(received.key, response_to(request, 200))
            if caller is not None and digit is not None:
                self.flows.digit(caller, digit)
        elif method == "INVITE" and agent is not None:
            self.connections.reinvited(received, found, agent)
        else:  # a caller's re-INVITE or anything else in the dialog: the call goes on unchanged
            self._respond(received.key, response_to(request, 488 if method == "INVITE" else 501))

    def ack(self, request: Request) -> None:
        """An ACK no transaction took: for one of our 2xx (RFC 3261 §13.3.1.4)."""
        self.dialogs.apply_request(request, self._now())

    def response(self, response: Response, key: TransactionKey) -> None:
        """A response to one of our requests: those to our INVITEs (phones, sites, call backs)."""
        if not self.outbound.response(response, key):
            self.phones.response(response, key)

    def invite_timed_out(self, key: TransactionKey) -> None:
        if not self.outbound.timed_out(key):
            self.phones.invite_timed_out(key)

    # == the end ========================================================================

    def _caller_left(self, caller: CallerLeg) -> None:
        """The caller sent BYE (already answered 200), or CANCEL while ringing."""
        if caller.state is CallerState.ENDED:
            return
        if self.answering.refuse(caller.call_id, 487):
            self.notices.put_nowait(CallerHungUp(call_id=caller.call_id))
            return
        if caller.state is CallerState.AWAY:  # the core is done with it: the site's leg goes
            self._close_caller(caller)
            self.sites.caller_left(caller)
            return
        if caller.flow is not None and caller.state in IN_A_FLOW:
            caller.flow.caller_hung_up(self._now())
        self._close_caller(caller)
        if caller.in_core:
            self.notices.put_nowait(CallerHungUp(call_id=caller.call_id))

    def _hang_up_caller(self, caller: CallerLeg) -> None:
        if caller.state is CallerState.ENDED:
            return
        # Never answered: refuse the INVITE instead of a BYE.
        if self.answering.refuse(caller.call_id, 480):
            return
        if caller.dialog.state is DialogState.CONFIRMED or caller.dialog.awaiting_ack:
            self._bye(caller.dialog, caller.peer)
        self._close_caller(caller)

    def _close_caller(self, caller: CallerLeg) -> None:
        caller.move(CallerInput.ENDED)
        if caller.bridge is not None:
            caller.bridge.close()
        caller.media.close()
        self._callers.remove(caller)
        self.connections.released(caller.call_id)
        self.dialogs.remove(caller.dialog.id)

    def _end_call(self, call_id: CallId) -> None:
        caller = self._callers.get(call_id)
        if caller is not None and caller.state not in (
            CallerState.AWAY,
            CallerState.CALLBACK_BOOKED,
        ):
            self._hang_up_caller(caller)  # (not sent to a site; one who booked a callback
            # hears the goodbye out)
        self.transfers.forget(call_id)
        self.phones.end_call(call_id)
        self.calling_back.end(call_id)

    def _bye(self, dialog: Dialog, destination: Peer) -> None:
        if dialog.state is DialogState.TERMINATED:
            return
        self._request(dialog.request("BYE"), destination)

    def _close_all(self) -> None:
        """The server is stopping: every call still up is hung up (BYE, or CANCEL while ringing).

        A drain lets the calls in the core end first; what is left here (callers
        still in the IVR, calls past the drain's deadline) would otherwise hear
        silence until their phone gives up. Calls carried to another site end
        too (``SiteCalls.close_all``): they live outside the core's drain.
        """
        self.sites.close_all()
        self.outbound.close_all()
        for caller in self._callers.all():
            try:
                self.phones.end_call(caller.call_id)
                self._hang_up_caller(caller)
            except Exception:  # stopping anyway: close what can be closed
                log.exception(
                    "could not hang up call %s at shutdown",
                    caller.call_id,
                    extra={"call_id": caller.call_id},
                )
                caller.media.close()
        self.phones.close_all()

    # == time ===========================================================================

    def next_deadline(self) -> float | None:
        deadlines = [
            d
            for d in (
                self.dialogs.next_deadline(),
                self.sites.next_deadline(),
                self.phones.next_deadline(),
                self.calling_back.next_deadline(),
                self.flows.next_deadline(),
            )
            if d is not None
        ]
        return min(deadlines, default=None)

    def advance(self, now: float) -> None:
        self.sites.advance(now)
        self.phones.advance(now)
        for output in self.dialogs.advance(now):
            if isinstance(output, RetransmitAnswer):
                self._carry_out(self._transactions.respond(output.invite, output.response, now))
            elif isinstance(output, AnswerUnacknowledged):
                caller = self._callers.by_dialog(output.dialog)
                self._request(output.bye, caller.peer if caller else output_peer(output.bye))
                if caller is not None:
                    self._caller_left(caller)
        self.flows.advance(now)
        self.calling_back.advance(now)


def output_peer(request: Request) -> Peer:
    """Where an in-dialog request goes without a better address: its Request-URI."""
    return Peer.for_uri(request.uri)
