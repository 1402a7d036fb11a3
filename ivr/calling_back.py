"""Calling customers back: the SIP side of the core's callback tasks.

Theory of operation. ``CallingBack`` is the half of ``ivr.calls`` that
carries out a callback task once an agent took it. Where the customer is
called (``target``): the ``callback_uri`` template with ``{number}`` (a trunk),
else the Contact of the SIP caller who asked (``remember``); with neither,
the agent's phone is not rung and the agent dials from the desktop. When the
core connects a callback task to an agent whose phone answered (``connect``),
an INVITE goes to the customer through ``ivr.outbound_legs`` (the legs the
overflow to another site uses too); their answer bridges the two legs and
the core hears ``CallbackAnswered``; a customer not reached is
``CallbackFailed`` with a reason the core keeps (``busy``, ``declined``,
``no_answer``, ``unreachable``, ``failed_<status>``), their BYE
``CallerHungUp``. A customer who lets it ring ``ring_seconds`` is given up on
(``no_answer`` at once, then CANCEL). Hold follows the core as for a caller
(music to the customer, the bridge back after). ``end`` lets go of everything
of a call the core ended. Timers are data: ``next_deadline``, ``advance``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from acd.actions import ConnectCall
from acd.commands import CallbackAnswered, CallbackFailed, CallerHungUp
from acd.ids import AgentId, CallId
from ivr.agent_legs import AgentInput, AgentLegState
from ivr.agent_phones import AgentPhones
from ivr.media import Bridge, Playback, Player
from ivr.outbound_legs import (
    LegAnswered,
    LegFailed,
    LegHungUp,
    LegReport,
    OutboundLeg,
    OutboundLegs,
    OutboundState,
    Unreachable,
)
from ivr.sip.errors import ParseError
from ivr.sip.uri import SipUri, parse_uri

log = logging.getLogger(__name__)

DEFAULT_RING_SECONDS = 30.0
CallbackReport = CallbackAnswered | CallbackFailed | CallerHungUp


def failure_reason(status: int | None) -> str:
    """The core's reason for a call back that failed with ``status`` (None: no answer at all)."""
    if status is None:
        return "unreachable"
    if status in (486, 600):
        return "busy"
    if status == 603:
        return "declined"
    if status in (408, 480, 487):
        return "no_answer"
    return f"failed_{status}"


