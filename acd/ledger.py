"""The ledger: the centre's state, its timers, and every change to it as one numbered event.

Theory of operation. The ledger holds what the engine knows (queues, agents,
calls, each customer's last agent, disaster mode), the timers, and the events
and actions of the step in progress. Each change of a call, agent or
reservation goes through the transition tables of ``acd.states`` and emits one
numbered event; nothing else assigns a state. Due timers fire in deadline
order, each through the handler the layer that sets it registered in
``_timer_handlers``. Agents who become available during a step are collected
and served at its end, after the calls the step put back in queue have had
their chance at the other agents: that is what keeps a rejected call from
bouncing straight back to the agent who rejected it when someone else is free.

The look-ups at the end refuse a command that names something unknown, or
something in the wrong state, with ``CommandRejected`` before anything changes.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import Any

from acd.actions import Action
from acd.agents import Agent
from acd.calls import Call
from acd.errors import CommandRejected
from acd.events import AgentStateChanged, CallStateChanged, Event, ReservationStateChanged
from acd.ids import AgentId, CallId, CustomerId, QueueId
from acd.offers import Reservation
from acd.queues import QueueRuntime
from acd.states import (
    AGENT_STATE_TRANSITIONS,
    AGENT_STATUS_TRANSITIONS,
    CALL_TRANSITIONS,
    RESERVATION_TRANSITIONS,
    AgentState,
    AgentStatus,
    CallState,
    Outcome,
    ReservationState,
    Trigger,
    next_state,
)
from acd.timers import TimerKind, Timers

IN_QUEUE = frozenset({CallState.QUEUED, CallState.OFFERED})  # waiting, or ringing an agent
# A callback task waiting in a queue, or offered: it counts in the queue's size and holds
# a place in its waiting lists like a caller, but nobody is on the line.
CALLBACK_WAITING = frozenset({CallState.CALLBACK_QUEUED, CallState.CALLBACK_OFFERED})
WAITING = IN_QUEUE | CALLBACK_WAITING


class Step:
    """What one ``handle`` or ``advance`` produced, in order."""

    __slots__ = ("actions", "events")

    def __init__(self, events: list[Event], actions: list[Action]) -> None:
        self.events = events
        self.actions = actions


class Ledger:
    """The state and its transitions; the base of the engine's layers."""

    def __init__(self) -> None:
        self._now = float("-inf")
        self._seq = 0
        self._first_seq = 0  # ``_seq`` before the first event (Engine.continue_sequence)
        self._timers = Timers()
        self._queues: dict[QueueId, QueueRuntime] = {}
        self._agents: dict[AgentId, Agent] = {}
        self._calls: dict[CallId, Call] = {}
        self._last_agent: dict[CustomerId, AgentId] = {}
        self._disaster_site: str | None = None
        self._agent_order = count(1)
        self._call_order = count(1)
        self._offer_order = count(1)
        self._idle_order = count(1)
        self._events: list[Event] = []
        self._actions: list[Action] = []
        self._freed: list[Agent] = []
        # Each layer adds the handlers of the timers it sets.
        self._timer_handlers: dict[TimerKind, Callable[[Any, float], None]] = {}

    # == step bookkeeping ==============================================================

    def _start(self, now: float) -> None:
        if now < self._now:
            raise ValueError(f"time went backwards: {now} after {self._now}")
        self._now = now

    def _finish(self) -> Step:
        step = Step(self._events, self._actions)
        self._events = []
        self._actions = []
        return step

    def _fire_due(self, now: float) -> None:
        timers = self._timers
        handlers = self._timer_handlers
        while (timer := timers.pop_due(now)) is not None:
            subject = timer.subject
            if isinstance(subject, Call) and subject.timers.get(timer.kind) is timer:
                del subject.timers[timer.kind]
            handlers[timer.kind](subject, timer.deadline)
            self._settle(timer.deadline)

    def _settle(self, now: float) -> None:
        """Serve every agent who became available during this step."""
        freed = self._freed
        i = 0
        while i < len(freed):
            agent = freed[i]
            i += 1
            if agent.available:
                self._serve_agent(agent, now)
        freed.clear()

    # == transitions and their events ==================================================

    def _call_event(
        self,
        call: Call,
        trigger: Trigger | None,
        now: float,
        *,
        outcome: Outcome | None = None,
        reason: str | None = None,
        callback_number: str | None = None,
    ) -> None:
        """Move the call by ``trigger`` and say so; no trigger: the call is new."""
        old: CallState | None = None
        customer_id = None
        if trigger is not None:
            old = call.state
            call.state = next_state(CALL_TRANSITIONS, old, trigger)
        else:
            customer_id = call.customer_id
        agent = call.agent
        if agent is None and call.reservation is not None:
            agent = call.reservation.agent
        self._seq += 1
        self._events.append(
            CallStateChanged(
                seq=self._seq,
                at=now,
                call_id=call.id,
                queue_id=call.queue.id,
                from_state=old,
                to_state=call.state,
                outcome=outcome,
                agent_id=None if agent is None else agent.id,
                reason=reason,
                customer_id=customer_id,
                callback_number=callback_number,
            )
        )

    def _interrupted_event(
        self,
        call_id: CallId,
        queue_id: QueueId,
        from_state: CallState,
        agent_id: AgentId | None,
        now: float,
    ) -> None:
        """End a call this engine never held: it was live when the previous process died."""
        self._seq += 1
        self._events.append(
            CallStateChanged(
                seq=self._seq,
                at=now,
                call_id=call_id,
                queue_id=queue_id,
                from_state=from_state,
                to_state=next_state(CALL_TRANSITIONS, from_state, Trigger.INTERRUPT),
                outcome=Outcome.INTERRUPTED,
                agent_id=agent_id,
                reason="interrupted",
            )
        )

    def _agent_event(
        self,
        agent: Agent,
        now: float,
        *,
        state: Trigger | None = None,
        status: Trigger | None = None,
        reason: str | None = None,
        call_id: CallId | None = None,
        disposition: str | None = None,
        resolved: bool | None = None,
        created: bool = False,
    ) -> None:
        """Move the agent's state and/or status and say so in one event."""
        old_status, old_state = agent.status, agent.state
        was_available = agent.available
        new_state = old_state
        if state is not None:
            new_state = next_state(AGENT_STATE_TRANSITIONS, old_state, state)
            if new_state is AgentState.IDLE and agent.pending is not None:
                # a status asked for during the call applies now, in this same event
                wanted, reason = agent.pending
                agent.pending = None
                status = Trigger.LOGOUT if wanted is AgentStatus.LOGGED_OUT else Trigger.NOT_READY
        new_status = old_status
        if status is not None:
            new_status = next_state(AGENT_STATUS_TRANSITIONS, old_status, status)
            agent.reason = reason if new_status is AgentStatus.NOT_READY else None
        agent.state = new_state
        agent.status = new_status
        if new_status is not old_status:
            staffed = (new_status is not AgentStatus.LOGGED_OUT) - (
                old_status is not AgentStatus.LOGGED_OUT
            )
            ready = (new_status is AgentStatus.READY) - (old_status is AgentStatus.READY)
            for profile in agent.profiles:
                profile.staffed += staffed
                profile.ready += ready
        if was_available and not agent.available:
            agent.avail_token += 1  # its entries in the profiles' heaps are now stale
            for profile in agent.indexed_in:
                profile.drop_available(agent)
            agent.indexed_in.clear()
        elif agent.available and not was_available:
            agent.idle_since = now  # longest idle counts from when they could take a call
            agent.idle_seq = next(self._idle_order)
            self._freed.append(agent)
        self._seq += 1
        self._events.append(
            AgentStateChanged(
                seq=self._seq,
                at=now,
                agent_id=agent.id,
                from_status=None if created else old_status,
                to_status=new_status,
                from_state=None if created else old_state,
                to_state=new_state,
                reason=reason,
                call_id=call_id,
                disposition=disposition,
                resolved=resolved,
            )
        )

    def _reservation_event(self, res: Reservation, trigger: Trigger | None, now: float) -> None:
        old: ReservationState | None = None
        if trigger is not None:
            old = res.state
            res.state = next_state(RESERVATION_TRANSITIONS, old, trigger)
        self._seq += 1
        self._events.append(
            ReservationStateChanged(
                seq=self._seq,
                at=now,
                reservation_id=res.id,
                call_id=res.call.id,
                agent_id=res.agent.id,
                from_state=old,
                to_state=res.state,
                callback_number=res.callback_number,
            )
        )

    # == look-ups that refuse politely =================================================

    def _require_queue(self, queue_id: QueueId) -> QueueRuntime:
        queue = self._queues.get(queue_id)
        if queue is None:
            raise CommandRejected("unknown_queue", f"no queue {queue_id}")
        return queue

    def _require_agent(self, agent_id: AgentId) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise CommandRejected("unknown_agent", f"no agent {agent_id}")
        return agent

    def _require_logged_in(self, agent_id: AgentId) -> Agent:
        agent = self._require_agent(agent_id)
        if not agent.logged_in:
            raise CommandRejected("logged_out", f"agent {agent_id} is logged out", "logged_out")
        return agent

    def _require_agent_state(self, agent: Agent, state: AgentState) -> None:
        if agent.state is not state:
            raise CommandRejected(
                "wrong_state", f"agent {agent.id} is {agent.state.value}", agent.state.value
            )

    def _require_call(self, call_id: CallId) -> Call:
        call = self._calls.get(call_id)
        if call is None:
            raise CommandRejected("unknown_call", f"no call {call_id} in the centre")
        return call

    def _require_call_state(self, call: Call, state: CallState) -> None:
        if call.state is not state:
            raise CommandRejected(
                "wrong_state", f"call {call.id} is {call.state.value}", call.state.value
            )

    def _require_offer(self, agent: Agent, call_id: CallId) -> Reservation:
        res = agent.reservation
        if res is not None and res.call.id == call_id:
            return res
        if agent.last_missed_call == call_id:
            raise CommandRejected(
                "offer_expired",
                f"the offer of call {call_id} to {agent.id} is over",
                agent.state.value,
            )
        raise CommandRejected(
            "no_offer", f"call {call_id} is not offered to {agent.id}", agent.state.value
        )

    # == defined by a later layer ======================================================

    def _serve_agent(self, agent: Agent, now: float) -> None:
        """Give a freed agent the call that should go next, or index them (acd.routing)."""
        raise NotImplementedError
