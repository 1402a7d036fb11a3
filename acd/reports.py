"""KPI reports per interval, per queue, agent and team, from recorded events (docs/KPIS.md).

Theory of operation: ``build_report`` folds the core's events of a time range,
in ``seq`` order, into per-call records and per-agent time, then sums them
into one tally per (interval, queue), (interval, agent) and (interval, team).
Every interval of the range gets a row for every queue, agent and team known,
with zeros where nothing happened (ratios with nothing to divide by are None,
as in ``acd.kpis``: "no ASA", not "ASA 0 s"). A day, week or month report is
the same fold with longer intervals (``acd.intervals``), so its sums are
exactly those of its half hours.

Where each figure counts:

* Queue rows are about calls. A call counts in the interval it ARRIVED in
  (its first event), in the queue it ended in, once it has ended; it is
  ``in_progress`` until then. Offered, answered, abandoned, blocked,
  overflowed, service level and the rest mean what they mean in
  ``acd.kpis.KpiFold``, with these additions:

  - Short abandons are decided here, by the report's threshold: a call that
    hung up in queue after less than ``short_abandon_seconds`` of waiting is
    a short abandon, whatever the queue's own threshold said when it happened.
  - ``service_level_with_abandons``: (answered within X s + abandoned, short
    or not, within X s) ÷ offered: the variant that does not hold a caller
    who gave up quickly against the centre.
  - Average queue time: the wait of answered and abandoned calls (short
    abandons left out, like everywhere else) ÷ their number.
  - ``abandon_times``: every abandon, short ones included (that is the
    point: misdials show at the bottom), by wait: up to 5, 10, 20, 30, 60,
    120, 300 s and more.
  - Callbacks count as in ``acd.kpis`` (never an abandon; the wait ends when
    an agent takes the task; ``callback_failed`` if the customer is not
    reached; ``callbacks``: the calls that were callback tasks).
  - First-call resolution: an answered call whose last wrap-up was resolved
    (``resolved`` true, or disposition ``resolved``) and after which the same
    caller (customer id, else calling number) did not call again within
    ``fcr_window_seconds`` of its end. Until that window has passed, a
    recent call's resolution is provisional.

* Agent rows are about agents' time: talk, hold, wrap-up, ready-idle and
  logged-in time count in the interval they were spent in (a period across
  a boundary is split), calls handled and transfers made in the interval
  they happened. Occupancy is (talk + hold) ÷ (talk + hold + ready idle);
  calls per hour is handled ÷ logged-in hours; AHT is (talk + hold +
  wrap-up) ÷ handled. An agent's periods open at the end of the data count
  up to ``now``. A call's first-call resolution counts for the agent whose
  wrap-up resolved it, in the interval they took the call.

* Team rows are the sums of their agents' (an agent in two teams counts in
  both), by the team membership given now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from acd.events import AgentStateChanged, CallStateChanged, Event
from acd.ids import AgentId, CallId, QueueId
from acd.intervals import Intervals
from acd.kpis import DEFAULT_SL_SECONDS
from acd.states import AgentState, AgentStatus, CallState, Outcome

ABANDON_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)  # as the metrics' histograms
DEFAULT_SHORT_ABANDON_SECONDS = 20.0  # KPIS.md
DEFAULT_FCR_WINDOW_SECONDS = 72 * 3600.0  # KPIS.md
_BLIND = "blind_transfer"
_WARM = frozenset({"consult_transfer", "conference_transfer"})
_CONSULT = "consult"
_RESOLVED = "resolved"
_ON_CALL = frozenset({AgentState.TALKING, AgentState.HELD})

Figures = dict[str, Any]


class Dimension(Enum):
    QUEUES = "queues"
    AGENTS = "agents"
    TEAMS = "teams"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportSpec:
    """What to report over: the range, its intervals, and the thresholds."""

    since: float  # inclusive, epoch seconds
    until: float  # exclusive
    intervals: Intervals
    now: float | None = None  # open agent periods count up to min(until, now); None: until
    sl_seconds: Mapping[QueueId, float] = field(default_factory=dict)  # each queue's X
    default_sl_seconds: float = DEFAULT_SL_SECONDS
    short_abandon_seconds: float = DEFAULT_SHORT_ABANDON_SECONDS
    fcr_window_seconds: float = DEFAULT_FCR_WINDOW_SECONDS
    queues: Iterable[QueueId] = ()  # listed even when they had no call
    agents: Mapping[AgentId, frozenset[str]] = field(default_factory=dict)  # each one's teams


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerCall:
    """A call by a known caller (customer id, else number): what a repeat call is looked for in."""

    call_id: CallId
    caller: str
    arrived_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportRow:
    """The figures of one queue, agent or team over one interval."""

    start: float
    end: float
    key: str
    figures: Figures


class _Call:
    """One call arrived in the range, from its events."""

    __slots__ = (
        "acw",
        "arrived_at",
        "blind",
        "callback",
        "connected_at",
        "counted",
        "ended_at",
        "hold",
        "offered_at",
        "outcome",
        "placed",
        "queue_id",
        "queued_at",
        "resolved",
        "ring",
        "since",
        "talk",
        "warm",
    )

    def __init__(self, at: float, queue_id: QueueId) -> None:
        self.arrived_at = self.since = at
        self.counted = True  # arrived in the report's range
        self.queue_id = queue_id
        self.queued_at: float | None = None
        self.offered_at: float | None = None
        self.connected_at: float | None = None  # the first answer
        self.ended_at: float | None = None
        self.outcome: Outcome | None = None
        self.placed: bool | None = None
        self.ring = self.talk = self.hold = self.acw = 0.0
        self.blind = self.warm = False
        self.callback = False  # was a callback task
        self.resolved: bool | None = None  # by the call's latest wrap-up


class _Agent:
    """One agent's current status and state, and since when."""

    __slots__ = ("since", "state", "status", "wrap_call")

    def __init__(self, at: float) -> None:
        self.since = at
        self.status: AgentStatus | None = None
        self.state: AgentState | None = None
        self.wrap_call: CallId | None = None  # the call their next wrap-up follows


