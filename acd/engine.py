"""The engine: one command at a time, with the time passed in; events and actions out.

Theory of operation. ``handle(command, now)`` first fires every timer due at
or before ``now`` (so a late command meets the state a punctual runtime would
have produced), then applies the command. Each change of a call, agent or
reservation goes through the transition tables of ``acd.states`` and emits one
numbered event. Agents who become available during a step are collected and
served at its end, after the calls the step put back in queue have had their
chance at the other agents: that is what keeps a rejected call from bouncing
straight back to the agent who rejected it when someone else is free.

Routing order for a call (ARCHITECTURE.md): admission (disaster mode, full,
unstaffed) → affinity (last or dedicated agent, optionally waiting a window
for them) → the best available agent of its requirement profile → wait, with
relaxation steps, announcements and overflow timers. For a freed agent: calls
waiting for them in particular, then the best waiting call of all their
profiles (priority, then enqueue time, then queue weight).

A command that does not fit the current state raises ``CommandRejected``
before anything changes; outputs of timers fired before it ride on the
exception as ``step``.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

from acd.actions import (
    Action,
    ConnectCall,
    OfferCall,
    PlayAnnouncement,
    RejectCall,
    RetractOffer,
    TransferToSite,
)
from acd.agents import Agent
from acd.calls import Call
from acd.commands import (
    AgentConfigured,
    AgentDeviceLost,
    AgentDeviceRestored,
    AgentHungUp,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentWentNotReady,
    AgentWentReady,
    CallArrived,
    CallerHungUp,
    CallHeld,
    CallRetrieved,
    CallSelfServed,
    Command,
    DisasterModeChanged,
    OfferAccepted,
    OfferRejected,
    QueueConfigured,
    WrapUpFinished,
)
from acd.config import AffinityMode, OverflowCondition, Target, WhenUnstaffed
from acd.errors import CommandRejected
from acd.estimates import estimate_from_releases, estimate_wait
from acd.events import AgentStateChanged, CallStateChanged, Event, ReservationStateChanged
from acd.ids import AgentId, CallId, CustomerId, QueueId, ReservationId
from acd.offers import Reservation
from acd.queues import QueueRuntime, enrol, withdraw
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
from acd.timers import Timer, TimerKind, Timers
from acd.views import AgentView, CallView, QueueStats

_BUSY = frozenset({AgentState.RESERVED, AgentState.TALKING, AgentState.HELD, AgentState.WRAP_UP})
_IN_QUEUE = frozenset({CallState.QUEUED, CallState.OFFERED})
_DEFAULT_REVIEW_SECONDS = 30.0
_OVERFLOW_RETRY_SECONDS = 10.0
# Up to this many ready agents, EWT looks at when each is expected to free up;
# above it, their releases average out into a rate.
_AGENT_LEVEL_EWT_UP_TO = 64


class Step:
    """What one ``handle`` or ``advance`` produced, in order."""

    __slots__ = ("actions", "events")

    def __init__(self, events: list[Event], actions: list[Action]) -> None:
        self.events = events
        self.actions = actions


class Engine:
    def __init__(self) -> None:
        self._now = float("-inf")
        self._seq = 0
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
            WrapUpFinished: self._wrap_up_finished,
        }
        self._timer_handlers: dict[TimerKind, Callable[[Any, float], None]] = {
            TimerKind.RING_TIMEOUT: self._ring_timed_out,
            TimerKind.WRAP_UP_END: self._wrap_up_timed_out,
            TimerKind.AFFINITY_END: self._affinity_window_ended,
            TimerKind.RELAX: self._relax,
            TimerKind.REVIEW: self._review_timer,
            TimerKind.WAIT_OVERFLOW: self._wait_limit_reached,
        }

    # == the runtime's interface ===============================================

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

    # == read-only views ==========================================================

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

    def last_agent(self, customer_id: CustomerId) -> AgentId | None:
        return self._last_agent.get(customer_id)

    @property
    def disaster_site(self) -> str | None:
        return self._disaster_site

    # == step bookkeeping =========================================================

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

    # == transitions and their events ===============================================

    def _call_event(
        self,
        call: Call,
        trigger: Trigger,
        now: float,
        *,
        outcome: Outcome | None = None,
        reason: str | None = None,
    ) -> None:
        old = call.state
        call.state = next_state(CALL_TRANSITIONS, old, trigger)
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
    ) -> None:
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
            for profile in agent.profiles:
                profile.drop_available(agent)
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
                from_status=old_status,
                to_status=new_status,
                from_state=old_state,
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
            )
        )

    # == configuration ==============================================================

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

    def _agent_configured(self, cmd: AgentConfigured, now: float) -> None:
        config = cmd.config
        agent = self._agents.get(config.id)
        if agent is None:
            agent = self._agents[config.id] = Agent(config, next(self._agent_order))
            self._seq += 1
            self._events.append(
                AgentStateChanged(
                    seq=self._seq,
                    at=now,
                    agent_id=agent.id,
                    from_status=None,
                    to_status=agent.status,
                    from_state=None,
                    to_state=agent.state,
                    reason="created",
                )
            )
        else:
            for profile in agent.profiles:
                withdraw(profile, agent)
            agent.profiles = []
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

    def _disaster_mode_changed(self, cmd: DisasterModeChanged, now: float) -> None:
        if cmd.active and not cmd.site:
            raise CommandRejected("site_required", "disaster mode needs a backup site URI")
        self._disaster_site = cmd.site if cmd.active else None

    # == agents' own commands ============================================================

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
        self._require_agent_state(agent, AgentState.IDLE)
        self._agent_event(agent, now, state=Trigger.DEVICE_LOST, reason="device_lost")
        self._release_affinity(agent, now)

    def _agent_device_restored(self, cmd: AgentDeviceRestored, now: float) -> None:
        agent = self._require_agent(cmd.agent_id)
        self._require_agent_state(agent, AgentState.NOT_RESPONDING)
        self._agent_event(agent, now, state=Trigger.DEVICE_RESTORED, reason="device_restored")

    # == calls: arrival and admission ======================================================

    def _call_arrived(self, cmd: CallArrived, now: float) -> None:
        queue = self._require_queue(cmd.queue_id)
        if cmd.call_id in self._calls:
            raise CommandRejected("duplicate_call", f"call {cmd.call_id} is already here")
        for skill, level in cmd.skills.items():
            if not 1 <= level <= 10:
                raise CommandRejected(
                    "invalid_call", f"skill {skill}: level {level} is outside 1-10"
                )
        call = Call(
            call_id=cmd.call_id,
            queue=queue,
            order=next(self._call_order),
            now=now,
            ani=cmd.ani,
            dnis=cmd.dnis,
            language=cmd.language,
            skills=dict(cmd.skills) if cmd.skills else None,
            priority=queue.config.priority if cmd.priority is None else cmd.priority,
            customer_id=cmd.customer_id,
            dedicated_agent=cmd.dedicated_agent,
            data=cmd.data,
        )
        self._calls[call.id] = call
        self._seq += 1
        self._events.append(
            CallStateChanged(
                seq=self._seq,
                at=now,
                call_id=call.id,
                queue_id=queue.id,
                from_state=None,
                to_state=CallState.ARRIVED,
            )
        )
        if self._disaster_site is not None:
            self._send_to_site(call, self._disaster_site, now, "disaster_mode")
            return
        self._admit(call, queue, now)

    def _admit(self, call: Call, queue: QueueRuntime, now: float) -> None:
        """Let a new call into ``queue``, or send it where the queue says when it can't take it."""
        call.queue = queue
        call.visited.add(queue.id)
        refusal = self._refusal(call, queue)
        if refusal is not None:
            reason, target = refusal
            if target is not None and target.site is not None:
                self._send_to_site(call, target.site, now, reason)
            elif target is not None and self._can_move_to(call, target.queue):
                assert target.queue is not None
                self._admit(call, self._queues[target.queue], now)
            else:
                self._actions.append(RejectCall(call_id=call.id, reason=reason))
                self._end_call(call, Outcome.BLOCKED, now, reason)
            return
        call.enqueued_at = now
        self._place(call, queue, now, Trigger.ADMIT, None)
        self._route(call, now, affinity=True)

    def _refusal(self, call: Call, queue: QueueRuntime) -> tuple[str, Target | None] | None:
        config = queue.config
        if config.max_size is not None and queue.size >= config.max_size:
            return "queue_full", config.when_full
        if config.when_unstaffed is not WhenUnstaffed.QUEUE:
            profile = queue.profile(queue.needs(call.skills, call.language, 0))
            if profile.staffed == 0:
                target = (
                    config.when_full if config.when_unstaffed is WhenUnstaffed.OVERFLOW else None
                )
                return "unstaffed", target
        return None

    def _can_move_to(self, call: Call, queue_id: QueueId | None) -> bool:
        return queue_id is not None and queue_id in self._queues and queue_id not in call.visited

    def _place(
        self, call: Call, queue: QueueRuntime, now: float, trigger: Trigger, reason: str | None
    ) -> None:
        """Put the call in ``queue`` at the relaxation level its wait so far has earned."""
        assert call.enqueued_at is not None
        call.queue = queue
        call.visited.add(queue.id)
        call.entered_queue_at = now
        call.profile = None
        self._catch_up(call, now)
        queue.size += 1
        self._call_event(call, trigger, now, reason=reason)

    def _catch_up(self, call: Call, now: float, minimum: int = 0) -> None:
        """Bring the call's requirements to the relaxation level its wait so far has earned.

        ``minimum`` is the level a firing relaxation timer stands for: computed
        back from the deadline, the wait can fall a rounding error short of it.
        """
        assert call.enqueued_at is not None
        queue = call.queue
        relaxation = queue.config.relaxation
        level = 0
        if relaxation:
            since = call.enqueued_at
            level = sum(1 for step in relaxation if since + step.after_seconds <= now)
            level = min(len(relaxation), max(level, minimum))
        if call.profile is None or level != call.relax_level:
            call.relax_level = level
            call.profile = queue.profile(queue.needs(call.skills, call.language, level))

    # == routing ================================================================

    def _route(self, call: Call, now: float, *, affinity: bool = False) -> None:
        """Offer a queued call to the best available agent, or make it wait."""
        if call.queue.config.relaxation:
            self._catch_up(call, now)  # it may have been ringing when a step came due
        profile = call.profile
        assert profile is not None
        if affinity and call.queue.config.affinity is not AffinityMode.OFF:
            preferred = self._preferred_agent(call)
            if preferred is not None:
                if preferred.available:
                    self._offer(call, preferred, now)
                    return
                window = call.queue.config.affinity_window_seconds
                if (
                    window > 0
                    and preferred.status is AgentStatus.READY
                    and preferred.state is not AgentState.NOT_RESPONDING
                    and preferred.pending is None
                ):
                    self._wait_for(call, preferred, now, window)
                    return
        agent = profile.best_available()
        if agent is not None:
            self._offer(call, agent, now)
        else:
            self._wait(call, now)

    def _preferred_agent(self, call: Call) -> Agent | None:
        """The dedicated or last agent the queue's affinity mode asks for, if eligible and in."""
        mode = call.queue.config.affinity
        candidates: list[AgentId] = []
        if (
            mode in (AffinityMode.DEDICATED, AffinityMode.DEDICATED_OR_LAST)
            and call.dedicated_agent
        ):
            candidates.append(call.dedicated_agent)
        if mode in (AffinityMode.LAST_AGENT, AffinityMode.DEDICATED_OR_LAST) and call.customer_id:
            last = self._last_agent.get(call.customer_id)
            if last is not None:
                candidates.append(last)
        assert call.profile is not None
        for agent_id in candidates:
            agent = self._agents.get(agent_id)
            if agent is not None and agent.logged_in and agent in call.profile.members:
                return agent
        return None

    def _serve_agent(self, agent: Agent, now: float) -> None:
        """An agent became available: give them the call that should go next, or index them."""
        if agent.affinity_waiting:
            call = agent.affinity_waiting.pop(0)[4]
            call.affinity_agent = None
            call.entry = None
            timer = call.timers.pop(TimerKind.AFFINITY_END, None)
            if timer is not None:
                timer.cancel()
            self._offer(call, agent, now)
            return
        best = None
        best_profile = None
        for profile in agent.profiles:
            if profile.waiting:
                head = profile.waiting[0]
                if best is None or head < best:
                    best, best_profile = head, profile
        if best is not None:
            assert best_profile is not None
            call = best_profile.take_head(now)
            call.entry = None
            self._offer(call, agent, now)
            return
        for profile in agent.profiles:
            profile.add_available(agent)

    def _wait(self, call: Call, now: float) -> None:
        assert call.profile is not None
        entry = call.wait_entry()
        call.entry = entry
        call.profile.add_waiting(entry, now)
        if not call.armed:  # first wait in this queue
            call.armed = True
            self._arm_queue_timers(call, now)
            self._review(call, now)

    def _wait_for(self, call: Call, agent: Agent, now: float, window: float) -> None:
        """Hold the call for one agent until the affinity window ends."""
        entry = call.wait_entry()
        call.entry = entry
        call.affinity_agent = agent
        insort(agent.affinity_waiting, entry)
        call.timers[TimerKind.AFFINITY_END] = self._timers.set(
            now + window, TimerKind.AFFINITY_END, call
        )

    def _unwait(self, call: Call) -> None:
        """Take the call out of whichever waiting list holds it."""
        entry = call.entry
        if entry is None:
            return
        call.entry = None
        if call.affinity_agent is not None:
            call.affinity_agent.affinity_waiting.remove(entry)
            call.affinity_agent = None
        else:
            assert call.profile is not None
            call.profile.remove_waiting(entry)

    def _release_affinity(self, agent: Agent, now: float) -> None:
        """The agent won't come back soon: calls waiting for them go to everyone."""
        while agent.affinity_waiting:
            call = agent.affinity_waiting.pop(0)[4]
            self._fall_back(call, now)

    def _fall_back(self, call: Call, now: float) -> None:
        call.affinity_agent = None
        call.entry = None
        timer = call.timers.pop(TimerKind.AFFINITY_END, None)
        if timer is not None:
            timer.cancel()
        self._route(call, now)

    # == offers ===================================================================

    def _offer(self, call: Call, agent: Agent, now: float) -> None:
        deadline = now + call.queue.config.ring_timeout_seconds
        order = next(self._offer_order)
        res = Reservation(ReservationId(f"r{order}"), call, agent, now, deadline)
        res.timer = self._timers.set(deadline, TimerKind.RING_TIMEOUT, res)
        call.reservation = res
        agent.reservation = res
        agent.last_offer_order = order
        self._reservation_event(res, None, now)
        self._call_event(call, Trigger.OFFER, now, reason=res.id)
        self._agent_event(agent, now, state=Trigger.OFFER, call_id=call.id)
        self._actions.append(
            OfferCall(reservation_id=res.id, call_id=call.id, agent_id=agent.id, deadline=deadline)
        )

    def _offer_accepted(self, cmd: OfferAccepted, now: float) -> None:
        agent = self._require_agent(cmd.agent_id)
        res = self._require_offer(agent, cmd.call_id)
        call = res.call
        assert res.timer is not None
        res.timer.cancel()
        agent.reservation = None
        call.reservation = None
        self._reservation_event(res, Trigger.ACCEPT, now)
        call.agent = agent
        call.connected_at = now
        call.queue.size -= 1
        call.queue.reneging.left_queue(now - call.entered_queue_at, gave_up=False)
        call.queue.ring.add(now - res.offered_at)
        call.cancel_timers()
        self._call_event(call, Trigger.ACCEPT, now)
        agent.call = call
        agent.misses = 0
        agent.calls_answered += 1
        self._agent_event(agent, now, state=Trigger.ACCEPT, call_id=call.id)
        if call.customer_id is not None:
            self._last_agent[call.customer_id] = agent.id
        self._actions.append(ConnectCall(call_id=call.id, agent_id=agent.id))

    def _offer_rejected(self, cmd: OfferRejected, now: float) -> None:
        agent = self._require_agent(cmd.agent_id)
        res = self._require_offer(agent, cmd.call_id)
        self._withdraw_offer(res, Trigger.REJECT, now)

    def _ring_timed_out(self, res: Reservation, now: float) -> None:
        if res.state is ReservationState.PENDING:
            self._actions.append(
                RetractOffer(reservation_id=res.id, call_id=res.call.id, agent_id=res.agent.id)
            )
            self._withdraw_offer(res, Trigger.TIME_OUT, now)

    def _withdraw_offer(self, res: Reservation, trigger: Trigger, now: float) -> None:
        """End a pending offer; unless the caller left, the call goes back to its place."""
        call, agent = res.call, res.agent
        assert res.timer is not None
        res.timer.cancel()
        agent.reservation = None
        call.reservation = None
        agent.last_missed_call = call.id
        self._reservation_event(res, trigger, now)
        if trigger is not Trigger.CANCEL:
            self._call_event(call, trigger, now, reason=res.id)
        status = None
        reason = None
        if trigger is Trigger.TIME_OUT:
            agent.misses += 1
            if agent.misses >= call.queue.config.max_misses and agent.pending is None:
                status, reason = Trigger.NOT_READY, "no_answer"  # never a silent logout
        self._agent_event(agent, now, state=trigger, status=status, reason=reason, call_id=call.id)
        if trigger is not Trigger.CANCEL:
            self._route(call, now)

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

    # == connected calls ==================================================================

    def _call_held(self, cmd: CallHeld, now: float) -> None:
        call = self._require_call(cmd.call_id)
        self._require_call_state(call, CallState.CONNECTED)
        agent = call.agent
        assert agent is not None
        self._call_event(call, Trigger.HOLD, now)
        self._agent_event(agent, now, state=Trigger.HOLD, call_id=call.id)

    def _call_retrieved(self, cmd: CallRetrieved, now: float) -> None:
        call = self._require_call(cmd.call_id)
        self._require_call_state(call, CallState.HELD)
        agent = call.agent
        assert agent is not None
        self._call_event(call, Trigger.RETRIEVE, now)
        self._agent_event(agent, now, state=Trigger.RETRIEVE, call_id=call.id)

    def _caller_hung_up(self, cmd: CallerHungUp, now: float) -> None:
        call = self._require_call(cmd.call_id)
        if call.state in (CallState.CONNECTED, CallState.HELD):
            self._hang_up(call, now, "caller_hung_up")
            return
        assert call.enqueued_at is not None
        waited = now - call.enqueued_at
        short = waited < call.queue.config.short_abandon_seconds
        outcome = Outcome.SHORT_ABANDONED if short else Outcome.ABANDONED
        self._leave_queue(call, outcome, now, "caller_hung_up")

    def _agent_hung_up(self, cmd: AgentHungUp, now: float) -> None:
        call = self._require_call(cmd.call_id)
        if call.state not in (CallState.CONNECTED, CallState.HELD):
            raise CommandRejected(
                "wrong_state", f"call {call.id} is not connected", call.state.value
            )
        self._hang_up(call, now, "agent_hung_up")

    def _call_self_served(self, cmd: CallSelfServed, now: float) -> None:
        call = self._require_call(cmd.call_id)
        if call.state not in _IN_QUEUE:
            raise CommandRejected("wrong_state", f"call {call.id} is not waiting", call.state.value)
        self._leave_queue(call, Outcome.SELF_SERVED, now, "self_service")

    def _hang_up(self, call: Call, now: float, reason: str) -> None:
        agent = call.agent
        assert agent is not None
        del self._calls[call.id]
        call.ended_at = now
        self._call_event(call, Trigger.END, now, outcome=Outcome.ANSWERED, reason=reason)
        wrap = call.queue.config.wrap_up_seconds
        if wrap > 0:
            agent.wrap_up_timer = self._timers.set(now + wrap, TimerKind.WRAP_UP_END, agent)
            self._agent_event(agent, now, state=Trigger.END, call_id=call.id)
        else:
            assert call.connected_at is not None
            call.queue.aht.add(now - call.connected_at)
            agent.call = None
            self._agent_event(agent, now, state=Trigger.END_WITHOUT_WRAP_UP, call_id=call.id)

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
        call = agent.call
        assert call is not None and call.connected_at is not None
        if agent.wrap_up_timer is not None:
            agent.wrap_up_timer.cancel()
            agent.wrap_up_timer = None
        call.queue.aht.add(now - call.connected_at)  # talk + hold + wrap-up
        agent.call = None
        self._agent_event(
            agent,
            now,
            state=Trigger.FINISH_WRAP_UP,
            call_id=call.id,
            disposition=disposition,
            resolved=resolved,
        )

    # == leaving the queue ==================================================================

    def _leave_queue(self, call: Call, outcome: Outcome, now: float, reason: str) -> None:
        """A waiting or ringing call leaves the centre without reaching an agent."""
        res = call.reservation
        if res is not None:
            self._actions.append(
                RetractOffer(reservation_id=res.id, call_id=call.id, agent_id=res.agent.id)
            )
            self._withdraw_offer(res, Trigger.CANCEL, now)
        self._unwait(call)
        call.queue.size -= 1
        call.queue.reneging.left_queue(now - call.entered_queue_at, gave_up=True)
        self._end_call(call, outcome, now, reason)

    def _end_call(self, call: Call, outcome: Outcome, now: float, reason: str) -> None:
        call.cancel_timers()
        call.ended_at = now
        del self._calls[call.id]
        self._call_event(call, Trigger.LEAVE, now, outcome=outcome, reason=reason)

    def _send_to_site(self, call: Call, site: str, now: float, reason: str) -> None:
        self._actions.append(TransferToSite(call_id=call.id, site=site, reason=reason))
        if call.state in _IN_QUEUE:
            self._leave_queue(call, Outcome.OVERFLOWED, now, reason)
        else:
            self._end_call(call, Outcome.OVERFLOWED, now, reason)

    # == waiting: timers, relaxation, announcements, overflow ==================================

    def _arm_queue_timers(self, call: Call, now: float) -> None:
        config = call.queue.config
        self._arm_relax(call)
        self._arm_wait_limit(call, now)
        every = config.announce_every_seconds
        if every is None and any(r.when is OverflowCondition.EWT_OVER for r in config.overflow):
            every = _DEFAULT_REVIEW_SECONDS
        if every is not None:
            call.timers[TimerKind.REVIEW] = self._timers.set(
                now + every, TimerKind.REVIEW, call, call.rank()
            )

    def _arm_wait_limit(self, call: Call, now: float, not_before: float | None = None) -> None:
        """Arm the earliest wait-over rule whose target the call can still go to."""
        assert call.enqueued_at is not None
        rules = [
            r
            for r in call.queue.config.overflow
            if r.when is OverflowCondition.WAIT_OVER
            and (r.target.site is not None or self._can_move_to(call, r.target.queue))
        ]
        if rules:
            rule = min(rules, key=lambda r: r.seconds)
            deadline = max(
                now if not_before is None else not_before, call.enqueued_at + rule.seconds
            )
            call.timers[TimerKind.WAIT_OVERFLOW] = self._timers.set(
                deadline, TimerKind.WAIT_OVERFLOW, call, call.rank()
            )

    def _relax(self, call: Call, now: float) -> None:
        if call.state not in _IN_QUEUE:
            return
        waiting_in_profile = call.entry is not None and call.affinity_agent is None
        if waiting_in_profile:
            assert call.profile is not None and call.entry is not None
            call.profile.remove_waiting(call.entry)
            call.entry = None
        # (a ringing or affinity-waiting call uses the new profile when it waits again)
        self._catch_up(call, now, minimum=call.relax_level + 1)
        self._arm_relax(call)
        if waiting_in_profile:
            self._route(call, now)

    def _arm_relax(self, call: Call) -> None:
        relaxation = call.queue.config.relaxation
        if call.relax_level < len(relaxation):
            assert call.enqueued_at is not None
            deadline = call.enqueued_at + relaxation[call.relax_level].after_seconds
            call.timers[TimerKind.RELAX] = self._timers.set(
                deadline, TimerKind.RELAX, call, call.rank()
            )

    def _review_timer(self, call: Call, now: float) -> None:
        if call.state not in _IN_QUEUE:
            return
        config = call.queue.config
        every = config.announce_every_seconds or _DEFAULT_REVIEW_SECONDS
        call.timers[TimerKind.REVIEW] = self._timers.set(
            now + every, TimerKind.REVIEW, call, call.rank()
        )
        if call.state is CallState.QUEUED and call.affinity_agent is None:
            self._review(call, now)

    def _review(self, call: Call, now: float) -> None:
        """Estimate the caller's wait; overflow on it, or announce it."""
        position, ewt = self.estimate(call)
        config = call.queue.config
        if ewt is not None:
            for rule in config.overflow:
                if (
                    rule.when is OverflowCondition.EWT_OVER
                    and ewt > rule.seconds
                    and self._overflow(call, rule.target, now, "ewt_over")
                ):
                    return
        if config.announce_every_seconds is None:
            return
        if ewt is not None and call.announced_ewt is not None:
            ewt = min(ewt, call.announced_ewt)  # never announce a wait that grows
        call.announced_ewt = ewt
        over = config.callback_offer_over_seconds
        self._actions.append(
            PlayAnnouncement(
                call_id=call.id,
                position=position,
                ewt_seconds=ewt,
                offer_callback=over is not None and ewt is not None and ewt > over,
            )
        )

    def estimate(self, call: Call) -> tuple[int, float | None]:
        """A waiting caller's position (1 is next) and estimated remaining wait."""
        profile = call.profile
        entry = call.entry
        assert profile is not None and entry is not None
        position = profile.position(entry) + 1
        aht = call.queue.aht.mean
        if profile.ready == 0 or aht is None:
            return position, None  # nobody who could answer is in, or no history yet
        aht = max(aht, 1.0)
        reneging = call.queue.reneging.per_second
        ring = call.queue.ring.mean or 0.0  # the wait lasts until the agent answers
        if profile.ready > _AGENT_LEVEL_EWT_UP_TO:  # many agents: their releases average out
            measured = profile.service.per_second
            rate = measured if measured is not None else profile.ready / aht
            return position, ring + estimate_wait(position - 1, rate, reneging)
        # Few agents: who will free up when, and every call ahead of this one for
        # them, in this profile or in others that share some of these agents.
        releases = [r for a in profile.members if (r := self._release_in(a, aht)) is not None]
        if not releases:  # all of them are about to leave (pending not ready or logout)
            return position, None
        ahead = round(profile.calls_ahead(entry))
        return position, ring + estimate_from_releases(ahead, releases, aht, reneging)

    def _release_in(self, agent: Agent, aht: float) -> float | None:
        """Seconds until a ready agent is expected to be free; None for others."""
        if agent.status is not AgentStatus.READY or agent.pending is not None:
            return None
        state = agent.state
        if state is AgentState.IDLE:
            return 0.0
        if state is AgentState.NOT_RESPONDING:
            return None
        call = agent.call
        if call is None or call.connected_at is None:  # ringing: a whole call ahead of them
            return aht
        remaining = call.queue.aht.remaining(self._now - call.connected_at)
        return aht if remaining is None else remaining

    def _wait_limit_reached(self, call: Call, now: float) -> None:
        if call.state is CallState.OFFERED:
            assert call.reservation is not None  # look again once the ringing is over
            call.timers[TimerKind.WAIT_OVERFLOW] = self._timers.set(
                call.reservation.deadline, TimerKind.WAIT_OVERFLOW, call, call.rank()
            )
            return
        if call.state is not CallState.QUEUED:
            return
        assert call.enqueued_at is not None
        since = call.enqueued_at
        for rule in sorted(call.queue.config.overflow, key=lambda r: r.seconds):
            if (
                rule.when is OverflowCondition.WAIT_OVER
                and since + rule.seconds <= now  # the very sum the timer was set for
                and self._overflow(call, rule.target, now, "wait_over")
            ):
                return
        # Every target refused (full, or nobody staffed there): look again later.
        self._arm_wait_limit(call, now, not_before=now + _OVERFLOW_RETRY_SECONDS)

    def _overflow(self, call: Call, target: Target, now: float, reason: str) -> bool:
        """Move a waiting call to the target; False when the target can't take it."""
        if target.site is not None:
            self._send_to_site(call, target.site, now, reason)
            return True
        if not self._can_move_to(call, target.queue):
            return False
        assert target.queue is not None
        queue = self._queues[target.queue]
        if self._refusal(call, queue) is not None:
            return False
        self._unwait(call)
        call.cancel_timers()
        call.armed = False
        call.queue.size -= 1
        call.queue.reneging.left_queue(now - call.entered_queue_at, gave_up=True)
        self._place(call, queue, now, Trigger.REQUEUE, f"{reason}:{call.queue.id}")
        self._route(call, now)
        return True

    def _affinity_window_ended(self, call: Call, now: float) -> None:
        agent = call.affinity_agent
        if agent is None or call.entry is None:
            return
        agent.affinity_waiting.remove(call.entry)
        self._fall_back(call, now)

    # == look-ups that refuse politely ======================================================

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


__all__ = ["Engine", "Step", "Timer"]
