"""Contact-centre KPIs as a pure fold over the engine's events (definitions: docs/KPIS.md).

Theory of operation: ``KpiFold.add`` takes every event in ``seq`` order and
keeps running sums, per call while it is in the centre, per queue and per
agent. Nothing is stored per event, so a day of a large centre folds in
constant memory per live call. ``KpiFold.totals()`` turns the sums into
ratios; it does not change the fold, so it can be asked at any time.

What counts when:

* A call counts once it has ENDED, in the queue it ended in (an overflow to
  another queue moves it), with the outcome the engine gave it. Calls still
  in the centre are reported as ``in_progress`` and are not in any figure.
* Wait (ASA, time to abandon, service level) runs from the call's first
  QUEUED, which the engine keeps across overflows between queues; a call
  that never queued (blocked) waited 0 s.
* Talk is time CONNECTED, hold is time HELD, both from the call's events.
  After-call work (ACW) is the agent's WRAP_UP time that follows a call,
  credited to the queue of the call the agent last connected, when each
  wrap-up period closes. AHT = (talk + hold + ACW) ÷ answered.
* Occupancy is agent-side: (TALKING + HELD) ÷ (TALKING + HELD + IDLE while
  READY). Ringing (RESERVED) and wrap-up count on neither side, as in
  KPIS.md. Periods still open are counted up to ``totals(until=...)`` when
  given, else left out.
* Transfers: a transferred call is still one offered call, answered once (the
  engine keeps ANSWERED as the outcome of a call answered before a blind
  transfer, however it ends); its wait, speed of answer and ring are those of
  its first answer, its talk and hold those of all its legs. KPIS.md's
  transfer rate counts calls transferred by an agent, blind (back to a queue
  or to one agent: reason ``blind_transfer``) and warm (handed over after a
  consultation: ``consult_transfer``, ``conference_transfer``) apart, over
  the answered calls of the queue the call ended in. An agent handles a call
  when they answer it or take it over from a colleague; answering a
  consultation is not handling a call.
* Callbacks (a waiting caller who asked to be called back, or a booking from
  the IVR menu) are the same call: one offered call, with one outcome. The
  request is never an abandon. The wait runs from the first QUEUED (or
  CALLBACK_QUEUED, for a booking) to the agent taking the task (DIALING), the
  moment a caller's wait ends when the agent answers; the ring is that
  offer's. Reached (DIALING → CONNECTED), it is ANSWERED, with talk from the
  customer's answer; not reached, it is CALLBACK_FAILED, counted in
  ``callback_failed`` and in offered, in no other figure. ``callbacks``
  counts the calls that were callback tasks, whatever their outcome.
* A call closed as INTERRUPTED after a restart (its fate unknown) is counted
  in ``interrupted`` and in no other figure, offered included.

Edge cases: every ratio whose denominator is zero is ``None``, never 0 (no
answered call means "no ASA", not "ASA 0 s"). Rates are fractions 0-1,
not percentages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType

from acd.events import AgentStateChanged, CallStateChanged, Event
from acd.ids import AgentId, CallId, QueueId
from acd.states import AgentState, AgentStatus, CallState, Outcome

DEFAULT_SL_SECONDS = 20.0  # KPIS.md: service level X defaults to 20 s

_QUEUED = CallState.QUEUED
_OFFERED = CallState.OFFERED
_CONNECTED = CallState.CONNECTED
_HELD = CallState.HELD
_CALLBACK_QUEUED = CallState.CALLBACK_QUEUED
_CALLBACK_OFFERED = CallState.CALLBACK_OFFERED
_DIALING = CallState.DIALING
_ENDED = CallState.ENDED
_IDLE = AgentState.IDLE
_TALKING = AgentState.TALKING
_AGENT_HELD = AgentState.HELD
_WRAP_UP = AgentState.WRAP_UP
_READY = AgentStatus.READY
_BLIND = "blind_transfer"
_WARM = frozenset({"consult_transfer", "conference_transfer"})
_CONSULT = "consult"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallKpis:
    """Call-side figures of one queue, or of all queues together."""

    offered: int  # every outcome but interrupted: answered + abandoned + short + overflowed +
    # blocked + self-served + callback failed
    answered: int
    abandoned: int  # excluding short abandons
    short_abandoned: int
    overflowed: int
    blocked: int
    self_served: int
    callback_failed: int  # callback tasks whose customer was not reached
    callbacks: int  # calls that were callback tasks (any outcome; reached ones are answered)
    answered_within_sl: int
    answer_wait_seconds: float  # queue time of the answered calls, summed: ASA's numerator
    service_level: float | None  # answered within the queue's X s ÷ offered
    asa_seconds: float | None  # queue time of answered calls ÷ answered
    avg_abandon_seconds: float | None  # mean wait of abandoned calls, short abandons excluded
    aht_seconds: float | None  # (talk + hold + ACW) ÷ answered
    avg_talk_seconds: float | None
    avg_hold_seconds: float | None
    avg_acw_seconds: float | None  # wrap-up per answered call
    avg_ring_seconds: float | None  # ringing of the offer that was accepted
    max_wait_seconds: float | None  # longest queue time of an answered call
    abandon_rate: float | None  # abandoned (not short) ÷ offered
    answered_rate: float | None  # answered ÷ offered
    blocked_rate: float | None  # blocked ÷ offered
    queue_placement_rate: float | None  # calls that waited before any offer ÷ offered
    transferred_blind: int  # calls an agent sent back to a queue or to another agent
    transferred_warm: int  # calls an agent handed over after consulting a colleague
    blind_transfer_rate: float | None  # transferred blind ÷ answered
    warm_transfer_rate: float | None  # transferred warm ÷ answered
    interrupted: int  # closed after a restart, fate unknown: not offered, in no other figure

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentKpis:
    """Agent-side time of one agent, or of all agents together."""

    handled: int  # calls answered
    talk_seconds: float
    hold_seconds: float
    acw_seconds: float
    idle_seconds: float  # IDLE while READY
    occupancy: float | None  # (talk + hold) ÷ (talk + hold + idle)

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiTotals:
    """What a fold has seen so far: overall, per queue and per agent."""

    overall: CallKpis
    per_queue: Mapping[QueueId, CallKpis]
    agents: AgentKpis
    per_agent: Mapping[AgentId, AgentKpis]
    in_progress: int  # calls seen but not ended, counted nowhere else

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON; ``overall`` also carries the agents' occupancy."""
        return {
            "overall": self.overall.as_dict() | {"occupancy": self.agents.occupancy},
            "per_queue": {str(q): k.as_dict() for q, k in self.per_queue.items()},
            "agents": self.agents.as_dict(),
            "per_agent": {str(a): k.as_dict() for a, k in self.per_agent.items()},
            "in_progress": self.in_progress,
        }