_QUEUE_SUMS = (
    "answered",
    "abandoned",
    "short_abandoned",
    "overflowed",
    "blocked",
    "self_served",
    "callback_failed",
    "callbacks",
    "in_progress",
    "answered_within_sl",
    "abandoned_within_sl",
    "answer_wait",
    "abandon_wait",
    "max_wait",
    "placed",
    "talk",
    "hold",
    "acw",
    "ring",
    "transferred_blind",
    "transferred_warm",
    "resolved_first_call",
)
_AGENT_SUMS = (
    "handled",
    "talk",
    "hold",
    "acw",
    "idle",
    "logged_in",
    "transferred_blind",
    "transferred_warm",
    "resolved_first_call",
)


class _Tally:
    """Running sums of one row; ``abandon_times`` counts per ``ABANDON_BUCKETS`` (and over)."""

    __slots__ = ("abandon_times", "sums")

    def __init__(self, names: Sequence[str]) -> None:
        self.sums: dict[str, float] = dict.fromkeys(names, 0.0)
        self.abandon_times = [0] * (len(ABANDON_BUCKETS) + 1)

    def add(self, other: _Tally) -> None:
        for name, value in other.sums.items():
            self.sums[name] += value


def build_report(
    spec: ReportSpec,
    events: Iterable[Event],
    *,
    callers: Mapping[CallId, str] | None = None,
    caller_calls: Iterable[CallerCall] = (),
) -> dict[Dimension, list[ReportRow]]:
    """Rows per dimension for ``spec``'s range.

    ``events``: in seq order, every event of the calls that arrived in the
    range, every agent event of the range, and each agent's last event before
    it (their state when it began). ``callers``: each call's caller, and
    ``caller_calls``: the known callers' calls up to the end of the range plus
    the FCR window, for first-call resolution.
    """
    fold = _Fold(spec)
    for event in events:
        if isinstance(event, CallStateChanged):
            fold.call_changed(event)
        elif isinstance(event, AgentStateChanged):
            fold.agent_changed(event)
    fold.close_agents()
    fold.tally_calls(callers or {}, caller_calls)
    return fold.rows()