class CallingBack:
    """Callback tasks in progress: where to call, which phone waits, the bridges."""

    def __init__(
        self,
        *,
        legs: OutboundLegs,
        phones: AgentPhones,
        player: Player,
        report: Callable[[CallbackReport], None],
        callback_uri: str | None = None,
        ring_seconds: float = DEFAULT_RING_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._legs = legs
        self._phones = phones
        self._player = player
        self._report = report
        self.callback_uri = callback_uri
        self.ring_seconds = ring_seconds
        self._clock = clock
        self._contacts: dict[CallId, str] = {}  # the Contact of the SIP caller who asked
        self._customers: dict[CallId, OutboundLeg] = {}
        self._agents: dict[CallId, AgentId] = {}  # whose phone waits for the customer
        self._deadlines: dict[CallId, float] = {}  # until the customer answers
        self._bridges: dict[CallId, Bridge] = {}
        self._music: dict[CallId, Playback] = {}  # a customer on hold

    def remember(self, call_id: CallId, contact: str) -> None:
        """The SIP caller who asked for the callback of ``call_id`` is at ``contact``."""
        self._contacts[call_id] = contact

    def target(self, call_id: CallId, number: str) -> str | None:
        """The SIP URI to call ``number`` back at, or None when we can't (the agent dials)."""
        if self.callback_uri is not None:
            return self.callback_uri.replace("{number}", number)
        return self._contacts.get(call_id)

    async def connect(self, action: ConnectCall, number: str) -> None:
        """The agent took a callback task: with their phone answered, call the customer."""
        call_id = action.call_id
        leg = self._phones.leg(call_id, action.agent_id)
        if leg is None:
            return  # a desktop-only agent: they dial the number themselves
        if leg.ringing:  # accepted on the desktop while the phone rang: they dial themselves
            self._phones.retract(call_id, action.agent_id)
            return
        target = self.target(call_id, number)
        if leg.state is not AgentLegState.ANSWERED or target is None:
            return
        try:
            uri = parse_uri(target)
            if not isinstance(uri, SipUri):
                raise Unreachable(f"not a SIP URI: {target!r}")
            customer = await self._legs.place(
                uri, report=lambda report: self._leg_report(call_id, report)
            )
        except (Unreachable, ParseError, ValueError) as error:
            log.warning("call %s: cannot call back %r: %s", call_id, target, error)
            self._report(CallbackFailed(call_id=call_id, reason="unreachable"))
            return
        self._customers[call_id] = customer
        self._agents[call_id] = action.agent_id
        self._deadlines[call_id] = self._clock() + self.ring_seconds
        log.info("call %s: calling back %s", call_id, target, extra={"call_id": call_id})

    def _leg_report(self, call_id: CallId, report: LegReport) -> None:
        if self._customers.get(call_id) is not report.leg:
            return  # a leg we let go of already
        self._deadlines.pop(call_id, None)
        if isinstance(report, LegFailed):
            self._forget(call_id)
            self._report(CallbackFailed(call_id=call_id, reason=failure_reason(report.status)))
        elif isinstance(report, LegHungUp):
            self._forget(call_id)
            self._report(CallerHungUp(call_id=call_id))
        elif isinstance(report, LegAnswered):
            agent_id = self._agents.get(call_id)
            leg = None if agent_id is None else self._phones.leg(call_id, agent_id)
            if leg is None or leg.state is not AgentLegState.ANSWERED:
                self.end(call_id)  # the agent left meanwhile: the core hears of it
                return
            self._bridges[call_id] = Bridge(report.leg.media, leg.media)
            leg.move(AgentInput.CONNECTED)
            self._report(CallbackAnswered(call_id=call_id))
            log.info("call %s: the customer answered", call_id, extra={"call_id": call_id})

    def follow_hold(self, call_id: CallId, held: bool) -> None:
        """The customer's media follows the core: music while held, the bridge after."""
        customer = self._customers.get(call_id)
        if customer is None or customer.state is not OutboundState.TALKING:
            return
        bridge = self._bridges.get(call_id)
        if held and bridge is not None:
            bridge.close()
            del self._bridges[call_id]
            self._music[call_id] = self._player.hold_music(customer.media)
        elif not held and bridge is None:
            leg = self._phones.answered_leg(call_id)
            if leg is None:
                return
            music = self._music.pop(call_id, None)
            if music is not None:
                music.stop()
            self._bridges[call_id] = Bridge(customer.media, leg.media)

    def end(self, call_id: CallId) -> None:
        """The core ended the call (or the agent left): the customer's leg goes, and all
        we kept for it."""
        customer = self._customers.get(call_id)
        self._forget(call_id)
        self._contacts.pop(call_id, None)
        if customer is not None:
            self._legs.end(customer)

    def _forget(self, call_id: CallId) -> None:
        self._customers.pop(call_id, None)
        self._agents.pop(call_id, None)
        self._deadlines.pop(call_id, None)
        bridge = self._bridges.pop(call_id, None)
        if bridge is not None:
            bridge.close()
        music = self._music.pop(call_id, None)
        if music is not None:
            music.stop()

    # == time ===========================================================================

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def advance(self, now: float) -> None:
        """Give up on customers who rang for ``ring_seconds`` without answering."""
        for call_id, deadline in list(self._deadlines.items()):
            customer = self._customers.get(call_id)
            if deadline > now or customer is None:
                continue
            self._forget(call_id)
            self._legs.end(customer)
            self._report(CallbackFailed(call_id=call_id, reason="no_answer"))
