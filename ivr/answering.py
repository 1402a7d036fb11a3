"""Answering callers: an INVITE taken into the IVR or a queue, or rung while the core decides.

Theory of operation. ``invite`` checks what the caller dialled and what they
offer, and queues the answer (``InviteToAnswer``) in turn with the core's
actions: ``answer`` binds a ``MediaLeg`` first, then answers and starts the
caller's leg (``ivr.caller_legs``), into the flow or the queue
(``ivr.caller_flows``). A CANCEL before that is ``cancelled``.

Entries (RFC 3261 §8.2.2.1 picks by Request-URI): the user part of the
Request-URI is the dialled number; a flow entry point runs the IVR flow, a
queue id goes straight to that queue, anything else is 404. An offer we
cannot answer is 488 (RFC 3264 §6), an INVITE without an offer too (we do not
offer in the 2xx: not done).

With ``OverflowMode.REDIRECT`` a caller dialling a queue is handed to the core
before we answer (180 Ringing): the core's first word (``settle``) decides
between ``302`` to the site (``TransferToSite``), ``486`` (``RejectCall``) and
our 200 (``CallKept``, or any other action about the call).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from acd.actions import RejectCall, TransferToSite
from acd.ids import CallId, Language, QueueId
from ivr.caller_flows import CallerFlows
from ivr.caller_legs import CallerInput, CallerLeg, Callers, CallerState
from ivr.media import MediaLeg, Pacer, PortPool
from ivr.notices_and_jobs import CallEnded, Job
from ivr.sdp import (
    AudioAgreement,
    LocalSession,
    OfferNotAcceptable,
    SdpError,
    SessionDescription,
)
from ivr.sip.dialogs import Dialogs
from ivr.sip.fields import NameAddress
from ivr.sip.message import Response, response_to
from ivr.sip.transaction_outputs import RequestReceived, TransactionKey
from ivr.sip.uri import SipUri
from ivr.site_calls import OverflowMode

log = logging.getLogger(__name__)

SDP = "application/sdp"


@dataclass(frozen=True, slots=True, kw_only=True)
class InviteToAnswer:
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


class Answering:
    """Callers' INVITEs: checked, answered once their media leg is bound, or rung (redirect)."""

    def __init__(
        self,
        *,
        host: str,
        contact: Callable[[], NameAddress],
        ports: PortPool,
        pacer: Pacer,
        dialogs: Dialogs,
        callers: Callers,
        flows: CallerFlows,
        queues: Callable[[], Collection[str]],
        new_call_id: Callable[[], CallId],
        overflow: OverflowMode,
        respond: Callable[[TransactionKey, Response], None],
        queue_job: Callable[[InviteToAnswer], None],
        close_caller: Callable[[CallerLeg], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._host = host
        self._contact = contact
        self._ports = ports
        self._pacer = pacer
        self._dialogs = dialogs
        self._callers = callers
        self._flows = flows
        self._queues = queues
        self._new_call_id = new_call_id
        self.overflow = overflow
        self._respond = respond
        self._queue_job = queue_job
        self._close_caller = close_caller
        self._clock = clock
        self._pending: dict[TransactionKey, InviteToAnswer] = {}  # waiting for their leg
        self._unanswered: dict[CallId, _Ringing] = {}  # redirect mode: in the core, not answered
        self._ringing_keys: dict[TransactionKey, CallId] = {}  # their INVITEs, for CANCEL

    def _now(self) -> float:
        return self._clock()

    # == the INVITE =====================================================================

    def invite(self, received: RequestReceived) -> None:
        request, key = received.request, received.key
        uri = request.uri
        dnis = (uri.user if isinstance(uri, SipUri) else None) or ""
        flow = self._flows.flow
        start = None if flow is None else flow.start_node(dnis)
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
            LocalSession(address=self._host).answer(offer, port=9)  # a trial: can we take it?
        except OfferNotAcceptable:
            self._refuse_offer(received, "Not Acceptable Here")
            return
        except SdpError as error:
            bad = response_to(request, 400, f"Bad SDP: {error}"[:80], to_tag=received.key.to_tag)
            self._respond(key, bad)
            return
        answer = InviteToAnswer(
            received=received, offer=offer, dnis=dnis, start_node=start, queue_id=queue
        )
        self._pending[key] = answer
        self._queue_job(answer)  # a socket to bind first: in turn with the core's actions

    def _refuse_offer(self, received: RequestReceived, reason: str) -> None:
        # RFC 3261 §21.4.26, RFC 3264 §6: 488, with what we would take.
        response = response_to(received.request, 488, reason, to_tag=received.key.to_tag)
        response.headers.add("Accept", SDP)
        self._respond(received.key, response)

    def cancelled(self, invite: TransactionKey) -> CallerLeg | None:
        """A CANCEL of ``invite``: 487 if it is not answered yet; the caller if still ringing."""
        pending = self._pending.pop(invite, None)
        if pending is not None:
            request = pending.received.request
            self._respond(invite, response_to(request, 487, to_tag=pending.received.key.to_tag))
        ringing = self._ringing_keys.get(invite)
        return None if ringing is None else self._callers.get(ringing)

    # == answering a caller =============================================================

    async def answer(self, job: InviteToAnswer) -> None:
        received = job.received
        if self._pending.pop(received.key, None) is None:
            return  # cancelled while the socket was bound
        request = received.request
        try:
            media = await MediaLeg.open(ports=self._ports, pacer=self._pacer, continuous=True)
        except Exception as error:  # PortsExhausted and socket errors: no audio, no call
            log.warning("no media leg for a call: %s", error)
            self._respond(received.key, response_to(request, 503, to_tag=received.key.to_tag))
            return
        session = LocalSession(address=self._host)
        now = self._now()
        try:
            sdp, agreement = session.answer(job.offer, port=media.port)
            dialog = self._dialogs.create_uas(request, contact=self._contact())
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
        flow = self._flows.flow
        caller = CallerLeg(
            call_id=self._new_call_id(),
            dialog=dialog,
            media=media,
            peer=received.source,
            ani=ani or "",
            dnis=job.dnis,
            language=flow.language if flow is not None else Language("en"),
            state=CallerState.RINGING if ring_first else CallerState.ANSWERED,
        )
        self._callers.add(caller)
        media.on_digit = lambda _leg, key: self._flows.key_pressed(caller, key)
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
            self._flows.hand_to_core(caller, job.queue_id, language=None, data={})
            return
        log.info("call %s answered", caller.call_id, extra=described)
        if job.start_node is not None and flow is not None:
            self._flows.start(caller, job.start_node, now)
        elif job.queue_id is not None:
            self._flows.enter_queue(caller, job.queue_id, language=None, data={})

    # == redirect mode: callers the core holds before we answer ==========================

    def settle(self, job: Job) -> bool:
        """The core's first word on a ringing caller: 302 or 486 ends it (True); else answer.

        ``TransferToSite`` becomes ``302 Moved Temporarily`` to the site (RFC 3261
        §21.3.3), ``RejectCall`` ``486 Busy Here``, the core ending it otherwise
        ``480``; any other job means the core keeps the caller: we answer, and
        the job goes on as for any queued caller (False). A job for a caller
        not ringing goes on too (False).
        """
        ringing = self._unanswered.get(job.call_id)
        if ringing is None:
            return False
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

    def refuse(self, call_id: CallId, status: int) -> bool:
        """A ringing caller's INVITE ends with ``status`` (True); False if it is not ringing."""
        ringing = self._unanswered.get(call_id)
        if ringing is None:
            return False
        self._refuse_ringing(ringing, status)
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
        self._flows.hold(caller)
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