class _Fold:
    def __init__(self, spec: ReportSpec) -> None:
        self.spec = spec
        self.calls: dict[CallId, _Call] = {}
        self.agents: dict[AgentId, _Agent] = {}
        self.queue_rows: dict[tuple[float, str], _Tally] = {}
        self.agent_rows: dict[tuple[float, str], _Tally] = {}
        # (agent, call) -> when the agent took it; and the agents' resolving wrap-ups
        self.taken: dict[tuple[AgentId, CallId], float] = {}
        self.resolutions: list[tuple[AgentId, CallId, float]] = []

    # == calls ==========================================================================

    def call_changed(self, event: CallStateChanged) -> None:
        at = event.at
        call = self.calls.get(event.call_id)
        if call is None:
            call = self.calls[event.call_id] = _Call(at, event.queue_id)
            # A call that arrived before the range is reported there; its events
            # here still say who took it over and when it ended (for FCR).
            call.counted = event.from_state is None and self.spec.since <= at < self.spec.until
        call.queue_id = event.queue_id
        previous = event.from_state
        if previous is CallState.CONNECTED:
            call.talk += at - call.since
        elif previous is CallState.HELD:
            call.hold += at - call.since
        call.since = at
        to_state = event.to_state
        if to_state is CallState.QUEUED:
            if call.queued_at is None:
                call.queued_at = at
            elif event.reason == _BLIND:
                call.blind = True
        elif to_state is CallState.OFFERED or to_state is CallState.CALLBACK_OFFERED:
            call.offered_at = at
            if call.placed is None:
                call.placed = call.queued_at is not None and at > call.queued_at
        elif to_state is CallState.CALLBACK_QUEUED:
            call.callback = True
            if call.queued_at is None:  # booked: it queues as a callback task
                call.queued_at = at
        elif to_state is CallState.CONNECTED or to_state is CallState.DIALING:
            if call.connected_at is None:  # a callback's wait ends when the agent takes it
                call.connected_at = at
                if call.offered_at is not None:
                    call.ring = at - call.offered_at
            if event.reason in _WARM:
                call.warm = True
                if event.agent_id is not None:  # took the caller over from a colleague
                    self._handled(event.agent_id, event.call_id, at)
        elif to_state is CallState.ENDED:
            call.ended_at = at
            call.outcome = event.outcome
            if call.placed is None:
                call.placed = call.queued_at is not None and at > call.queued_at

    def tally_calls(
        self, callers: Mapping[CallId, str], caller_calls: Iterable[CallerCall]
    ) -> None:
        spec = self.spec
        repeats = _Repeats(caller_calls, spec.fcr_window_seconds)
        for call_id, call in self.calls.items():
            if not call.counted:
                continue
            tally = self._row(self.queue_rows, call.arrived_at, call.queue_id, _QUEUE_SUMS)
            sums = tally.sums
            outcome = call.outcome
            if outcome is None or call.ended_at is None:
                sums["in_progress"] += 1
                continue
            if outcome is Outcome.INTERRUPTED:
                continue  # its fate is unknown: in no figure (acd.kpis)
            sl = spec.sl_seconds.get(call.queue_id, spec.default_sl_seconds)
            queued_at = call.queued_at
            sums["placed"] += bool(call.placed)
            sums["transferred_blind"] += call.blind
            sums["transferred_warm"] += call.warm
            sums["callbacks"] += call.callback
            if outcome is Outcome.ANSWERED:
                connected_at = call.connected_at if call.connected_at is not None else call.ended_at
                wait = connected_at - queued_at if queued_at is not None else 0.0
                sums["answered"] += 1
                sums["answer_wait"] += wait
                sums["max_wait"] = max(sums["max_wait"], wait)
                sums["answered_within_sl"] += wait <= sl  # KPIS.md: within X s, inclusive
                sums["talk"] += call.talk
                sums["hold"] += call.hold
                sums["acw"] += call.acw
                sums["ring"] += call.ring
                caller = callers.get(call_id)
                if call.resolved and not repeats.after(caller, call_id, call.ended_at):
                    sums["resolved_first_call"] += 1
            elif outcome in (Outcome.ABANDONED, Outcome.SHORT_ABANDONED):
                wait = call.ended_at - queued_at if queued_at is not None else 0.0
                tally.abandon_times[_abandon_bucket(wait)] += 1
                sums["abandoned_within_sl"] += wait <= sl
                if wait < spec.short_abandon_seconds:
                    sums["short_abandoned"] += 1
                else:
                    sums["abandoned"] += 1
                    sums["abandon_wait"] += wait
            elif outcome is Outcome.OVERFLOWED:
                sums["overflowed"] += 1
            elif outcome is Outcome.BLOCKED:
                sums["blocked"] += 1
            elif outcome is Outcome.SELF_SERVED:
                sums["self_served"] += 1
            elif outcome is Outcome.CALLBACK_FAILED:
                sums["callback_failed"] += 1
        for agent_id, call_id, taken_at in self.resolutions:
            resolved = self.calls.get(call_id)
            ended_at = resolved.ended_at if resolved is not None else None
            if ended_at is not None and not repeats.after(callers.get(call_id), call_id, ended_at):
                self._agent_count(agent_id, taken_at, "resolved_first_call")

    # == agents =========================================================================

    def agent_changed(self, event: AgentStateChanged) -> None:
        at = event.at
        agent = self.agents.get(event.agent_id)
        if agent is None:
            agent = self.agents[event.agent_id] = _Agent(at)
        self._close_period(event.agent_id, agent, at)
        agent.status = event.to_status
        agent.state = event.to_state
        answered = event.to_state is AgentState.TALKING and event.from_state is AgentState.RESERVED
        if answered and event.reason != _CONSULT and event.call_id is not None:
            self._handled(event.agent_id, event.call_id, at)
        if event.from_state in _ON_CALL and event.to_state not in _ON_CALL:
            # The agent's leg ended; the reason says whether they transferred the caller.
            if event.reason == _BLIND:
                self._agent_count(event.agent_id, at, "transferred_blind")
            elif event.reason in _WARM:
                self._agent_count(event.agent_id, at, "transferred_warm")
        if event.call_id is not None:
            if event.to_state is AgentState.WRAP_UP:
                agent.wrap_call = event.call_id
            elif event.from_state is AgentState.WRAP_UP:
                self._wrapped_up(event)

    def _wrapped_up(self, event: AgentStateChanged) -> None:
        assert event.call_id is not None
        resolved = bool(event.resolved) or (event.disposition or "").lower() == _RESOLVED
        call = self.calls.get(event.call_id)
        if call is not None:
            call.resolved = resolved
        taken_at = self.taken.pop((event.agent_id, event.call_id), None)
        if resolved and taken_at is not None:
            self.resolutions.append((event.agent_id, event.call_id, taken_at))

    def _handled(self, agent_id: AgentId, call_id: CallId, at: float) -> None:
        self.taken[(agent_id, call_id)] = at
        self._agent_count(agent_id, at, "handled")

    def close_agents(self) -> None:
        end = self.spec.until if self.spec.now is None else min(self.spec.until, self.spec.now)
        for agent_id, agent in self.agents.items():
            self._close_period(agent_id, agent, max(end, agent.since))

    def _close_period(self, agent_id: AgentId, agent: _Agent, at: float) -> None:
        start, agent.since = agent.since, at
        state, status = agent.state, agent.status
        if status is None or status is AgentStatus.LOGGED_OUT or at <= start:
            return
        self._spend(agent_id, "logged_in", start, at)
        if state is AgentState.TALKING:
            self._spend(agent_id, "talk", start, at)
        elif state is AgentState.HELD:
            self._spend(agent_id, "hold", start, at)
        elif state is AgentState.WRAP_UP:
            self._spend(agent_id, "acw", start, at)
            call = self.calls.get(agent.wrap_call) if agent.wrap_call is not None else None
            if call is not None:
                call.acw += at - start  # the whole wrap-up, in the row of the call's arrival
        elif state is AgentState.IDLE and status is AgentStatus.READY:
            self._spend(agent_id, "idle", start, at)

    def _spend(self, agent_id: AgentId, name: str, start: float, end: float) -> None:
        """Add the time from ``start`` to ``end`` that falls in the range, interval by interval."""
        spec = self.spec
        at, end = max(start, spec.since), min(end, spec.until)
        while at < end:
            following = spec.intervals.following(spec.intervals.start(at))
            upto = min(end, following)
            self._row(self.agent_rows, at, agent_id, _AGENT_SUMS).sums[name] += upto - at
            at = upto

    def _agent_count(self, agent_id: AgentId, at: float, name: str) -> None:
        if self.spec.since <= at < self.spec.until:
            self._row(self.agent_rows, at, agent_id, _AGENT_SUMS).sums[name] += 1

    def _row(
        self, rows: dict[tuple[float, str], _Tally], at: float, key: str, names: Sequence[str]
    ) -> _Tally:
        index = (self.spec.intervals.start(at), key)
        tally = rows.get(index)
        if tally is None:
            tally = rows[index] = _Tally(names)
        return tally

    # == rows ===========================================================================

    def rows(self) -> dict[Dimension, list[ReportRow]]:
        spec = self.spec
        starts = list(spec.intervals.between(spec.since, spec.until))
        queues = {str(q) for q in spec.queues} | {k for _, k in self.queue_rows}
        agents = {str(a) for a in spec.agents} | {k for _, k in self.agent_rows}
        members: dict[str, list[str]] = {}
        for agent_id, teams in spec.agents.items():
            for team in teams:
                members.setdefault(team, []).append(agent_id)
        out: dict[Dimension, list[ReportRow]] = {d: [] for d in Dimension}
        for start in starts:
            end = spec.intervals.following(start)
            for queue in sorted(queues):
                tally = self.queue_rows.get((start, queue)) or _Tally(_QUEUE_SUMS)
                out[Dimension.QUEUES].append(
                    ReportRow(start=start, end=end, key=queue, figures=queue_figures(tally))
                )
            for agent in sorted(agents):
                tally = self.agent_rows.get((start, agent)) or _Tally(_AGENT_SUMS)
                out[Dimension.AGENTS].append(
                    ReportRow(start=start, end=end, key=agent, figures=agent_figures(tally))
                )
            for team, team_agents in sorted(members.items()):
                tally = _Tally(_AGENT_SUMS)
                for agent in team_agents:
                    found = self.agent_rows.get((start, agent))
                    if found is not None:
                        tally.add(found)
                out[Dimension.TEAMS].append(
                    ReportRow(start=start, end=end, key=team, figures=agent_figures(tally))
                )
        return out


