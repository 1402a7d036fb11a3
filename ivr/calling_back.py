"""Calling customers back: the SIP side of the core's callback tasks.

Theory of operation. ``CallingBack`` is the half of ``ivr.calls`` that
carries out a callback task once an agent took it. Where the customer is
called (``target``): the ``callback_uri`` template with ``{number}`` (a trunk),
else the Contact of the SIP caller who asked (``remember``); with neither,
the agent's phone is not rung and the agent dials from the desktop. When the
core connects a callback task to an agent whose phone answered (``connect``),
an ``ivr.outbound_legs`` INVITE goes to the customer; their answer bridges
the two legs and the core hears ``CallbackAnswered``; a customer not reached
is ``CallbackFailed`` with the leg's reason, their BYE ``CallerHungUp``.
Hold follows the core as for a caller (music to the customer, the bridge
back after). ``end`` lets go of everything of a call the core ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from acd.actions import ConnectCall
from acd.commands import CallbackAnswered, CallbackFailed, CallerHungUp
from acd.ids import AgentId, CallId
from ivr.agent_legs import AgentInput, AgentLegState
from ivr.agent_phones import AgentPhones
from ivr.media import Bridge, Playback, Player
from ivr.outbound_legs import (
    Answered,
    Failed,
    HungUp,
    OutboundLegs,
    OutboundReport,
    OutboundState,
)

log = logging.getLogger(__name__)

CallbackReport = CallbackAnswered | CallbackFailed | CallerHungUp


class CallingBack:
    """Callback tasks in progress: where to call, which phone waits, the bridges."""

    def __init__(
        self,
        *,
        outbound: Callable[[Callable[[OutboundReport], None]], OutboundLegs],
        phones: AgentPhones,
        player: Player,
        report: Callable[[CallbackReport], None],
        callback_uri: str | None = None,
    ) -> None:
        """``outbound`` builds the outbound legs with the report function they must call."""
        self.legs = outbound(self._leg_report)
        self._phones = phones
        self._player = player
        self._report = report
        self.callback_uri = callback_uri
        self._contacts: dict[CallId, str] = {}  # the Contact of the SIP caller who asked
        self._dialing: dict[CallId, AgentId] = {}  # whose phone waits for the customer
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
        leg = self._phones.leg(action.call_id, action.agent_id)
        if leg is None:
            return  # a desktop-only agent: they dial the number themselves
        if leg.ringing:  # accepted on the desktop while the phone rang: they dial themselves
            self._phones.retract(action.call_id, action.agent_id)
            return
        target = self.target(action.call_id, number)
        if leg.state is not AgentLegState.ANSWERED or target is None:
            return
        self._dialing[action.call_id] = action.agent_id
        await self.legs.dial(action.call_id, target)

    def _leg_report(self, report: OutboundReport) -> None:
        call_id = report.call_id
        if isinstance(report, Failed):
            self._dialing.pop(call_id, None)
            self._report(CallbackFailed(call_id=call_id, reason=report.reason))
        elif isinstance(report, HungUp):
            self._report(CallerHungUp(call_id=call_id))
        elif isinstance(report, Answered):
            agent_id = self._dialing.pop(call_id, None)
            customer = self.legs.leg(call_id)
            leg = None if agent_id is None else self._phones.leg(call_id, agent_id)
            if customer is None or leg is None or leg.state is not AgentLegState.ANSWERED:
                self.legs.end(call_id)  # the agent left meanwhile: the core hears of it
                return
            self._bridges[call_id] = Bridge(customer.media, leg.media)
            leg.move(AgentInput.CONNECTED)
            self._report(CallbackAnswered(call_id=call_id))
            log.info("call %s: the customer answered; bridged to %s", call_id, agent_id)

    def follow_hold(self, call_id: CallId, held: bool) -> None:
        """The customer's media follows the core: music while held, the bridge after."""
        customer = self.legs.leg(call_id)
        if customer is None or customer.state is not OutboundState.ANSWERED:
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
        """The core ended the call: the customer's leg goes, and all we kept for it."""
        self.legs.end(call_id)
        bridge = self._bridges.pop(call_id, None)
        if bridge is not None:
            bridge.close()
        music = self._music.pop(call_id, None)
        if music is not None:
            music.stop()
        self._dialing.pop(call_id, None)
        self._contacts.pop(call_id, None)