class _CallTally:
    """One call while it is in the centre."""

    __slots__ = (
        "blind",
        "callback",
        "connected_at",
        "hold",
        "offered_at",
        "placed",
        "queue_id",
        "queued_at",
        "ring",
        "since",
        "talk",
        "warm",
    )

    def __init__(self, at: float, queue_id: QueueId) -> None:
        self.since = at  # start of the current state
        self.queue_id = queue_id
        self.queued_at: float | None = None
        self.offered_at: float | None = None  # the latest offer
        self.connected_at: float | None = None  # the first answer
        self.ring = 0.0  # of the offer first answered
        self.placed: bool | None = None  # decided at the first offer, or at the end
        self.talk = 0.0
        self.hold = 0.0
        self.blind = False  # transferred blind, at least once
        self.warm = False
        self.callback = False  # was a callback task


class _QueueTally:
    """Running sums of one queue's ended calls."""

    __slots__ = (
        "abandon_wait",
        "abandoned",
        "acw",
        "answer_wait",
        "answered",
        "blind",
        "blocked",
        "callback_failed",
        "callbacks",
        "hold",
        "in_sl",
        "interrupted",
        "max_wait",
        "overflowed",
        "placed",
        "ring",
        "self_served",
        "short_abandoned",
        "talk",
        "warm",
    )

    def __init__(self) -> None:
        self.answered = self.abandoned = self.short_abandoned = 0
        self.overflowed = self.blocked = self.self_served = 0
        self.callback_failed = self.callbacks = 0
        self.in_sl = self.placed = self.blind = self.warm = self.interrupted = 0
        self.answer_wait = self.abandon_wait = self.max_wait = 0.0
        self.talk = self.hold = self.acw = self.ring = 0.0

    def add(self, other: _QueueTally) -> None:
        for name in _QueueTally.__slots__:
            if name == "max_wait":
                self.max_wait = max(self.max_wait, other.max_wait)
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def kpis(self) -> CallKpis:
        answered = self.answered
        offered = (
            answered
            + self.abandoned
            + self.short_abandoned
            + self.overflowed
            + self.blocked
            + self.self_served
            + self.callback_failed
        )
        return CallKpis(
            offered=offered,
            answered=answered,
            abandoned=self.abandoned,
            short_abandoned=self.short_abandoned,
            overflowed=self.overflowed,
            blocked=self.blocked,
            self_served=self.self_served,
            callback_failed=self.callback_failed,
            callbacks=self.callbacks,
            answered_within_sl=self.in_sl,
            answer_wait_seconds=self.answer_wait,
            service_level=_ratio(self.in_sl, offered),
            asa_seconds=_ratio(self.answer_wait, answered),
            avg_abandon_seconds=_ratio(self.abandon_wait, self.abandoned),
            aht_seconds=_ratio(self.talk + self.hold + self.acw, answered),
            avg_talk_seconds=_ratio(self.talk, answered),
            avg_hold_seconds=_ratio(self.hold, answered),
            avg_acw_seconds=_ratio(self.acw, answered),
            avg_ring_seconds=_ratio(self.ring, answered),
            max_wait_seconds=self.max_wait if answered else None,
            abandon_rate=_ratio(self.abandoned, offered),
            answered_rate=_ratio(answered, offered),
            blocked_rate=_ratio(self.blocked, offered),
            queue_placement_rate=_ratio(self.placed, offered),
            transferred_blind=self.blind,
            transferred_warm=self.warm,
            blind_transfer_rate=_ratio(self.blind, answered),
            warm_transfer_rate=_ratio(self.warm, answered),
            interrupted=self.interrupted,
        )


