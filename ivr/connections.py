"""A caller connected to an agent's phone: the bridge, and hold from the desktop or the phone.

The desktop drives the agent's phone (``ivr.agent_phones``): an offer
accepted on the desktop while the phone rings (``ConnectCall`` for a ringing
leg) re-rings it asking for auto-answer, and its answer is bridged at once
(``phone_answered``); a hold or retrieve from the desktop (``CallOnHold``)
re-INVITEs the phone (``ivr.phone_hold``), unless the phone made it.
Whoever holds, the caller's media follows the core (``follow_hold``): music
on hold while held, the bridge after.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from acd.actions import ConnectCall
from acd.commands import CallHeld, CallRetrieved
from acd.ids import CallId
from ivr.agent_legs import AgentInput, AgentLeg, AgentLegState
from ivr.agent_phones import SDP, AgentPhones
from ivr.caller_legs import WAITING, CallerInput, CallerLeg, Callers, CallerState
from ivr.calling_back import CallingBack
from ivr.media import Bridge
from ivr.notices_and_jobs import CallOnHold, Notice
from ivr.sdp import Direction, OfferNotAcceptable, SdpError, SessionDescription
from ivr.sip.dialogs import Dialog
from ivr.sip.message import Response, response_to
from ivr.sip.transaction_outputs import RequestReceived, TransactionKey

log = logging.getLogger(__name__)


class Connections:
    """Callers bridged to agents' phones, and the hold of their calls as the core has it."""

    def __init__(
        self,
        *,
        callers: Callers,
        phones: AgentPhones,
        calling_back: CallingBack,
        hold_music: Callable[[CallerLeg], None],
        respond: Callable[[TransactionKey, Response], None],
        report: Callable[[Notice], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._callers = callers
        self._phones = phones
        self._calling_back = calling_back
        self._hold = hold_music
        self._respond = respond
        self._report = report
        self._clock = clock
        self._held_by_core: set[CallId] = set()  # as the core last said (CallOnHold)

    def _now(self) -> float:
        return self._clock()

    def released(self, call_id: CallId) -> None:
        """The call left its agent (ended, or sent back to a queue): no hold of ours to keep."""
        self._held_by_core.discard(call_id)

    # == connecting =====================================================================

    async def connect(self, action: ConnectCall) -> None:
        caller = self._callers.get(action.call_id)
        leg = self._phones.leg(action.call_id, action.agent_id)
        if caller is None or leg is None or caller.state not in WAITING:
            return  # a desktop-only agent, or a caller not ours: nothing to bridge
        if leg.ringing:  # accepted on the desktop: the phone is asked to answer by itself
            await self._phones.answer_on_desktop(action.call_id, action.agent_id)
            return
        if leg.state is AgentLegState.ANSWERED:
            self._bridge(caller, leg)

    def phone_answered(self, leg: AgentLeg) -> None:
        """The phone answered after the agent accepted on the desktop: bridge it now."""
        caller = self._callers.get(leg.call_id)
        if caller is None or caller.state not in WAITING:
            self._phones.hang_up(leg)  # the caller left meanwhile
            return
        self._bridge(caller, leg)
        if leg.call_id in self._held_by_core:  # held from the desktop before the phone answered
            self.follow_hold(CallOnHold(call_id=leg.call_id, held=True))

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

    # == hold ===========================================================================

    def reinvited(self, received: RequestReceived, dialog: Dialog, leg: AgentLeg) -> None:
        """The agent's phone put the caller on hold, or took them off (RFC 3264 §8.4).

        The core hears ``CallHeld`` and ``CallRetrieved``, as from the desktop;
        the media follows the core's state (``follow_hold``), whoever asked.
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
            self._report(CallHeld(call_id=leg.call_id, agent_id=leg.agent_id))
        elif not agreement.remote_hold and held:
            leg.hold.phone_holds = False
            self._report(CallRetrieved(call_id=leg.call_id))

    def follow_hold(self, job: CallOnHold) -> None:
        """The caller's media follows the core: music on hold while held, the bridge after.

        The agent's phone is told by re-INVITE when the hold did not come from it.
        """
        if job.held:
            self._held_by_core.add(job.call_id)
        else:
            self._held_by_core.discard(job.call_id)
        caller = self._callers.get(job.call_id)
        if caller is None:
            self._calling_back.follow_hold(job.call_id, job.held)
            return
        if caller.state is not CallerState.BRIDGED:
            return
        leg = self._phones.answered_leg(job.call_id)
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
            self._phones.follow_hold(leg, job.held)
