"""The engine: one command at a time, with the time passed in; events and actions out.

Theory of operation. ``handle(command, now)`` first fires every timer due at
or before ``now`` (so a late command meets the state a punctual runtime would
have produced), then applies the command. A command that does not fit the
current state raises ``CommandRejected`` before anything changes; outputs of
timers fired before it ride on the exception as ``step``.

The engine is a stack of layers, each a class over the one before:
``acd.ledger`` (state, timers, one numbered event per transition),
``acd.routing`` (admission, routing, offers, leaving the queue),
``acd.waiting`` (the timers of waiting calls: relaxation, announcements,
estimates, overflow), ``acd.transfers`` (blind transfers, consultations,
conferences, and the end of an agent's leg), and this module: the runtime's
interface, command dispatch, configuration, agents' presence, the commands
that end a wait or a call (hold, hang-up, self-service, wrap-up), callbacks
(a waiting caller's request turns their call into a callback task in the
same place; the task ends reached or not), and the restore after a restart.
Where a layer needs what a later one defines, it declares the method,
raising ``NotImplementedError``. Each layer registers the handlers of the
timers it sets.

Restore. A new process rebuilds its engine from the database: it first
``continue_sequence``s after the last stored event (before anything emits
one, configuring agents included), configures queues and agents, seeds
``remember_last_agent`` from stored contacts, and ends with
``close_interrupted`` each call that was live in the process that died (it
can't be resumed: its telephony is gone with it), but for callback tasks that
were waiting: nobody's line died with them, so ``restore_callback`` puts them
back in their place (their enqueue time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from acd.actions import RetractOffer
from acd.agents import Agent
from acd.calls import Call
from acd.commands import (
    AgentConfigured,
    AgentDeviceLost,
    AgentDeviceRestored,
    AgentHungUp,
    AgentLeftConference,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentWentNotReady,
    AgentWentReady,
    CallArrived,
    CallbackAnswered,
    CallbackFailed,
    CallbackRequested,
    CallerHungUp,
    CallHeld,
    CallRetrieved,
    CallSelfServed,
    CallTransferred,
    Command,
    ConferenceStarted,
    ConsultCancelled,
    ConsultStarted,
    DisasterModeChanged,
    OfferAccepted,
    OfferRejected,
    QueueConfigured,
    TransferCompleted,
    WrapUpFinished,
)
from acd.errors import CommandRejected
from acd.ids import AgentId, CallId, CustomerId, QueueId
from acd.ledger import IN_QUEUE, Step
from acd.queues import QueueRuntime, enrol
from acd.routing import check_callback_number
from acd.states import CALL_TRANSITIONS, AgentState, AgentStatus, CallState, Outcome, Trigger
from acd.timers import TimerKind
from acd.transfers import Transfers
from acd.views import AgentView, CallView, QueueStats

_BUSY = frozenset({AgentState.RESERVED, AgentState.TALKING, AgentState.HELD, AgentState.WRAP_UP})


class Engine(Transfers):
    """The ACD core: commands and due timers in, events and actions out."""

    def __init__(self) -> None:
        super().__init__()
        self._handlers: dict[type, Callable[[Any, float], None]] = {
            QueueConfigured: self._queue_configured,
            AgentConfigured: self._agent_configured,
            DisasterModeChanged: self._disaster_mode_changed,
            AgentLoggedIn: self._agent_logged_in,
            AgentLoggedOut: self._agent_logged_out,
            AgentWentReady: self._agent_went_ready,
            AgentWentNotReady: self._agent_went_not_ready,
            AgentDeviceLost: self._agent_device_lost,
            AgentDeviceRestored: self._agent_device_restored,
            CallArrived: self._call_arrived,
            OfferAccepted: self._offer_accepted,
            OfferRejected: self._offer_rejected,
            CallHeld: self._call_held,
            CallRetrieved: self._call_retrieved,
            CallerHungUp: self._caller_hung_up,
            AgentHungUp: self._agent_hung_up,
            CallSelfServed: self._call_self_served,
            CallbackRequested: self._callback_requested,
            CallbackAnswered: self._callback_answered,
            CallbackFailed: self._callback_failed,
            CallTransferred: self._call_transferred,
            ConsultStarted: self._consult_started,
            ConsultCancelled: self._consult_cancelled,
            TransferCompleted: self._transfer_completed,
            ConferenceStarted: self._conference_started,
            AgentLeftConference: self._agent_left_conference,
            WrapUpFinished: self._wrap_up_finished,
        }
        self._timer_handlers[TimerKind.WRAP_UP_END] = self._wrap_up_timed_out

    # == the runtime's interface =======================================================

    def handle(self, command: Command, now: float) -> Step:
        """Fire the timers due by ``now``, then apply ``command``."""
        self._start(now)
        self._fire_due(now)
        handler = self._handlers.get(type(command))
        if handler is None:
            raise TypeError(f"not a command: {command!r}")
        try:
            handler(command, now)
        except CommandRejected as rejected:
            rejected.step = self._finish()  # type: ignore[attr-defined]
            raise
        self._settle(now)
        self._fire_due(now)  # deadlines the command itself set for now, e.g. an overdue overflow
        return self._finish()

    def advance(self, now: float) -> Step:
        """Fire the timers due by ``now``."""
        self._start(now)
        self._fire_due(now)
        return self._finish()

    def next_deadline(self) -> float | None:
        """When the runtime must call ``advance`` next; None when nothing is timed."""
        return self._timers.next_deadline()

    # == restore after a restart =======================================================

    def continue_sequence(self, after_seq: int) -> None:
        """Number the next event ``after_seq + 1``: only before this engine emits any."""
        if self._seq != self._first_seq:
            raise ValueError(f"the engine has numbered events already (up to {self._seq})")
        if after_seq < 0:
            raise ValueError(f"no sequence number is negative: {after_seq}")
        self._seq = self._first_seq = after_seq

    def close_interrupted(
        self,
        *,
        call_id: CallId,
        queue_id: QueueId,
        from_state: CallState,
        agent_id: AgentId | None,
        now: float,
    ) -> Step:
        """End, with outcome INTERRUPTED, a call that was live (in ``from_state``) in the
        process that died; it changes no other state. Timers due by ``now`` fire first."""
        self._start(now)
        self._fire_due(now)
        try:
            if call_id in self._calls:
                raise CommandRejected("call_exists", f"call {call_id} is live in this engine")
            if (from_state, Trigger.INTERRUPT) not in CALL_TRANSITIONS:
                raise CommandRejected(
                    "wrong_state", f"a call {from_state.value} is not live", from_state.value
                )
        except CommandRejected as rejected:
            rejected.step = self._finish()  # type: ignore[attr-defined]
            raise
        self._interrupted_event(call_id, queue_id, from_state, agent_id, now)
        return self._finish()

    def restore_callback(
        self,
        *,
        call_id: CallId,
        queue_id: QueueId,
        from_state: CallState,
        number: str,
        enqueued_at: float,
        ani: str = "",
        customer_id: CustomerId | None = None,
        now: float,
    ) -> Step:
        """Put back a callback task that waited (in ``from_state``) in the process that
        died, in its place (``enqueued_at``): no caller's line died with it. Timers due
        by ``now`` fire first; ``CommandRejected`` (then close it as interrupted) when it
        can't be: an unknown queue, a live call, a state that is not a waiting task."""
        self._start(now)
        self._fire_due(now)
        try:
            if call_id in self._calls:
                raise CommandRejected("call_exists", f"call {call_id} is live in this engine")
            if (from_state, Trigger.RESTORE) not in CALL_TRANSITIONS:
                raise CommandRejected(
                    "wrong_state",
                    f"a call {from_state.value} is no waiting callback",
                    from_state.value,
                )
            queue = self._require_queue(queue_id)
            check_callback_number(number)
        except CommandRejected as rejected:
            rejected.step = self._finish()  # type: ignore[attr-defined]
            raise
        call = Call(
            call_id=call_id,
            queue=queue,
            order=next(self._call_order),
            now=now,
            ani=ani,
            dnis="",
            language=None,
            skills=None,
            priority=None,
            customer_id=customer_id,
            dedicated_agent=None,
            data={},
        )
        call.callback_number = number
        call.enqueued_at = enqueued_at
        call.state = from_state  # as the log left it; the RESTORE transition says the rest
        self._calls[call_id] = call
        self._place(call, queue, now, Trigger.RESTORE, "restored", number)
        self._route(call, now)
        self._settle(now)
        return self._finish()

    def remember_last_agent(self, customer_id: CustomerId, agent_id: AgentId) -> None:
        """Seed the customer's last agent (for affinity) from stored contacts; no event."""
        self._last_agent[customer_id] = agent_id

    # == read-only views ===============================================================

    def agent(self, agent_id: AgentId) -> AgentView | None:
        agent = self._agents.get(agent_id)
        return None if agent is None else AgentView.of(agent)

    def call(self, call_id: CallId) -> CallView | None:
        """A call still in the centre (None once it has ended)."""
        call = self._calls.get(call_id)
        return None if call is None else CallView.of(call)

    def agent_ids(self) -> Iterator[AgentId]:
        return iter(list(self._agents))

    def call_ids(self) -> Iterator[CallId]:
        return iter(list(self._calls))

    def queue_ids(self) -> Iterator[QueueId]:
        return iter(list(self._queues))

    def queue_stats(self, queue_id: QueueId) -> QueueStats:
        queue = self._require_queue(queue_id)
        return QueueStats.of(queue, self._calls.values())

    def queue_estimate(self, queue_id: QueueId) -> float | None:
        """The estimated remaining wait of the caller who joined the queue last.

        None when nobody waits there or there is not enough data. Computed as at
        the engine's last step (the time it last saw); scans the live calls, so
        it is for views and scrapes, not for routing.
        """
        queue = self._require_queue(queue_id)
        last: Call | None = None
        for call in self._calls.values():
            if (
                call.queue is queue
                and call.state is CallState.QUEUED
                and call.entry is not None
                and call.profile is not None
                and call.affinity_agent is None
                and (last is None or call.order > last.order)
            ):
                last = call
        return None if last is None else self.estimate(last)[1]

    def last_agent(self, customer_id: CustomerId) -> AgentId | None:
        return self._last_agent.get(customer_id)

    @property
    def disaster_site(self) -> str | None:
        return self._disaster_site

    # == configuration =================================================================

    def _queue_configured(self, cmd: QueueConfigured, now: float) -> None:
        config = cmd.config
        queue = self._queues.get(config.id)
        if queue is None:
            queue = self._queues[config.id] = QueueRuntime(config)
            queue.members.update(a for a in self._agents.values() if config.id in a.config.queues)
            return
        strategy_changed = queue.config.strategy is not config.strategy
        queue.config = config
        if strategy_changed:
            for profile in queue.profiles.values():
                profile.reindex()
        self._requeue_for_new_config(queue, now)

    def _agent_configured(self, cmd: AgentConfigured, now: float) -> None:
        config = cmd.config
        agent = self._agents.get(config.id)
        if agent is None:
            agent = self._agents[config.id] = Agent(config, next(self._agent_order))
            self._agent_event(agent, now, reason="created", created=True)
        else:
            for profile in agent.profiles:
                profile.leave(agent)
            agent.profiles = []
            agent.indexed_in = []
            for queue_id in agent.config.queues:
                if queue_id in self._queues:
                    self._queues[queue_id].members.discard(agent)
            agent.config = config
            agent.avail_token += 1  # re-ranked below, in the profiles they still fit
        for queue_id in sorted(config.queues):
            queue = self._queues.get(queue_id)
            if queue is not None:
                queue.members.add(agent)
                for profile in queue.profiles.values():
                    enrol(profile, agent)
        if agent.available:
            self._freed.append(agent)  # may now fit calls that are waiting
        self._release_affinity(agent, now)  # they may no longer fit those waiting for them

    def _disaster_mode_changed(self, cmd: DisasterModeChanged, now: float) -> None:
        if cmd.active and not cmd.site:
            raise CommandRejected("site_required", "disaster mode needs a backup site URI")
        self._disaster_site = cmd.site if cmd.active else None

    # == agents' own commands ==========================================================

    def _agent_logged_in(self, cmd: AgentLoggedIn, now: float) -> None:
        agent = self._require_agent(cmd.agent_id)
        if agent.logged_in:
            raise CommandRejected(
                "already_logged_in", f"agent {agent.id} is logged in", agent.status.value
            )
        agent.calls_answered = 0  # "fewest calls" counts from login
        self._agent_event(agent, now, status=Trigger.LOGIN, reason="login")

    def _agent_went_ready(self, cmd: AgentWentReady, now: float) -> None:
        agent = self._require_logged_in(cmd.agent_id)
        agent.pending = None  # changed their mind about a pending not-ready or logout
        if agent.status is not AgentStatus.READY:
            self._agent_event(agent, now, status=Trigger.READY)

    def _agent_went_not_ready(self, cmd: AgentWentNotReady, now: float) -> None:
        agent = self._require_logged_in(cmd.agent_id)
        if agent.state in _BUSY:
            agent.pending = (AgentStatus.NOT_READY, cmd.reason)
        else:
            self._agent_event(agent, now, status=Trigger.NOT_READY, reason=cmd.reason)
        self._release_affinity(agent, now)

    def _agent_logged_out(self, cmd: AgentLoggedOut, now: float) -> None:
        agent = self._require_logged_in(cmd.agent_id)
        if agent.state in _BUSY:
            agent.pending = (AgentStatus.LOGGED_OUT, None)
        else:
            self._agent_event(agent, now, status=Trigger.LOGOUT, reason="logout")
        self._release_affinity(agent, now)

    def _agent_device_lost(self, cmd: AgentDeviceLost, now: float) -> None:
        agent = self._require_agent(cmd.agent_id)
        res = agent.reservation
        if res is None:
            self._require_agent_state(agent, AgentState.IDLE)
        else:  # lost while ringing: the phone can't answer, the call goes back to its place
            self._actions.append(
                RetractOffer(reservation_id=res.id, call_id=res.call.id, agent_id=agent.id)
            )
            self._withdraw_offer(res, Trigger.REJECT, now)  # declined, not the agent's miss
        self._agent_event(agent, now, state=Trigger.DEVICE_LOST, reason="device_lost")
        self._release_affinity(agent, now)

    def _agent_device_restored(self, cmd: AgentDeviceRestored, now: float) -> None:
        agent = self._require_agent(cmd.agent_id)
        self._require_agent_state(agent, AgentState.NOT_RESPONDING)
        self._agent_event(agent, now, state=Trigger.DEVICE_RESTORED, reason="device_restored")

    # == calls' own commands: hold, hang-up, self-service, wrap-up =====================

    def _call_held(self, cmd: CallHeld, now: float) -> None:
        call = self._require_call(cmd.call_id)
        self._require_call_state(call, CallState.CONNECTED)
        agent = call.agent
        assert agent is not None
        if cmd.agent_id is not None and cmd.agent_id != agent.id:
            raise CommandRejected(
                "not_main_agent", f"only {agent.id} holds call {call.id}", call.state.value
            )
        if call.consult is not None:  # a conference: the two agents talk on, the caller held
            self._move_consult(call.consult, Trigger.HOLD)
        self._call_event(call, Trigger.HOLD, now)
        self._agent_event(agent, now, state=Trigger.HOLD, call_id=call.id)

    def _call_retrieved(self, cmd: CallRetrieved, now: float) -> None:
        call = self._require_call(cmd.call_id)
        self._require_call_state(call, CallState.HELD)
        if call.consult is not None:  # back to the caller: cancel, transfer or conference
            raise CommandRejected(
                "consult_in_progress",
                f"call {call.id} has a consultation in progress",
                call.consult.state.value,
            )
        agent = call.agent
        assert agent is not None
        self._call_event(call, Trigger.RETRIEVE, now)
        self._agent_event(agent, now, state=Trigger.RETRIEVE, call_id=call.id)

    def _caller_hung_up(self, cmd: CallerHungUp, now: float) -> None:
        call = self._require_call(cmd.call_id)
        if call.state in (CallState.CONNECTED, CallState.HELD):
            self._hang_up(call, now, "caller_hung_up")
            return
        if call.state not in IN_QUEUE:  # a callback task: nobody is on the line
            raise CommandRejected(
                "no_caller",
                f"call {call.id} is a callback: no caller on the line",
                call.state.value,
            )
        assert call.enqueued_at is not None
        waited = now - call.enqueued_at
        short = waited < call.queue.config.short_abandon_seconds
        outcome = Outcome.SHORT_ABANDONED if short else Outcome.ABANDONED
        self._leave_queue(call, outcome, now, "caller_hung_up")

    def _agent_hung_up(self, cmd: AgentHungUp, now: float) -> None:
        call = self._require_call(cmd.call_id)
        if call.state is CallState.DIALING:  # gave up before the customer answered
            self._callback_not_reached(call, now, "agent_hung_up")
            return
        if call.state not in (CallState.CONNECTED, CallState.HELD):
            raise CommandRejected(
                "wrong_state", f"call {call.id} is not connected", call.state.value
            )
        self._hang_up(call, now, "agent_hung_up")

    def _call_self_served(self, cmd: CallSelfServed, now: float) -> None:
        call = self._require_call(cmd.call_id)
        if call.state not in IN_QUEUE:
            raise CommandRejected("wrong_state", f"call {call.id} is not waiting", call.state.value)
        self._leave_queue(call, Outcome.SELF_SERVED, now, "self_service")

    # == callbacks ======================================================================

    def _callback_requested(self, cmd: CallbackRequested, now: float) -> None:
        """The caller becomes a callback task in the same place: same waiting-list entry
        (priority, enqueue time, order), the same relaxation; no more announcements or
        overflow (nobody is on the line to hear them or to be sent elsewhere)."""
        call = self._require_call(cmd.call_id)
        if call.state not in IN_QUEUE:
            raise CommandRejected("wrong_state", f"call {call.id} is not waiting", call.state.value)
        check_callback_number(cmd.number)
        res = call.reservation
        if res is not None:  # ringing an agent for the caller: that offer is withdrawn
            self._actions.append(
                RetractOffer(reservation_id=res.id, call_id=call.id, agent_id=res.agent.id)
            )
            self._withdraw_offer(res, Trigger.CANCEL, now)
        for kind in (TimerKind.REVIEW, TimerKind.WAIT_OVERFLOW):
            timer = call.timers.pop(kind, None)
            if timer is not None:
                timer.cancel()
        call.callback_number = cmd.number
        call.queue.reneging.left_queue(now - call.entered_queue_at, gave_up=True)
        self._call_event(
            call, Trigger.CALLBACK, now, reason="callback_requested", callback_number=cmd.number
        )
        if res is not None:  # it was ringing: back to its place, or to a free agent
            self._route(call, now)

    def _callback_answered(self, cmd: CallbackAnswered, now: float) -> None:
        call = self._require_call(cmd.call_id)
        self._require_call_state(call, CallState.DIALING)
        call.connected_at = now
        self._call_event(call, Trigger.REACH, now)

    def _callback_failed(self, cmd: CallbackFailed, now: float) -> None:
        call = self._require_call(cmd.call_id)
        self._require_call_state(call, CallState.DIALING)
        self._callback_not_reached(call, now, cmd.reason or "not_reached")

    def _callback_not_reached(self, call: Call, now: float, reason: str) -> None:
        """The callback task ends without a talk; its agent wraps up as after a call."""
        agent = call.agent
        assert agent is not None
        del self._calls[call.id]
        call.ended_at = now
        self._call_event(call, Trigger.LEAVE, now, outcome=Outcome.CALLBACK_FAILED, reason=reason)
        self._end_leg(agent, now, reason)

    def _hang_up(self, call: Call, now: float, reason: str) -> None:
        """The call ends, and with it every agent's part in it."""
        agent = call.agent
        assert agent is not None
        del self._calls[call.id]
        call.ended_at = now
        self._call_event(call, Trigger.END, now, outcome=Outcome.ANSWERED, reason=reason)
        self._end_leg(agent, now, None)
        if call.consult is not None:
            self._end_consult(call.consult, now, reason)

    def _wrap_up_finished(self, cmd: WrapUpFinished, now: float) -> None:
        agent = self._require_agent(cmd.agent_id)
        self._require_agent_state(agent, AgentState.WRAP_UP)
        self._finish_wrap_up(agent, now, cmd.disposition, cmd.resolved)

    def _wrap_up_timed_out(self, agent: Agent, now: float) -> None:
        if agent.state is AgentState.WRAP_UP:
            self._finish_wrap_up(agent, now, None, None)

    def _finish_wrap_up(
        self, agent: Agent, now: float, disposition: str | None, resolved: bool | None
    ) -> None:
        call, queue = agent.call, agent.leg_queue
        assert call is not None and queue is not None
        if agent.wrap_up_timer is not None:
            agent.wrap_up_timer.cancel()
            agent.wrap_up_timer = None
        queue.aht.add(now - agent.leg_started_at)  # talk + hold + wrap-up
        agent.call = None
        self._agent_event(
            agent,
            now,
            state=Trigger.FINISH_WRAP_UP,
            call_id=call.id,
            disposition=disposition,
            resolved=resolved,
        )


__all__ = ["Engine", "Step"]
