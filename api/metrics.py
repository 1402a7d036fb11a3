"""Prometheus metrics: every transition counted, the times of a call measured, live gauges.

Counters and histograms are fed from the engine's steps (``accept``), at once
and in order, so they never wait for the database. Gauges are read from the
engine when Prometheus scrapes, on the event loop, between two commands.
Labels are bounded: queue ids (configuration), states and outcomes (enums);
never a caller's number, a call id or an agent id.

Buckets sit on the usual service-level thresholds (5, 10, 20, 30, 60, 120 and
300 s) so that "answered within X s" can be read straight off a histogram.

The KPIs of docs/KPIS.md (service level, ASA, abandon rate) are not computed
here a second time: ``KpiCounters`` runs the core's own ``KpiFold`` over every
event since the server started and exports its running sums per queue as
counters (calls offered, answered, answered within the queue's X s, abandoned;
the queue time of answered calls). Every sum only grows, so Prometheus can
take any window: the service level of the last half hour is
``increase(acd_calls_answered_within_sl_total[30m]) /
increase(acd_calls_offered_total[30m])``, KPIS.md's formula over the calls
that ended in that half hour. A restart starts them at zero, which
``increase`` and ``rate`` treat as a counter reset.

Media timing (with SIP on) is read from the pacer's meters when scraped, not
observed packet by packet through prometheus_client (50 packets a second a
leg): ``acd_rtp_paced_lateness_seconds``, how long after its due time each
frame of our own (prompts, music on hold, silence) went out, and
``acd_rtp_relayed_lateness_seconds``, how late each relayed (bridged)
packet reached us against its RTP timestamp (``ivr.media.bridge``). A frame
or packet 20 ms or more late (one packet time) is late; the meters count in
1 ms bins, so a bucket ``le`` holds those under its bound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from acd.engine import Engine, Step
from acd.events import AgentStateChanged, CallStateChanged, ReservationStateChanged
from acd.ids import AgentId, CallId, QueueId, ReservationId
from acd.kpis import KpiFold
from acd.states import AgentState, AgentStatus, CallState, Outcome
from cti.context import CallOpened
from ivr.media.pacer import LatenessStatistics, Pacer

SL_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
RTP_LATENESS_BUCKETS_MS = (1, 2, 5, 10, 20, 40, 60, 100)  # whole ms: the meters' bins
AGENT_STATES = (
    "logged_out",
    "not_ready",
    "idle",
    "reserved",
    "talking",
    "held",
    "wrap_up",
    "not_responding",
)


@dataclass(slots=True)
class _CallTimes:
    queue_id: QueueId
    queued_at: float | None = None
    since: float = 0.0  # when the current state began
    state: CallState = CallState.ARRIVED
    talk: float = 0.0
    hold: float = 0.0
    answered: bool = False


class Metrics:
    """The server's Prometheus registry and the fold that feeds it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.transitions = Counter(
            "acd_transitions",
            "State transitions of calls, agents and reservations",
            ["entity", "from_state", "to_state"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "acd_queue_wait_seconds",
            "Time from entering a queue to being answered or leaving it otherwise",
            ["queue", "outcome"],
            buckets=SL_BUCKETS,
            registry=r,
        )
        self.ring = Histogram(
            "acd_ring_seconds",
            "Time an offer rang before it was answered, rejected, timed out or cancelled",
            ["queue", "outcome"],
            buckets=SL_BUCKETS,
            registry=r,
        )
        self.talk = Histogram(
            "acd_talk_seconds",
            "Connected time of one call leg, hold excluded",
            ["queue"],
            buckets=SL_BUCKETS,
            registry=r,
        )
        self.hold = Histogram(
            "acd_hold_seconds",
            "Hold time of one call leg",
            ["queue"],
            buckets=SL_BUCKETS,
            registry=r,
        )
        self.wrap_up = Histogram(
            "acd_wrap_up_seconds",
            "After-call work of one call",
            ["queue"],
            buckets=SL_BUCKETS,
            registry=r,
        )
        self.reservations = Counter(
            "acd_reservations",
            "Offers by how they ended",
            ["outcome"],
            registry=r,
        )
        self.calls_ended = Counter(
            "acd_calls_ended",
            "Calls that left the centre, by queue and outcome",
            ["queue", "outcome"],
            registry=r,
        )
        self.offer_latency = Histogram(
            "acd_offer_publish_seconds",
            "Time from a call's arrival at the server to its offer being durable and sent",
            buckets=(
                0.001,
                0.0025,
                0.005,
                0.01,
                0.015,
                0.02,
                0.025,
                0.03,
                0.04,
                0.05,
                0.075,
                0.1,
                0.25,
                0.5,
                1.0,
            ),
            registry=r,
        )
        self.loop_lag = Histogram(
            "acd_event_loop_lag_seconds",
            "How much later than due the event loop woke a 20 ms sleep (api.loop_lag)",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.1, 0.25, 1.0),
            registry=r,
        )
        # label values -> child, looked up here first: prometheus_client's labels()
        # validates and locks on every call, and every event makes a few of them
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        self._calls: dict[CallId, _CallTimes] = {}
        self._rings: dict[ReservationId, tuple[float, QueueId]] = {}
        self._wrap: dict[AgentId, tuple[float, QueueId]] = {}
        self._leg_ended_in: dict[CallId, QueueId] = {}  # within one step: for the agent's wrap-up

    def _child(self, metric: Counter | Histogram, *values: str) -> Any:
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # -- fed by the runtime --------------------------------------------------------------

    def accept(self, step: Step, notes: Sequence[CallOpened]) -> None:
        self._leg_ended_in.clear()
        for event in step.events:
            if isinstance(event, CallStateChanged):
                self._child(
                    self.transitions, "call", _state(event.from_state), event.to_state.value
                ).inc()
                self._call_changed(event)
            elif isinstance(event, AgentStateChanged):
                self._child(
                    self.transitions,
                    "agent",
                    _agent_label(event.from_status, event.from_state),
                    _agent_label(event.to_status, event.to_state),
                ).inc()
                self._agent_changed(event)
            else:
                self._child(
                    self.transitions, "reservation", _state(event.from_state), event.to_state.value
                ).inc()
                self._reservation_changed(event)

    def _call_changed(self, event: CallStateChanged) -> None:
        at = event.at
        times = self._calls.get(event.call_id)
        if times is None:
            times = self._calls[event.call_id] = _CallTimes(event.queue_id, since=at)
        old = times.state
        if old is CallState.CONNECTED:
            times.talk += at - times.since
        elif old is CallState.HELD:
            times.hold += at - times.since
        new = event.to_state
        leg_over = new is CallState.ENDED or (
            new is CallState.QUEUED and old in (CallState.CONNECTED, CallState.HELD)
        )
        if new in _QUEUED and times.queued_at is None:
            times.queued_at = at
        if (new is CallState.CONNECTED and old is CallState.OFFERED) or new is CallState.DIALING:
            # (a callback task's wait ends when an agent takes it, as in acd.kpis)
            if times.queued_at is not None:
                self._child(self.queue_wait, times.queue_id, "answered").observe(
                    at - times.queued_at
                )
            times.queued_at = None
            times.answered = True
        if leg_over:
            self._leg_ended_in[event.call_id] = times.queue_id
            if times.answered and event.outcome is not Outcome.CALLBACK_FAILED:
                self._child(self.talk, times.queue_id).observe(times.talk)
                self._child(self.hold, times.queue_id).observe(times.hold)
            elif times.queued_at is not None and event.outcome is not None:
                self._child(self.queue_wait, times.queue_id, event.outcome.value).observe(
                    at - times.queued_at
                )
            times.talk = times.hold = 0.0
            times.answered = False
            times.queued_at = at if new is CallState.QUEUED else None
        if new is CallState.ENDED:
            outcome = event.outcome.value if event.outcome is not None else "unknown"
            self._child(self.calls_ended, event.queue_id, outcome).inc()
            del self._calls[event.call_id]
            return
        times.queue_id = event.queue_id
        times.state = new
        times.since = at

    def _reservation_changed(self, event: ReservationStateChanged) -> None:
        if event.from_state is None:
            call = self._calls.get(event.call_id)
            queue = call.queue_id if call is not None else QueueId("")
            self._rings[event.reservation_id] = (event.at, queue)
            return
        started = self._rings.pop(event.reservation_id, None)
        outcome = event.to_state.value
        self._child(self.reservations, outcome).inc()
        if started is not None:
            self._child(self.ring, started[1], outcome).observe(event.at - started[0])

    def _agent_changed(self, event: AgentStateChanged) -> None:
        if event.to_state is AgentState.WRAP_UP and event.from_state is not AgentState.WRAP_UP:
            self._wrap[event.agent_id] = (event.at, self._queue_of_ended(event))
        elif event.from_state is AgentState.WRAP_UP and event.to_state is not AgentState.WRAP_UP:
            started = self._wrap.pop(event.agent_id, None)
            if started is not None:
                self._child(self.wrap_up, started[1]).observe(event.at - started[0])

    def _queue_of_ended(self, event: AgentStateChanged) -> QueueId:
        """The queue of the leg the agent just finished (the call may have moved on or ended)."""
        if event.call_id is None:
            return QueueId("")
        return self._leg_ended_in.get(event.call_id, QueueId(""))

    # -- read when scraped ---------------------------------------------------------------

    def watch(self, gauges: Callable[[], Iterable[Metric]]) -> None:
        """Add live gauges (or histograms kept elsewhere), computed at each scrape."""
        self.registry.register(_Gauges(gauges))