class _AgentTally:
    """One agent's current state and time so far in each kind of period."""

    __slots__ = (
        "acw",
        "handled",
        "hold",
        "idle",
        "since",
        "state",
        "status",
        "talk",
        "wrap_queue",
    )

    def __init__(self, at: float) -> None:
        self.since = at
        self.status: AgentStatus | None = None
        self.state: AgentState | None = None
        self.wrap_queue: QueueId | None = None  # queue of the call last connected
        self.handled = 0
        self.talk = self.hold = self.acw = self.idle = 0.0

    def kpis(self, until: float | None) -> AgentKpis:
        talk, hold, idle, acw = self.talk, self.hold, self.idle, self.acw
        if until is not None and until > self.since:
            open_period = until - self.since
            if self.state is _TALKING:
                talk += open_period
            elif self.state is _AGENT_HELD:
                hold += open_period
            elif self.state is _WRAP_UP:
                acw += open_period
            elif self.state is _IDLE and self.status is _READY:
                idle += open_period
        return _agent_kpis(self.handled, talk, hold, acw, idle)


class KpiFold:
    """Folds events into KPIs; feed it every event, in order, with ``add``."""

    __slots__ = ("_agents", "_calls", "_default_sl", "_queues", "_sl_of")

    def __init__(
        self,
        sl_seconds: Mapping[QueueId, float] | Callable[[QueueId], float | None] | None = None,
        *,
        default_sl_seconds: float = DEFAULT_SL_SECONDS,
    ) -> None:
        """``sl_seconds``: each queue's service-level threshold X; others use the default.

        A mapping is copied: the thresholds are fixed for the fold's life. A function
        is asked when each call ends (the queue's X at that moment, None for the
        default), for a fold that outlives changes to the queues' configuration.
        """
        if callable(sl_seconds):
            self._sl_of: Callable[[QueueId], float | None] = sl_seconds
        else:
            self._sl_of = MappingProxyType(dict(sl_seconds or {})).get
        self._default_sl = default_sl_seconds
        self._calls: dict[CallId, _CallTally] = {}
        self._queues: dict[QueueId, _QueueTally] = {}
        self._agents: dict[AgentId, _AgentTally] = {}

    def add(self, event: Event) -> None:
        """Take one event into account (ReservationStateChanged carries nothing we need)."""
        if isinstance(event, CallStateChanged):
            self._call_changed(event)
        elif isinstance(event, AgentStateChanged):
            self._agent_changed(event)

    def extend(self, events: Iterable[Event]) -> None:
        for event in events:
            self.add(event)

    def totals(self, *, until: float | None = None) -> KpiTotals:
        """The KPIs so far; ``until`` closes agents' open periods at that time."""
        overall = _QueueTally()
        for tally in self._queues.values():
            overall.add(tally)
        per_agent = {a: t.kpis(until) for a, t in sorted(self._agents.items())}
        return KpiTotals(
            overall=overall.kpis(),
            per_queue=MappingProxyType({q: t.kpis() for q, t in sorted(self._queues.items())}),
            agents=_agent_kpis(
                sum(k.handled for k in per_agent.values()),
                sum(k.talk_seconds for k in per_agent.values()),
                sum(k.hold_seconds for k in per_agent.values()),
                sum(k.acw_seconds for k in per_agent.values()),
                sum(k.idle_seconds for k in per_agent.values()),
            ),
            per_agent=MappingProxyType(per_agent),
            in_progress=len(self._calls),
        )

    def _queue(self, queue_id: QueueId) -> _QueueTally:
        tally = self._queues.get(queue_id)
        if tally is None:
            tally = self._queues[queue_id] = _QueueTally()
        return tally

    def _call_changed(self, event: CallStateChanged) -> None:
        at = event.at
        call = self._calls.get(event.call_id)
        if call is None:
            call = self._calls[event.call_id] = _CallTally(at, event.queue_id)
        call.queue_id = event.queue_id
        previous = event.from_state
        if previous is _CONNECTED:
            call.talk += at - call.since
        elif previous is _HELD:
            call.hold += at - call.since
        call.since = at
        to_state = event.to_state
        if to_state is _QUEUED:
            if call.queued_at is None:
                call.queued_at = at
            elif event.reason == _BLIND:
                call.blind = True
        elif to_state is _OFFERED or to_state is _CALLBACK_OFFERED:
            call.offered_at = at
            if call.placed is None:
                call.placed = call.queued_at is not None and at > call.queued_at
        elif to_state is _CALLBACK_QUEUED:
            call.callback = True
            if call.queued_at is None:  # booked: it queues as a callback task
                call.queued_at = at
        elif to_state is _CONNECTED or to_state is _DIALING:
            if call.connected_at is None:  # a callback's wait ends when the agent takes it
                call.connected_at = at
                if call.offered_at is not None:
                    call.ring = at - call.offered_at
            agent = self._agents.get(event.agent_id) if event.agent_id is not None else None
            if agent is not None:
                agent.wrap_queue = event.queue_id
            if event.reason in _WARM:
                call.warm = True
                if agent is not None:
                    agent.handled += 1  # took the caller over from a colleague
        elif to_state is _ENDED:
            del self._calls[event.call_id]
            self._call_ended(event, call)

    def _call_ended(self, event: CallStateChanged, call: _CallTally) -> None:
        at = event.at
        tally = self._queue(event.queue_id)
        queued_at = call.queued_at
        if call.placed is None:
            call.placed = queued_at is not None and at > queued_at
        outcome = event.outcome
        if outcome is Outcome.INTERRUPTED:
            tally.interrupted += 1
            return
        if call.placed:
            tally.placed += 1
        tally.blind += call.blind
        tally.warm += call.warm
        tally.callbacks += call.callback
        if outcome is Outcome.ANSWERED:
            connected_at = call.connected_at if call.connected_at is not None else at
            wait = connected_at - queued_at if queued_at is not None else 0.0
            tally.answered += 1
            tally.answer_wait += wait
            tally.max_wait = max(tally.max_wait, wait)
            # KPIS.md: answered within X s of entering the queue (X per queue).
            threshold = self._sl_of(event.queue_id)
            if wait <= (self._default_sl if threshold is None else threshold):
                tally.in_sl += 1
            tally.talk += call.talk
            tally.hold += call.hold
            tally.ring += call.ring
        elif outcome is Outcome.ABANDONED:
            tally.abandoned += 1
            tally.abandon_wait += at - queued_at if queued_at is not None else 0.0
        elif outcome is Outcome.SHORT_ABANDONED:
            tally.short_abandoned += 1
        elif outcome is Outcome.OVERFLOWED:
            tally.overflowed += 1
        elif outcome is Outcome.BLOCKED:
            tally.blocked += 1
        elif outcome is Outcome.SELF_SERVED:
            tally.self_served += 1
        elif outcome is Outcome.CALLBACK_FAILED:
            tally.callback_failed += 1  # KPIS.md: not an abandon; offered, not answered
        else:  # a call must leave with exactly one outcome (ARCHITECTURE.md, call model)
            raise ValueError(f"call {event.call_id} ended without an outcome (seq {event.seq})")

    def _agent_changed(self, event: AgentStateChanged) -> None:
        at = event.at
        agent = self._agents.get(event.agent_id)
        if agent is None:
            agent = self._agents[event.agent_id] = _AgentTally(at)
        period = at - agent.since
        state = agent.state
        if state is _TALKING:
            agent.talk += period
        elif state is _AGENT_HELD:
            agent.hold += period
        elif state is _WRAP_UP:
            agent.acw += period
            if agent.wrap_queue is not None:
                self._queue(agent.wrap_queue).acw += period
        elif state is _IDLE and agent.status is _READY:
            agent.idle += period
        agent.since = at
        agent.status = event.to_status
        agent.state = event.to_state
        if event.to_state is _TALKING and event.from_state is AgentState.RESERVED:
            # A new call (or a consultation about one): its wrap-up goes to its
            # queue, whichever of the call's CONNECTED and the agent's TALKING
            # comes first.
            if event.reason != _CONSULT:
                agent.handled += 1
            call = self._calls.get(event.call_id) if event.call_id is not None else None
            if call is not None:
                agent.wrap_queue = call.queue_id


def _agent_kpis(handled: int, talk: float, hold: float, acw: float, idle: float) -> AgentKpis:
    return AgentKpis(
        handled=handled,
        talk_seconds=talk,
        hold_seconds=hold,
        acw_seconds=acw,
        idle_seconds=idle,
        occupancy=_ratio(talk + hold, talk + hold + idle),
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None