class _Repeats:
    """The known callers' call arrivals, to tell whether a caller called again soon."""

    def __init__(self, calls: Iterable[CallerCall], window: float) -> None:
        self._window = window
        self._by_caller: dict[str, list[tuple[float, CallId]]] = {}
        for call in calls:
            self._by_caller.setdefault(call.caller, []).append((call.arrived_at, call.call_id))

    def after(self, caller: str | None, call_id: CallId, ended_at: float) -> bool:
        """Did ``caller`` make another call after ``call_id`` ended, within the window?"""
        if caller is None:
            return False  # an unknown caller cannot be recognised calling again
        return any(
            other != call_id and ended_at < at <= ended_at + self._window
            for at, other in self._by_caller.get(caller, ())
        )


def _abandon_bucket(wait: float) -> int:
    for index, edge in enumerate(ABANDON_BUCKETS):
        if wait <= edge:
            return index
    return len(ABANDON_BUCKETS)


def abandon_time_labels() -> list[str]:
    """``le_5`` (waited at most 5 s), ``le_10`` ... ``le_300``, ``gt_300``."""
    return [f"le_{edge:g}" for edge in ABANDON_BUCKETS] + [f"gt_{ABANDON_BUCKETS[-1]:g}"]


def queue_figures(tally: _Tally) -> Figures:
    s = tally.sums
    answered = int(s["answered"])
    abandoned = int(s["abandoned"])
    offered = (
        answered
        + abandoned
        + int(s["short_abandoned"] + s["overflowed"] + s["blocked"] + s["self_served"])
        + int(s["callback_failed"])
    )
    return {
        "offered": offered,
        "answered": answered,
        "abandoned": abandoned,  # short abandons apart
        "short_abandoned": int(s["short_abandoned"]),
        "blocked": int(s["blocked"]),
        "overflowed": int(s["overflowed"]),
        "self_served": int(s["self_served"]),
        "callback_failed": int(s["callback_failed"]),
        "callbacks": int(s["callbacks"]),
        "in_progress": int(s["in_progress"]),
        "answered_within_sl": int(s["answered_within_sl"]),
        "abandoned_within_sl": int(s["abandoned_within_sl"]),
        "service_level": _ratio(s["answered_within_sl"], offered),
        "service_level_with_abandons": _ratio(
            s["answered_within_sl"] + s["abandoned_within_sl"], offered
        ),
        "asa_seconds": _ratio(s["answer_wait"], answered),
        "avg_queue_seconds": _ratio(s["answer_wait"] + s["abandon_wait"], answered + abandoned),
        "max_wait_seconds": s["max_wait"] if answered else None,
        "avg_abandon_seconds": _ratio(s["abandon_wait"], abandoned),
        "abandon_rate": _ratio(abandoned, offered),
        "answered_rate": _ratio(answered, offered),
        "blocked_rate": _ratio(s["blocked"], offered),
        "queue_placement_rate": _ratio(s["placed"], offered),
        "avg_talk_seconds": _ratio(s["talk"], answered),
        "avg_hold_seconds": _ratio(s["hold"], answered),
        "avg_acw_seconds": _ratio(s["acw"], answered),
        "aht_seconds": _ratio(s["talk"] + s["hold"] + s["acw"], answered),
        "avg_ring_seconds": _ratio(s["ring"], answered),
        "transferred_blind": int(s["transferred_blind"]),
        "transferred_warm": int(s["transferred_warm"]),
        "blind_transfer_rate": _ratio(s["transferred_blind"], answered),
        "warm_transfer_rate": _ratio(s["transferred_warm"], answered),
        "resolved_first_call": int(s["resolved_first_call"]),
        "first_call_resolution": _ratio(s["resolved_first_call"], answered),
        "abandon_times": dict(zip(abandon_time_labels(), tally.abandon_times, strict=True)),
    }