class KpiCounters(Collector):
    """KPIS.md's counts and sums per queue since the start, from the core's KPI fold.

    A runtime sink (``accept``) and a Prometheus collector (``collect``, at each
    scrape). A call counts when it ends, in the queue it ended in, as in
    ``acd.kpis``; ``sl_seconds`` gives a queue's threshold X at that moment.
    ``targets`` gives every configured queue's X and target share, exported as
    gauges so a dashboard can draw the target beside the figure.
    """

    def __init__(
        self,
        sl_seconds: Callable[[QueueId], float | None],
        targets: Callable[[], Iterable[tuple[QueueId, float, float]]],
    ) -> None:
        self._fold = KpiFold(sl_seconds)
        self._targets = targets

    def accept(self, step: Step, notes: Sequence[CallOpened]) -> None:
        add = self._fold.add
        for event in step.events:
            add(event)

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        offered = CounterMetricFamily(
            "acd_calls_offered",
            "Calls offered (KPIS.md: every outcome but interrupted), counted when they end",
            labels=["queue"],
        )
        answered = CounterMetricFamily(
            "acd_calls_answered", "Calls answered, counted when they end", labels=["queue"]
        )
        within = CounterMetricFamily(
            "acd_calls_answered_within_sl",
            "Calls answered within the queue's service-level threshold X of entering it",
            labels=["queue"],
        )
        abandoned = CounterMetricFamily(
            "acd_calls_abandoned",
            "Calls abandoned in queue, short abandons excluded",
            labels=["queue"],
        )
        wait = CounterMetricFamily(
            "acd_answer_wait_seconds",
            "Queue time of the answered calls, summed (ASA's numerator)",
            labels=["queue"],
        )
        for queue_id, kpis in self._fold.totals().per_queue.items():
            label = [str(queue_id)]
            offered.add_metric(label, kpis.offered)
            answered.add_metric(label, kpis.answered)
            within.add_metric(label, kpis.answered_within_sl)
            abandoned.add_metric(label, kpis.abandoned)
            wait.add_metric(label, kpis.answer_wait_seconds)
        threshold = GaugeMetricFamily(
            "acd_service_level_threshold_seconds",
            "The queue's service-level threshold X (answered within X s)",
            labels=["queue"],
        )
        target = GaugeMetricFamily(
            "acd_service_level_target",
            "The queue's service-level target, a share 0-1",
            labels=["queue"],
        )
        for queue_id, seconds, share in sorted(self._targets()):
            threshold.add_metric([str(queue_id)], seconds)
            target.add_metric([str(queue_id)], share)
        return [offered, answered, within, abandoned, wait, threshold, target]

    def describe(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        return []


class _Gauges(Collector):
    def __init__(self, gauges: Callable[[], Iterable[Metric]]) -> None:
        self._gauges = gauges

    def collect(self) -> Iterable[Metric]:
        return self._gauges()

    def describe(self) -> Iterable[Metric]:
        return []


_QUEUED = frozenset({CallState.QUEUED, CallState.CALLBACK_QUEUED})


def media_timing(pacer: Pacer) -> Callable[[], Iterable[Metric]]:
    """The media's lateness histograms, read from ``pacer``'s meters at each scrape."""

    def collect() -> Iterable[Metric]:
        paced = pacer.statistics()
        return [
            _lateness(
                "acd_rtp_paced_lateness_seconds",
                "Lateness of each RTP frame we paced (prompts, music on hold) against its due time",
                LatenessStatistics(
                    frames=paced.frames,
                    late_frames=paced.late_frames,
                    total_lateness=paced.mean_lateness * paced.frames,
                    max_lateness=paced.max_lateness,
                    histogram=paced.histogram,
                ),
            ),
            _lateness(
                "acd_rtp_relayed_lateness_seconds",
                "Lateness of each relayed RTP packet's arrival against its timestamp",
                pacer.relayed_statistics(),
            ),
        ]

    return collect


def _lateness(name: str, documentation: str, stats: LatenessStatistics) -> HistogramMetricFamily:
    buckets: list[tuple[str, float]] = []
    for bound in RTP_LATENESS_BUCKETS_MS:
        buckets.append((f"{bound / 1000:g}", float(sum(stats.histogram[:bound]))))
    buckets.append(("+Inf", float(stats.frames)))
    return HistogramMetricFamily(
        name, documentation, buckets=buckets, sum_value=stats.total_lateness
    )


def _state(state: CallState | AgentState | object | None) -> str:
    return "none" if state is None else str(getattr(state, "value", state))


def _agent_label(status: AgentStatus | None, state: AgentState | None) -> str:
    if status is None or state is None:
        return "none"
    return agent_state_label(status, state)


def agent_state_label(status: AgentStatus, state: AgentState) -> str:
    """One bounded label for an agent's presence: status while idle, else the system state."""
    if status is AgentStatus.LOGGED_OUT:
        return "logged_out"
    if state is AgentState.IDLE:
        return "idle" if status is AgentStatus.READY else "not_ready"
    return str(state.value)


def live_gauges(
    engine: Engine,
    agent_ids: Callable[[], Iterable[AgentId]],
    members: Callable[[], dict[QueueId, list[AgentId]]],
    ewt: Callable[[QueueId], float | None],
    connections: Callable[[], int],
    now: Callable[[], float],
) -> Callable[[], Iterable[GaugeMetricFamily]]:
    """The gauges Prometheus reads: queue sizes, oldest wait, EWT, agents, WebSockets.

    ``acd_agents`` counts an agent in every queue they serve; ``acd_centre_agents``
    counts each agent of the centre once, queues or not.
    """

    def collect() -> Iterable[GaugeMetricFamily]:
        waiting = GaugeMetricFamily("acd_calls_waiting", "Calls waiting in queue", labels=["queue"])
        oldest = GaugeMetricFamily(
            "acd_oldest_wait_seconds", "Wait of the oldest waiting call", labels=["queue"]
        )
        ewt_g = GaugeMetricFamily(
            "acd_ewt_seconds",
            "Estimated wait of the last caller in queue (absent: no estimate)",
            labels=["queue"],
        )
        agents = GaugeMetricFamily(
            "acd_agents", "Agents who serve a queue, by state", labels=["queue", "state"]
        )
        t = now()
        by_queue = members()
        for queue_id in sorted(engine.queue_ids()):
            stats = engine.queue_stats(queue_id)
            waiting.add_metric([queue_id], stats.waiting)
            age = 0.0 if stats.oldest_enqueued_at is None else t - stats.oldest_enqueued_at
            oldest.add_metric([queue_id], max(age, 0.0))
            estimate = ewt(queue_id)
            if estimate is not None:
                ewt_g.add_metric([queue_id], estimate)
            counts = dict.fromkeys(AGENT_STATES, 0)
            for agent_id in by_queue.get(queue_id, []):
                view = engine.agent(agent_id)
                if view is not None:
                    counts[agent_state_label(view.status, view.state)] += 1
            for state, n in counts.items():
                agents.add_metric([queue_id, state], n)
        centre = GaugeMetricFamily(
            "acd_centre_agents", "Agents of the centre by state, each once", labels=["state"]
        )
        everyone = dict.fromkeys(AGENT_STATES, 0)
        for agent_id in agent_ids():
            view = engine.agent(agent_id)
            if view is not None:
                everyone[agent_state_label(view.status, view.state)] += 1
        for state, n in everyone.items():
            centre.add_metric([state], n)
        ws = GaugeMetricFamily("acd_websocket_connections", "Connected CTI WebSockets")
        ws.add_metric([], connections())
        return [waiting, oldest, ewt_g, agents, centre, ws]

    return collect
