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
a ``CallEnded`` hangs up whatever leg is left).

Two ways in, one order. What arrives from the network is handled at once
(``request``, ``response``, ``ack``: plain functions of the message and the
time); what needs a socket bound first (a ``MediaLeg`` for an answer or an
offer) and every core action goes through one job queue served in order by
``run``, so an offer is never retracted before it was sent. Timers are data:
the dialogs' 2xx retransmissions (RFC 3261 §13.3.1.4), the flows' deadlines
and the sites' answer deadlines come out of ``next_deadline``, and the
switchboard calls ``advance(now)``.

Entries (RFC 3261 §8.2.2.1 picks by Request-URI): the user part of the
Request-URI is the dialled number; a flow entry point runs the IVR flow, a
queue id goes straight to that queue, anything else is 404. An offer we
cannot answer is 488 (RFC 3264 §6), an INVITE without an offer too (we do not
offer in the 2xx: not done).

Voicemail (``ivr.messages``): the flow's ``StartRecording`` records the
caller's leg to a file under the voicemail directory until ``#``, the
node's limit or the caller's hang-up, whichever is first; the file goes back
to the flow (``recording_finished``), whose ``KeepMessage`` becomes a
``MessageLeft`` for the server to file, even when the caller has gone.
Without a directory a voicemail node hangs up.

Transfers. A blind transfer, from the desktop or by the phone's REFER
(``ivr.referrals``: 202, then NOTIFYs with ``message/sipfrag``), reaches the
core as ``CallTransferred``; when the core sends the call back to a queue
the server's sink hands us ``CallRequeued`` before the step's actions: the
REFER's last NOTIFY goes out, the transferring phone gets a BYE, the caller
hears music on hold until the next phone answers. With
``OverflowMode.REDIRECT`` a caller dialling a queue is handed to the core
before we answer (180 Ringing): the core's first word decides between
``302`` to the site (``TransferToSite``), ``486`` (``RejectCall``) and our
200 (``CallKept``, or any other action about the call). Callers already
answered (through the IVR, or overflowing later on a wait rule) are bridged
to the site in either mode.

The desktop drives the agent's phone (``ivr.agent_phones``): an offer
accepted on the desktop while the phone rings (``ConnectCall`` for a ringing
leg) re-rings it asking for auto-answer, and its answer is bridged at once
(``_phone_answered``); a hold or retrieve from the desktop (``CallOnHold``)
re-INVITEs the phone (``ivr.phone_hold``), unless the phone made it.

Callbacks: a queued caller whose last announcement offered a callback and
who presses 1 runs the flow's ``queue_callback`` node while still queued
(``CallerState.CALLBACK_MENU``); their confirmed number is ``CallbackRequested``
for the core, and they hear the goodbye without a ``CallerHungUp``. From the
IVR menu, ``RequestCallback`` is a ``QueueEntry`` with ``callback_number``.
Calling the customer back is ``ivr.calling_back``.