def agent_figures(tally: _Tally) -> Figures:
    s = tally.sums
    handled = int(s["handled"])
    busy = s["talk"] + s["hold"]
    return {
        "handled": handled,
        "talk_seconds": s["talk"],
        "hold_seconds": s["hold"],
        "acw_seconds": s["acw"],
        "idle_seconds": s["idle"],
        "logged_in_seconds": s["logged_in"],
        "occupancy": _ratio(busy, busy + s["idle"]),
        "calls_per_hour": _ratio(handled * 3600.0, s["logged_in"]),
        "avg_talk_seconds": _ratio(s["talk"], handled),
        "avg_hold_seconds": _ratio(s["hold"], handled),
        "avg_acw_seconds": _ratio(s["acw"], handled),
        "aht_seconds": _ratio(busy + s["acw"], handled),
        "transferred_blind": int(s["transferred_blind"]),
        "transferred_warm": int(s["transferred_warm"]),
        "blind_transfer_rate": _ratio(s["transferred_blind"], handled),
        "warm_transfer_rate": _ratio(s["transferred_warm"], handled),
        "resolved_first_call": int(s["resolved_first_call"]),
        "first_call_resolution": _ratio(s["resolved_first_call"], handled),
    }


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def empty_figures(dimension: Dimension) -> Figures:
    """The figures of a row where nothing happened (every name a row of ``dimension`` has)."""
    if dimension is Dimension.QUEUES:
        return queue_figures(_Tally(_QUEUE_SUMS))
    return agent_figures(_Tally(_AGENT_SUMS))