Not done: a caller's re-INVITE (answered 488, the call continues; the
agent phone's re-INVITE is hold and retrieve, RFC 3264 §8.4), a REFER to a
URI outside the centre (403), consultations and attended transfer over SIP
(``Replaces``; a consultation's offer rings no phone). Calls still up when
the server stops are hung up (BYE) before the transport closes, calls
bridged to another site included.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from acd.actions import (
    Action,
    ConnectCall,
    OfferCall,
    PlayAnnouncement,
    RejectCall,
    RetractOffer,
    TransferToSite,
)
from acd.commands import (
    AgentDeviceLost,
    AgentHungUp,
    CallbackAnswered,
    CallbackFailed,
    CallbackRequested,
    CallerHungUp,
    CallHeld,
    CallRetrieved,
    CallTransferred,
    OfferAccepted,
    OfferRejected,
)
from acd.ids import AgentId, CallId, Language, QueueId, Skill
from ivr.agent_legs import AgentInput, AgentLeg, AgentLegState
from ivr.agent_phones import AgentPhones, PhoneUnanswered
from ivr.announcements import prompts_for
from ivr.caller_legs import CallerInput, CallerLeg, CallerState
from ivr.calling_back import DEFAULT_RING_SECONDS, CallingBack
from ivr.flow_config import Flow
from ivr.flows import (
    EnterQueue,
    FlowAction,
    FlowRun,
    Hangup,
    KeepMessage,
    PlayPrompts,
    RequestCallback,
    StartRecording,
    StopPlayback,
)
from ivr.media import (
    Bridge,
    MediaLeg,
    Pacer,
    Playback,
    PlaybackResult,
    Player,
    PortPool,
    RecordingResult,
)
from ivr.media.leg import PlaybackEnd
from ivr.messages import STOP_KEY, Messages
from ivr.outbound_legs import OutboundLegs
from ivr.referrals import (
    Referral,
    ReferralInput,
    ReferRefused,
    notify,
    refer_target,
    refusal_status,
)
from ivr.rtp.dtmf import KeyPressed
from ivr.sdp import (
    AudioAgreement,
    Direction,
    LocalSession,
    OfferNotAcceptable,
    SdpError,
    SessionDescription,
)
from ivr.sip.dialogs import (
    AnswerUnacknowledged,
    Dialog,
    DialogId,
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
from ivr.sip.uri import SipUri
from ivr.site_calls import OverflowMode, SiteCalls

log = logging.getLogger(__name__)

SDP = "application/sdp"
DTMF_RELAY = "application/dtmf-relay"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntry:
    """A caller the IVR (or the number dialled) hands to a queue: for ``CallArrived``."""

    call_id: CallId
    queue_id: QueueId
    ani: str
    dnis: str
    language: Language | None
    skills: Mapping[Skill, int] = field(default_factory=dict)
    priority: int | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    # Set: a callback booked in the IVR menu; the caller is not handed over, the
    # queue gets a callback task to this number.
    callback_number: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded:
    """The core ended the call: hang up what is left of it."""

    call_id: CallId


Notice = (
    QueueEntry
    | OfferAccepted
    | OfferRejected
    | CallerHungUp
    | AgentHungUp
    | AgentDeviceLost
    | CallHeld
    | CallRetrieved
    | CallbackRequested
    | CallbackAnswered
    | CallbackFailed
    | CallTransferred
    | PhoneUnanswered
)

# The caller states in which their ``FlowRun`` runs: the IVR, and the callback menu
# a queued caller reaches by pressing 1 (until the goodbye).
_IN_A_FLOW = frozenset(
    {CallerState.IN_FLOW, CallerState.CALLBACK_MENU, CallerState.CALLBACK_BOOKED}
)
_WAITING = frozenset({CallerState.QUEUED, CallerState.CALLBACK_MENU, CallerState.CALLBACK_BOOKED})


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOnHold:
    """The core put the call on hold, or took it off (whoever asked): the caller's media follows."""

    call_id: CallId
    held: bool  # False: taken off hold, the caller and the agent are bridged again


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRequeued:
    """The core sent a talking call back to a queue (a blind transfer): its agent's leg goes."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class CallKept:
    """The core took a new call into a queue: a caller still ringing (redirect mode) is answered."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRefused:
    """The core refused the transfer a phone asked for by REFER."""

    call_id: CallId
    error_id: str


Job = Action | CallEnded | CallOnHold | CallRequeued | CallKept | TransferRefused


@dataclass(frozen=True, slots=True, kw_only=True)
class _Answer:
    """An INVITE to answer once a media leg is bound."""

    received: RequestReceived
    offer: SessionDescription
    dnis: str
    start_node: str | None  # the flow's, or None for a queue entry
    queue_id: QueueId | None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Ringing:
    """A caller handed to the core before we answer (redirect mode): what the 200 needs."""

    caller: CallerLeg
    received: RequestReceived
    sdp: bytes  # our answer to their offer, sent with the 200
    agreement: AudioAgreement


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
        self._locate = locate
        self._has_account = has_account
        self._queues = queues
        self._new_call_id = new_call_id
        self.flow = flow
        self.ports = ports or PortPool(host=host)
        self.pacer = Pacer()
        self.player = player or Player()
        self._clock = clock
        # None: no directory for messages, and a voicemail node hangs up.
        self.messages = None if voicemail_dir is None else Messages(voicemail_dir, clock=clock)
        self.dialogs = Dialogs(timers=transactions.timers)
        self.notices: asyncio.Queue[Notice] = asyncio.Queue()
        self._held_by_core: set[CallId] = set()  # as the core last said (CallOnHold)
        self._jobs: asyncio.Queue[Job | _Answer] = asyncio.Queue()
        self._callers: dict[DialogId, CallerLeg] = {}
        self._caller_of: dict[CallId, CallerLeg] = {}
        self.phones = AgentPhones(
            host=host,
            transactions=transactions,
            dialogs=self.dialogs,
            send=self._send,
            report=self.notices.put_nowait,
            answered=self._phone_answered,
            contact=lambda: self.contact,
            locate=locate,
            has_account=has_account,
            ports=self.ports,
            pacer=self.pacer,
            clock=clock,
        )
        self._pending: dict[TransactionKey, _Answer] = {}  # INVITEs waiting for their leg
        self._find_agent = find_agent  # by agent id or SIP username, for REFER
        self.overflow = overflow
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
        self._referrals: dict[CallId, Referral] = {}  # REFERs the core has not settled yet
        self._unanswered: dict[CallId, _Ringing] = {}  # redirect mode: in the core, not answered
        self._ringing_keys: dict[TransactionKey, CallId] = {}  # their INVITEs, for CANCEL
        self.calling_back = CallingBack(
            legs=self.outbound,
            phones=self.phones,
            player=self.player,
            report=self.notices.put_nowait,
            callback_uri=callback_uri,
            ring_seconds=callback_ring_seconds,
            clock=clock,
        )

    # == views ==========================================================================

    def caller(self, call_id: CallId) -> CallerLeg | None:
        return self._caller_of.get(call_id)

    def agent_leg(self, call_id: CallId, agent_id: AgentId) -> AgentLeg | None:
        return self.phones.leg(call_id, agent_id)

    def callers(self) -> list[CallerLeg]:
        return list(self._callers.values())

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

    async def _serve(self, job: Job | _Answer) -> None:
        if isinstance(job, _Answer):
            await self._answer(job)
            return
        ringing = self._unanswered.get(job.call_id)
        if ringing is not None and self._settle_unanswered(ringing, job):
            return
        if isinstance(job, OfferCall):
            if job.callback_number is not None:  # ring only if we can dial the customer
                waiting = self.calling_back.target(job.call_id, job.callback_number) is not None
            else:
                caller = self._caller_of.get(job.call_id)
                waiting = caller is not None and caller.state in _WAITING
            await self.phones.ring(job, caller_waiting=waiting)
        elif isinstance(job, RetractOffer):
            self.phones.retract(job.call_id, job.agent_id)
        elif isinstance(job, ConnectCall) and job.callback_number is not None:
            await self.calling_back.connect(job, job.callback_number)
        elif isinstance(job, ConnectCall):
            await self._connect(job)
        elif isinstance(job, PlayAnnouncement):
            self._announce(job)
        elif isinstance(job, CallOnHold):
            self._follow_hold(job)
        elif isinstance(job, TransferToSite):
            await self._to_site(job)
        elif isinstance(job, CallEnded | RejectCall):
            self._end_call(job.call_id)
        elif isinstance(job, CallRequeued):
            self._requeue(job.call_id)
        elif isinstance(job, TransferRefused):
            self._settle_referral(job.call_id, *refusal_status(job.error_id))

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
            self._invite(received)
        else:  # a BYE or INFO outside any dialog (RFC 3261 §12.2.2)
            self._respond(received.key, response_to(request, 481, to_tag=received.key.to_tag))

    def _invite(self, received: RequestReceived) -> None:
        request, key = received.request, received.key
        uri = request.uri
        dnis = (uri.user if isinstance(uri, SipUri) else None) or ""
        start = None if self.flow is None else self.flow.start_node(dnis)
        queue = QueueId(dnis) if start is None and dnis in self._queues() else None
        if start is None and queue is None:
            self._respond(key, response_to(request, 404, to_tag=received.key.to_tag))
            return
        content = request.headers.content_type()
        if not request.body or content is None or content.essence != SDP:
            self._refuse_offer(received, "An SDP offer is required")
            return
        try:
            offer = SessionDescription.parse(request.body)
            LocalSession(address=self.host).answer(offer, port=9)  # a trial: can we take it?
        except OfferNotAcceptable:
            self._refuse_offer(received, "Not Acceptable Here")
            return
        except SdpError as error:
            bad = response_to(request, 400, f"Bad SDP: {error}"[:80], to_tag=received.key.to_tag)
            self._respond(key, bad)
            return
        answer = _Answer(
            received=received, offer=offer, dnis=dnis, start_node=start, queue_id=queue
        )
        self._pending[key] = answer
        self._jobs.put_nowait(answer)  # a socket to bind first: in turn with the core's actions

    def _refuse_offer(self, received: RequestReceived, reason: str) -> None:
        # RFC 3261 §21.4.26, RFC 3264 §6: 488, with what we would take.
        response = response_to(received.request, 488, reason, to_tag=received.key.to_tag)
        response.headers.add("Accept", SDP)
        self._respond(received.key, response)

    def _cancelled(self, received: RequestReceived) -> None:
        """RFC 3261 §9.2: 200 to the CANCEL; 487 to the INVITE if it is not answered yet."""
        self._respond(received.key, response_to(received.request, 200, to_tag=received.key.to_tag))
        invite = received.cancels
        pending = None if invite is None else self._pending.pop(invite, None)
        if invite is not None and pending is not None:
            request = pending.received.request
            self._respond(invite, response_to(request, 487, to_tag=pending.received.key.to_tag))
        ringing = None if invite is None else self._ringing_keys.get(invite)
        caller = None if ringing is None else self._caller_of.get(ringing)
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
        caller = self._callers.get(found.id)
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
            self._referred(received, agent)
        elif method == "REFER":
            refusal = response_to(request, 403, "Only an agent's phone may transfer")
            self._respond(received.key, refusal)
        elif method == "INFO":
            digit = _relayed_digit(request)
            self._respond(received.key, response_to(request, 200))
            if caller is not None and digit is not None:
                self._digit(caller, digit)
        elif method == "INVITE" and agent is not None:
            self._reinvited_by_phone(received, found, agent)
        else:  # a caller's re-INVITE or anything else in the dialog: the call goes on unchanged
            self._respond(received.key, response_to(request, 488 if method == "INVITE" else 501))

    def _reinvited_by_phone(self, received: RequestReceived, dialog: Dialog, leg: AgentLeg) -> None:
        """The agent's phone put the caller on hold, or took them off (RFC 3264 §8.4).

        The core hears ``CallHeld`` and ``CallRetrieved``, as from the desktop;
        the media follows the core's state (``_follow_hold``), whoever asked.
        Our answer keeps a hold we made from the desktop (``ivr.phone_hold``);
        while our own re-INVITE is out, the phone's crosses it: 491 (RFC 3261 §14.2).
        """
        request = received.request
        if leg.hold.offering_now:
            self._respond(received.key, dialog.answer(request, 491, self._now()))
            return
        ours = Direction.SENDONLY if leg.hold.agreed else Direction.SENDRECV
        try:
            answer, agreement = leg.session.answer(
                SessionDescription.parse(request.body), port=leg.media.port, direction=ours
            )
        except OfferNotAcceptable:
            self._respond(received.key, response_to(request, 488))
            return
        except SdpError:
            self._respond(received.key, response_to(request, 400, "Bad SDP"))
            return
        leg.media.configure(agreement)
        response = dialog.answer(
            request, 200, self._now(), headers=[("Content-Type", SDP)], body=answer.encode()
        )
        self._respond(received.key, response)
        held = leg.hold.phone_holds
        if agreement.remote_hold and not held:
            leg.hold.phone_holds = True
            self.notices.put_nowait(CallHeld(call_id=leg.call_id, agent_id=leg.agent_id))
        elif not agreement.remote_hold and held:
            leg.hold.phone_holds = False
            self.notices.put_nowait(CallRetrieved(call_id=leg.call_id))

    def _follow_hold(self, job: CallOnHold) -> None:
        """The caller's media follows the core: music on hold while held, the bridge after.

        The agent's phone is told by re-INVITE when the hold did not come from it.
        """
        if job.held:
            self._held_by_core.add(job.call_id)
        else:
            self._held_by_core.discard(job.call_id)
        caller = self._caller_of.get(job.call_id)
        if caller is None:
            self.calling_back.follow_hold(job.call_id, job.held)
            return
        if caller.state is not CallerState.BRIDGED:
            return
        leg = self.phones.answered_leg(job.call_id)
        if job.held and caller.bridge is not None:
            caller.bridge.close()
            caller.bridge = None
            self._hold(caller)
        elif not job.held and caller.bridge is None:
            if leg is None:
                return
            if caller.playback is not None:
                caller.playback.stop()
                caller.playback = None
            caller.bridge = Bridge(caller.media, leg.media)
        if leg is not None:
            self.phones.follow_hold(leg, job.held)

    def ack(self, request: Request) -> None:
        """An ACK no transaction took: for one of our 2xx (RFC 3261 §13.3.1.4)."""
        self.dialogs.apply_request(request, self._now())

    # == answering a caller =============================================================

    async def _answer(self, job: _Answer) -> None:
        received = job.received
        if self._pending.pop(received.key, None) is None:
            return  # cancelled while the socket was bound
        request = received.request
        try:
            media = await MediaLeg.open(ports=self.ports, pacer=self.pacer, continuous=True)
        except Exception as error:  # PortsExhausted and socket errors: no audio, no call
            log.warning("no media leg for a call: %s", error)
            self._respond(received.key, response_to(request, 503, to_tag=received.key.to_tag))
            return
        session = LocalSession(address=self.host)
        now = self._now()
        try:
            sdp, agreement = session.answer(job.offer, port=media.port)
            dialog = self.dialogs.create_uas(request, contact=self.contact)
        except (SdpError, ValueError) as error:
            media.close()
            self._respond(received.key, response_to(request, 400, str(error)[:80]))
            return
        # Redirect mode: a caller dialling a queue rings while the core decides (302 possible).
        ring_first = job.queue_id is not None and self.overflow is OverflowMode.REDIRECT
        if ring_first:
            self._respond(received.key, dialog.answer(request, 180, now))
        else:
            media.configure(agreement)
            response = dialog.answer(
                request, 200, now, headers=[("Content-Type", SDP)], body=sdp.encode()
            )
            self._respond(received.key, response)
        sender = request.from_address
        ani = sender.uri.user if sender is not None and isinstance(sender.uri, SipUri) else None
        caller = CallerLeg(
            call_id=self._new_call_id(),
            dialog=dialog,
            media=media,
            peer=received.source,
            ani=ani or "",
            dnis=job.dnis,
            language=self.flow.language if self.flow is not None else Language("en"),
            state=CallerState.RINGING if ring_first else CallerState.ANSWERED,
        )
        self._callers[dialog.id] = caller
        self._caller_of[caller.call_id] = caller
        media.on_digit = lambda _leg, key: self._key_pressed(caller, key)
        described = {
            "call_id": caller.call_id,
            "ani": caller.ani,
            "dnis": caller.dnis,
            "source": f"{caller.peer.host}:{caller.peer.port}",
        }
        if ring_first and job.queue_id is not None:
            log.info("call %s ringing", caller.call_id, extra=described)
            ringing = _Ringing(
                caller=caller, received=received, sdp=sdp.encode(), agreement=agreement
            )
            self._unanswered[caller.call_id] = ringing
            self._ringing_keys[received.key] = caller.call_id
            self._hand_to_core(caller, job.queue_id, language=None, data={})
            return
        log.info("call %s answered", caller.call_id, extra=described)
        if job.start_node is not None and self.flow is not None:
            run = FlowRun(self.flow, start_node=job.start_node, ani=caller.ani)
            caller.flow = run
            caller.move(CallerInput.FLOW_STARTED)
            self._flow_actions(caller, run.start(now))
        elif job.queue_id is not None:
            self._enter_queue(caller, job.queue_id, language=None, data={})

    def _enter_queue(
        self,
        caller: CallerLeg,
        queue_id: QueueId,
        *,
        language: Language | None,
        data: Mapping[str, str],
        skills: Mapping[Skill, int] | None = None,
        priority: int | None = None,
    ) -> None:
        caller.move(CallerInput.QUEUE_ENTERED)
        self._hand_to_core(
            caller, queue_id, language=language, data=data, skills=skills, priority=priority
        )
        self._hold(caller)

    def _hand_to_core(
        self,
        caller: CallerLeg,
        queue_id: QueueId,
        *,
        language: Language | None,
        data: Mapping[str, str],
        skills: Mapping[Skill, int] | None = None,
        priority: int | None = None,
    ) -> None:
        caller.in_core = True
        self.notices.put_nowait(
            QueueEntry(
                call_id=caller.call_id,
                queue_id=queue_id,
                ani=caller.ani,
                dnis=caller.dnis,
                language=language,
                skills=dict(skills or {}),
                priority=priority,
                data=dict(data),
            )
        )

    # == redirect mode: callers the core holds before we answer ==========================

    def _settle_unanswered(self, ringing: _Ringing, job: Job) -> bool:
        """The core's first word on a ringing caller: 302 or 486 ends it (True); else answer.

        ``TransferToSite`` becomes ``302 Moved Temporarily`` to the site (RFC 3261
        §21.3.3), ``RejectCall`` ``486 Busy Here``, the core ending it otherwise
        ``480``; any other job means the core keeps the caller: we answer, and
        the job goes on as for any queued caller (False).
        """
        if isinstance(job, TransferToSite):
            log.info("call %s: redirected to %s (%s)", job.call_id, job.site, job.reason)
            self._refuse_ringing(ringing, 302, headers=[("Contact", f"<{job.site}>")])
        elif isinstance(job, RejectCall):
            self._refuse_ringing(ringing, 486)
        elif isinstance(job, CallEnded):
            self._refuse_ringing(ringing, 480)
        else:
            self._pick_up(ringing)
            return False
        return True

    def _pick_up(self, ringing: _Ringing) -> None:
        caller, received = ringing.caller, ringing.received
        self._forget_ringing(ringing)
        caller.media.configure(ringing.agreement)
        response = caller.dialog.answer(
            received.request, 200, self._now(), headers=[("Content-Type", SDP)], body=ringing.sdp
        )
        self._respond(received.key, response)
        caller.move(CallerInput.PICKED_UP)
        self._hold(caller)
        log.info("call %s answered in queue", caller.call_id)

    def _refuse_ringing(
        self, ringing: _Ringing, status: int, *, headers: list[tuple[str, str]] | None = None
    ) -> None:
        """A final failure to the ringing caller's INVITE; the caller is done with here."""
        caller, received = ringing.caller, ringing.received
        self._forget_ringing(ringing)
        response = caller.dialog.answer(
            received.request, status, self._now(), headers=headers or []
        )
        self._respond(received.key, response)
        self._close_caller(caller)

    def _forget_ringing(self, ringing: _Ringing) -> None:
        self._unanswered.pop(ringing.caller.call_id, None)
        self._ringing_keys.pop(ringing.received.key, None)

    # == the IVR flow ===================================================================

    def _flow_actions(self, caller: CallerLeg, actions: list[FlowAction]) -> None:
        for action in actions:
            if isinstance(action, KeepMessage):  # filed even when the caller has hung up
                self._keep_message(caller, action)
                continue
            if caller.state is CallerState.ENDED:
                return
            if isinstance(action, PlayPrompts):
                self._play(caller, action.prompts, barge_in=action.interruptible)
                caller.play_id = action.play_id
            elif isinstance(action, StopPlayback):
                if caller.playback is not None and caller.play_id == action.play_id:
                    caller.play_id = None
                    caller.playback.stop()
            elif isinstance(action, EnterQueue) and caller.state is CallerState.CALLBACK_MENU:
                caller.flow = None  # (the menu's fallback): back to waiting, in the same place
                caller.move(CallerInput.QUEUE_ENTERED)
                self._hold(caller)
            elif isinstance(action, EnterQueue):
                caller.language = action.language
                self._enter_queue(
                    caller,
                    action.queue_id,
                    language=action.language,
                    data=action.data,
                    skills=action.skills,
                    priority=action.priority,
                )
            elif isinstance(action, RequestCallback):
                self._request_callback(caller, action)
            elif isinstance(action, Hangup):
                log.info(
                    "call %s: the flow hangs up (%s)",
                    caller.call_id,
                    action.reason,
                    extra={"call_id": caller.call_id},
                )
                if caller.in_core and caller.state is CallerState.CALLBACK_MENU:
                    # Left the callback menu without a number: the caller is gone.
                    self.notices.put_nowait(CallerHungUp(call_id=caller.call_id))
                self._hang_up_caller(caller)
            elif isinstance(action, StartRecording):
                self._record(caller, action.max_seconds)
        self._wake()  # the flow may have armed a timer

    def _key_pressed(self, caller: CallerLeg, key: KeyPressed) -> None:
        self._digit(caller, key.digit)

    def _digit(self, caller: CallerLeg, digit: str) -> None:
        if digit == STOP_KEY and self.messages is not None and self.messages.stop(caller.call_id):
            return  # the end of the message; the recording's end carries the flow on
        if caller.state in _IN_A_FLOW and caller.flow is not None:
            self._flow_actions(caller, caller.flow.digit(digit, self._now()))
        elif caller.state is CallerState.QUEUED and digit == "1" and caller.callback_offered:
            self._choose_callback(caller)

    # == callbacks ======================================================================

    def _choose_callback(self, caller: CallerLeg) -> None:
        """A queued caller took the callback offered: the flow's callback menu, still queued."""
        flow = self.flow
        if flow is None or flow.queue_callback is None:
            log.info(
                "call %s: 1 for a callback, but the flow has no queue_callback", caller.call_id
            )
            return
        if caller.playback is not None:
            caller.playback.stop()
            caller.playback = None
        caller.move(CallerInput.CALLBACK_CHOSEN)
        run = FlowRun(
            flow, start_node=flow.queue_callback, ani=caller.ani, language=caller.language
        )
        caller.flow = run
        self._flow_actions(caller, run.start(self._now()))

    def _request_callback(self, caller: CallerLeg, action: RequestCallback) -> None:
        """The caller confirmed a number: a queued caller's call becomes a callback task
        (its place kept); from the IVR menu, a task is booked in the node's queue. Either
        way the caller hears the goodbye and is hung up without a ``CallerHungUp``."""
        self.calling_back.remember(caller.call_id, str(caller.dialog.remote_target))
        if caller.state is CallerState.CALLBACK_MENU:
            caller.move(CallerInput.CALLBACK_REQUESTED)
            caller.in_core = False  # the core's call is the task now: no caller to lose
            self.notices.put_nowait(CallbackRequested(call_id=caller.call_id, number=action.number))
        elif caller.state is CallerState.IN_FLOW:
            self.notices.put_nowait(
                QueueEntry(
                    call_id=caller.call_id,
                    queue_id=action.queue_id,
                    ani=caller.ani,
                    dnis=caller.dnis,
                    language=action.language,
                    data=dict(action.data),
                    callback_number=action.number,
                )
            )
        log.info("call %s: callback to %s requested", caller.call_id, action.number)

    def _played(self, caller: CallerLeg, playback: Playback, result: PlaybackResult) -> None:
        if caller.state is CallerState.ENDED or caller.playback is not playback:
            return
        caller.playback = None
        if result.ending is not PlaybackEnd.FINISHED:
            return
        if caller.state in _IN_A_FLOW and caller.flow is not None:
            play_id, caller.play_id = caller.play_id, None
            if play_id is not None:
                self._flow_actions(caller, caller.flow.prompt_finished(self._now(), play_id))
        elif caller.state is CallerState.QUEUED:
            self._hold(caller)  # after an announcement, back to the music

    def _play(self, caller: CallerLeg, prompts: tuple[str, ...], *, barge_in: bool) -> None:
        playback = self.player.play(caller.media, prompts, barge_in=barge_in)
        caller.playback = playback
        caller.played.append(prompts)
        playback.done.add_done_callback(
            lambda done: (
                self._played(caller, playback, done.result()) if not done.cancelled() else None
            )
        )

    # == voicemail (ivr.messages) ======================================================

    def _record(self, caller: CallerLeg, max_seconds: float) -> None:
        if self.messages is None:
            log.warning(
                "call %s: no voicemail directory; hanging up",
                caller.call_id,
                extra={"call_id": caller.call_id},
            )
            self._hang_up_caller(caller)
            return
        try:
            recording = self.messages.record(caller.call_id, caller.media, max_seconds=max_seconds)
        except (OSError, RuntimeError) as error:  # a full disk, a directory not ours...
            log.error(
                "call %s: cannot record a message: %s",
                caller.call_id,
                error,
                extra={"call_id": caller.call_id},
            )
            self._hang_up_caller(caller)
            return
        log.info(
            "call %s: recording a message to %s",
            caller.call_id,
            recording.path,
            extra={"call_id": caller.call_id},
        )
        recording.done.add_done_callback(
            lambda done: self._recorded(caller, done.result()) if not done.cancelled() else None
        )

    def _recorded(self, caller: CallerLeg, result: RecordingResult) -> None:
        """The recording ended (``#``, its limit, or the caller hanging up): the flow goes on."""
        assert self.messages is not None
        relative = self.messages.finished(caller.call_id, result)
        if caller.flow is not None:
            finished = caller.flow.recording_finished(relative, result.seconds, self._now())
            self._flow_actions(caller, finished)

    def _keep_message(self, caller: CallerLeg, action: KeepMessage) -> None:
        if self.messages is None:
            return  # nothing was recorded without a directory
        left = self.messages.keep(caller.call_id, ani=caller.ani, dnis=caller.dnis, message=action)
        log.info(
            "call %s: a %.1f s message left in %r",
            caller.call_id,
            left.seconds,
            left.mailbox,
            extra={"call_id": caller.call_id, "ani": caller.ani, "mailbox": left.mailbox},
        )

    def _hold(self, caller: CallerLeg) -> None:
        caller.playback = self.player.hold_music(caller.media)
        caller.play_id = None

    def _announce(self, action: PlayAnnouncement) -> None:
        caller = self._caller_of.get(action.call_id)
        if caller is None or caller.state is not CallerState.QUEUED:
            return
        if action.offer_callback and (self.flow is None or self.flow.queue_callback is None):
            action = replace(action, offer_callback=False)  # no menu to take it: not offered
        caller.callback_offered = action.offer_callback
        self._play(caller, prompts_for(action, caller.language), barge_in=False)

    # == agents' phones ================================================================

    async def _connect(self, action: ConnectCall) -> None:
        caller = self._caller_of.get(action.call_id)
        leg = self.phones.leg(action.call_id, action.agent_id)
        if caller is None or leg is None or caller.state not in _WAITING:
            return  # a desktop-only agent, or a caller not ours: nothing to bridge
        if leg.ringing:  # accepted on the desktop: the phone is asked to answer by itself
            await self.phones.answer_on_desktop(action.call_id, action.agent_id)
            return
        if leg.state is AgentLegState.ANSWERED:
            self._bridge(caller, leg)

    def _phone_answered(self, leg: AgentLeg) -> None:
        """The phone answered after the agent accepted on the desktop: bridge it now."""
        caller = self._caller_of.get(leg.call_id)
        if caller is None or caller.state not in _WAITING:
            self.phones.hang_up(leg)  # the caller left meanwhile
            return
        self._bridge(caller, leg)
        if leg.call_id in self._held_by_core:  # held from the desktop before the phone answered
            self._follow_hold(CallOnHold(call_id=leg.call_id, held=True))

    def _bridge(self, caller: CallerLeg, leg: AgentLeg) -> None:
        if caller.playback is not None:
            caller.playback.stop()
            caller.playback = None
        if caller.state is not CallerState.QUEUED:  # in the callback menu: the agent wins
            caller.flow = None
            caller.in_core = True  # (a callback request the core refused: still its caller)
        caller.bridge = Bridge(caller.media, leg.media)
        caller.move(CallerInput.CONNECTED)
        leg.move(AgentInput.CONNECTED)
        log.info(
            "call %s bridged to %s's phone",
            caller.call_id,
            leg.agent_id,
            extra={"call_id": caller.call_id, "agent_id": leg.agent_id},
        )

    def response(self, response: Response, key: TransactionKey) -> None:
        """A response to one of our requests: those to our INVITEs (phones, sites, call backs)."""
        if not self.outbound.response(response, key):
            self.phones.response(response, key)

    def invite_timed_out(self, key: TransactionKey) -> None:
        if not self.outbound.timed_out(key):
            self.phones.invite_timed_out(key)

    # == transfers: REFER, blind transfers, overflow to another site ======================

    def _referred(self, received: RequestReceived, leg: AgentLeg) -> None:
        """An agent's phone asks to send its caller elsewhere (RFC 3515; ``ivr.referrals``)."""
        request = received.request
        if leg.state is not AgentLegState.BRIDGED:
            self._respond(received.key, response_to(request, 403, "No call to transfer"))
            return
        if leg.call_id in self._referrals:
            self._respond(received.key, response_to(request, 491, "A transfer is in progress"))
            return
        # Ours: the host we listen on, or whatever name the phone reached us by.
        hosts = {self.host} | ({request.uri.host} if isinstance(request.uri, SipUri) else set())
        found = refer_target(
            request, hosts=hosts, queues=self._queues(), find_agent=self._find_agent
        )
        if isinstance(found, ReferRefused):
            self._respond(received.key, response_to(request, found.status, found.reason))
            return
        cseq = request.cseq
        assert cseq is not None  # checked on arrival
        accepted = response_to(request, 202, headers=[("Contact", str(self.contact))])
        self._respond(received.key, accepted)
        referral = Referral(leg=leg, event_id=cseq.number, target=found)
        self._referrals[leg.call_id] = referral
        self._notify(referral, 100, "Trying")
        log.info("call %s: %s's phone transfers it to %s", leg.call_id, leg.agent_id, found)
        self.notices.put_nowait(
            CallTransferred(call_id=leg.call_id, queue_id=found.queue_id, agent_id=found.agent_id)
        )

    def _notify(self, referral: Referral, status: int, reason: str) -> None:
        dialog = referral.leg.dialog
        if dialog is not None and dialog.state is DialogState.CONFIRMED:
            self._request(notify(dialog, referral, status, reason), referral.leg.destination)

    def _settle_referral(self, call_id: CallId, status: int, reason: str) -> None:
        """The core moved the caller (200) or refused: the referral's last NOTIFY."""
        referral = self._referrals.pop(call_id, None)
        if referral is None:
            return
        referral.move(ReferralInput.SETTLED)
        self._notify(referral, status, reason)
        if status >= 300:
            log.info("call %s: transfer refused (%d %s)", call_id, status, reason)

    def _requeue(self, call_id: CallId) -> None:
        """A blind transfer (REFER or the API): the agent's phone is let go, the caller waits."""
        self._settle_referral(call_id, 200, "OK")  # before the BYE ends the dialog
        self._held_by_core.discard(call_id)
        self.phones.end_call(call_id)  # BYE to the transferring agent's phone
        caller = self._caller_of.get(call_id)
        if caller is None or caller.state is not CallerState.BRIDGED:
            return
        if caller.bridge is not None:
            caller.bridge.close()
            caller.bridge = None
        caller.move(CallerInput.REQUEUED)
        self._hold(caller)
        log.info("call %s: transferred, back to music on hold", call_id)

    async def _to_site(self, job: TransferToSite) -> None:
        """The core sends the caller to another centre: we call it and bridge them."""
        caller = self._caller_of.get(job.call_id)
        if caller is None or caller.state not in (CallerState.QUEUED, CallerState.CALLBACK_MENU):
            log.info("call %s: nothing of ours to send to %s", job.call_id, job.site)
            self._end_call(job.call_id)
            return
        caller.flow = None  # (overflowed while in the callback menu: that is over)
        await self.sites.send(caller, job.site, job.reason)
        self._wake()  # a new answer deadline

    # == the end ========================================================================

    def _caller_left(self, caller: CallerLeg) -> None:
        """The caller sent BYE (already answered 200), or CANCEL while ringing."""
        if caller.state is CallerState.ENDED:
            return
        ringing = self._unanswered.get(caller.call_id)
        if ringing is not None:
            self._refuse_ringing(ringing, 487)
            self.notices.put_nowait(CallerHungUp(call_id=caller.call_id))
            return
        if caller.state is CallerState.AWAY:  # the core is done with it: the site's leg goes
            self._close_caller(caller)
            self.sites.caller_left(caller)
            return
        if caller.flow is not None and caller.state in _IN_A_FLOW:
            caller.flow.caller_hung_up(self._now())
        self._close_caller(caller)
        if caller.in_core:
            self.notices.put_nowait(CallerHungUp(call_id=caller.call_id))

    def _hang_up_caller(self, caller: CallerLeg) -> None:
        if caller.state is CallerState.ENDED:
            return
        ringing = self._unanswered.get(caller.call_id)
        if ringing is not None:  # never answered: refuse the INVITE instead of a BYE
            self._refuse_ringing(ringing, 480)
            return
        if caller.dialog.state is DialogState.CONFIRMED or caller.dialog.awaiting_ack:
            self._bye(caller.dialog, caller.peer)
        self._close_caller(caller)

    def _close_caller(self, caller: CallerLeg) -> None:
        caller.move(CallerInput.ENDED)
        if caller.bridge is not None:
            caller.bridge.close()
        caller.media.close()
        self._callers.pop(caller.dialog.id, None)
        self._caller_of.pop(caller.call_id, None)
        self._held_by_core.discard(caller.call_id)
        self.dialogs.remove(caller.dialog.id)

    def _end_call(self, call_id: CallId) -> None:
        caller = self._caller_of.get(call_id)
        if caller is not None and caller.state not in (
            CallerState.AWAY,
            CallerState.CALLBACK_BOOKED,
        ):
            self._hang_up_caller(caller)  # (not sent to a site; one who booked a callback
            # hears the goodbye out)
        self._referrals.pop(call_id, None)
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
        for caller in list(self._callers.values()):
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
                *(c.flow.next_deadline() for c in self._callers.values() if c.flow is not None),
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
                caller = self._callers.get(output.dialog)
                self._request(output.bye, caller.peer if caller else output_peer(output.bye))
                if caller is not None:
                    self._caller_left(caller)
        for caller in list(self._callers.values()):
            run = caller.flow
            deadline = None if run is None else run.next_deadline()
            due = run is not None and deadline is not None and deadline <= now
            if due and run is not None and caller.state in _IN_A_FLOW:
                self._flow_actions(caller, run.advance(now))
        self.calling_back.advance(now)


def output_peer(request: Request) -> Peer:
    """Where an in-dialog request goes without a better address: its Request-URI."""
    return Peer.for_uri(request.uri)


def _relayed_digit(request: Request) -> str | None:
    """The key of an INFO with ``application/dtmf-relay`` (``Signal=5``), if it is one."""
    content = request.headers.content_type()
    if content is None or content.essence != DTMF_RELAY:
        return None
    for line in request.body.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition("=")
        if name.strip().lower() == "signal":
            digit = value.strip().upper()
            if len(digit) == 1 and digit in "0123456789*#ABCD":
                return digit
    return None
