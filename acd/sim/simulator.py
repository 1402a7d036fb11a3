"""A discrete-event simulator: the real engine, a virtual clock, and random callers and agents.

Theory of operation. The simulator plays the outside world of the engine
(ARCHITECTURE.md: everything but ``acd/`` is an adapter). One heap holds what
callers and agents will do next (an arrival, an agent answering, a hang-up, a
caller running out of patience, a shift starting or ending, a wrap-up being
finished); the engine keeps its own timers and says when it must next be
woken. The loop always runs whichever comes first, the engine on a tie (so
a ring timeout due at the very moment an agent answers wins, as it would for
a punctual runtime), and the clock jumps from one moment to the next.

Every step's events go to the KPI fold and update the simulator's view of
each call and agent; its actions are obeyed (ring → maybe answer later,
connect → talk then hang up, announcement → maybe take the callback). What
the heap holds can go stale (the caller whose patience runs out was answered
a minute ago): each entry is checked against the state the events reported
before it becomes a command, so the engine never sees a command that does
not fit, and a ``CommandRejected`` is a real bug that propagates.

All randomness comes from one ``random.Random(seed)``, drawn in a fixed order:
the same scenario and seed give the same report, to the last digit.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from itertools import count
from types import MappingProxyType
from typing import TYPE_CHECKING

from acd.actions import ConnectCall, OfferCall, PlayAnnouncement, RejectCall, TransferToSite
from acd.commands import (
    AgentConfigured,
    AgentHungUp,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentWentReady,
    CallArrived,
    CallerHungUp,
    CallHeld,
    CallRetrieved,
    CallSelfServed,
    Command,
    OfferAccepted,
    QueueConfigured,
    WrapUpFinished,
)
from acd.engine import Engine, Step
from acd.errors import CommandRejected
from acd.estimates import AsteriskEstimate
from acd.events import AgentStateChanged, CallStateChanged, Event
from acd.ids import AgentId, CallId, CustomerId, QueueId, ReservationId
from acd.kpis import KpiFold, KpiTotals
from acd.sim.report import EwtError, SimulationReport
from acd.states import AgentState, AgentStatus, CallState, ReservationState

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from acd.sim.scenario import AgentGroup, Scenario, TrafficStream

__all__ = ["EwtError", "SimulationReport", "simulate"]

# A run that outlives its last arrival by this much stops, whatever is left:
# a guard against scenarios where something can happen forever (an agent who
# never answers being offered a caller who never hangs up).
_MAX_OVERTIME_SECONDS = 86_400.0

# What callers and agents will do: (time, order, what, whose, detail). ``what`` is
# one of the _Run methods below that take (str, str); ``order`` breaks ties in
# the order things were planned, so no two entries ever compare further.
_Plan = tuple[float, int, Callable[[str, str], None], str, str]

_WAITING = frozenset({CallState.QUEUED, CallState.OFFERED})
_TALKING = frozenset({CallState.CONNECTED, CallState.HELD})


def simulate(
    scenario: Scenario, seed: int, *, on_events: Callable[[Sequence[Event]], None] | None = None
) -> SimulationReport:
    """Run ``scenario`` with the real engine and report its KPIs and wait-estimate errors.

    ``on_events`` hears every step's events, in order (to keep them, for example).
    """
    return _Run(scenario, seed, on_events).run()


class _Call:
    """What the simulator knows of one call: its caller's fate and what the events said."""

    __slots__ = (
        "agent",
        "announced",
        "callback",
        "hold",
        "patience",
        "queue",
        "queued_at",
        "state",
        "stream",
        "talk",
        "wrap_up",
    )

    def __init__(self, stream: TrafficStream, queue: QueueId) -> None:
        self.stream = stream
        self.queue = queue
        self.state: CallState | None = None
        self.queued_at: float | None = None  # first QUEUED, kept across overflows
        self.agent: AgentId | None = None
        self.talk = 0.0
        self.hold: float | None = None
        self.wrap_up: float | None = None
        self.patience: float | None = None
        self.callback: bool | None = None  # takes a callback; None once asked
        # (announced at, our estimate, the baseline's), scored once the call is answered.
        self.announced: list[tuple[float, float, float]] | None = None


class _Agent:
    """An agent as the events describe them, plus their habits."""

    __slots__ = ("group", "shift_over", "state", "status", "wrap_up_call")

    def __init__(self, group: AgentGroup) -> None:
        self.group = group
        self.status = AgentStatus.LOGGED_OUT
        self.state = AgentState.IDLE
        self.wrap_up_call: CallId | None = None
        self.shift_over = False


class _EwtTally:
    """Sums of absolute and signed errors of both estimators."""

    __slots__ = ("acd", "acd_signed", "asterisk", "asterisk_signed", "n")

    def __init__(self) -> None:
        self.n = 0
        self.acd = self.asterisk = self.acd_signed = self.asterisk_signed = 0.0

    def add(self, ours: float, baseline: float, actual: float) -> None:
        self.n += 1
        self.acd += abs(ours - actual)
        self.asterisk += abs(baseline - actual)
        self.acd_signed += ours - actual
        self.asterisk_signed += baseline - actual

    def error(self) -> EwtError:
        n = self.n
        return EwtError(
            announcements=n,
            acd_mae_seconds=self.acd / n if n else None,
            asterisk_mae_seconds=self.asterisk / n if n else None,
            acd_bias_seconds=self.acd_signed / n if n else None,
            asterisk_bias_seconds=self.asterisk_signed / n if n else None,
        )


class _Run:
    """One simulation: the engine, the heap, and what the events have told so far."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        on_events: Callable[[Sequence[Event]], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.on_events = on_events
        self.seed = seed
        self.rng = random.Random(seed)
        self.engine = Engine()
        self.fold = KpiFold({q.id: q.sl_seconds for q in scenario.queues})
        self.now = 0.0
        self.heap: list[_Plan] = []
        self.order = count()
        self.streams = {stream.name: stream for stream in scenario.traffic}
        self.calls: dict[CallId, _Call] = {}
        self.agents: dict[AgentId, _Agent] = {}
        self.ringing: dict[ReservationId, CallId] = {}  # pending offers
        self.asterisk = {q.id: AsteriskEstimate() for q in scenario.queues}
        self.ewt = _EwtTally()
        self.ewt_per_queue = {q.id: _EwtTally() for q in scenario.queues}
        self.generated = 0
        self.live = 0
        self.wrapping = 0  # agents in WRAP_UP
        self.streams_left = 0
        self.events = 0
        self.announcements = 0
        self.without_estimate = 0  # announcements that said "no estimate yet"
        self.callbacks_offered = 0
        self.callbacks_taken = 0
        self.sent_away: Counter[str] = Counter()  # TransferToSite and RejectCall, by reason
        # How long a quiet engine may still change something on its own:
        # a relaxation step, an overflow limit, a wrap-up or a ring ending.
        self.quiet_margin = 1.0 + max(
            (
                max(
                    [q.affinity_window_seconds, q.wrap_up_seconds, q.ring_timeout_seconds]
                    + [r.after_seconds for r in q.relaxation]
                    + [r.seconds for r in q.overflow]
                )
                + (q.announce_every_seconds or 30.0)
                for q in scenario.queues
            ),
            default=0.0,
        )

    # == the loop ==================================================================

    def run(self) -> SimulationReport:
        self._set_up()
        heap = self.heap
        engine = self.engine
        quiet_until: float | None = None
        give_up = self.scenario.horizon_seconds + _MAX_OVERTIME_SECONDS
        while not (self.streams_left == 0 and self.live == 0 and self.wrapping == 0):
            deadline = engine.next_deadline()
            if heap and (deadline is None or heap[0][0] < deadline):
                if heap[0][0] > give_up:
                    break
                quiet_until = None
                at, _, what, whose, detail = heapq.heappop(heap)
                self.now = at
                what(whose, detail)
                continue
            if deadline is None:
                break  # nothing can happen any more: what is left is unfinished
            if not heap:
                # Only the engine's own timers are left. Let them run while they
                # may still change something; after that they would only repeat
                # announcements to callers nobody can serve.
                if quiet_until is None:
                    quiet_until = max(self.now, deadline) + self.quiet_margin
                if deadline > quiet_until:
                    break
            if deadline > give_up:
                break
            self.now = max(self.now, deadline)
            self._apply(engine.advance(self.now))
        return self._report()

    def _set_up(self) -> None:
        scenario = self.scenario
        for queue in scenario.queues:
            self._send(QueueConfigured(config=queue))
        for group in scenario.agents:
            for config in group.configs():
                self.agents[config.id] = _Agent(group)
                self._send(AgentConfigured(config=config))
                self._plan(group.shift_start_hours * 3600.0, self._start_shift, config.id)
                if group.shift_end_hours is not None:
                    self._plan(group.shift_end_hours * 3600.0, self._end_shift, config.id)
        for stream in scenario.traffic:
            first = self._next_arrival(stream, 0.0)
            if first is not None:
                self.streams_left += 1
                self._plan(first, self._arrive, stream.name)

    def _plan(
        self, at: float, what: Callable[[str, str], None], whose: str, detail: str = ""
    ) -> None:
        heapq.heappush(self.heap, (at, next(self.order), what, whose, detail))

    def _send(self, command: Command) -> None:
        try:
            step = self.engine.handle(command, self.now)
        except CommandRejected as exc:
            exc.add_note(f"simulator sent {command!r} at t={self.now}")
            raise
        self._apply(step)

    # == what callers and agents do ====================================================

    def _answer(self, reservation_id: str, agent_id: str) -> None:
        call_id = self.ringing.get(ReservationId(reservation_id))
        if call_id is not None:  # else the offer timed out or the caller left meanwhile
            self._send(OfferAccepted(agent_id=AgentId(agent_id), call_id=call_id))

    def _waiting(self, call_id: str) -> bool:
        call = self.calls.get(CallId(call_id))
        return call is not None and call.state in _WAITING

    def _run_out_of_patience(self, call_id: str, _: str) -> None:
        if self._waiting(call_id):
            self._send(CallerHungUp(call_id=CallId(call_id)))

    def _take_callback(self, call_id: str, _: str) -> None:
        if self._waiting(call_id):
            self.callbacks_taken += 1
            self._send(CallSelfServed(call_id=CallId(call_id)))

    def _hold(self, call_id: str, _: str) -> None:
        call = self.calls.get(CallId(call_id))
        if call is not None and call.state is CallState.CONNECTED:
            self._send(CallHeld(call_id=CallId(call_id)))

    def _retrieve(self, call_id: str, _: str) -> None:
        call = self.calls.get(CallId(call_id))
        if call is not None and call.state is CallState.HELD:
            self._send(CallRetrieved(call_id=CallId(call_id)))

    def _hang_up(self, call_id: str, _: str) -> None:
        call = self.calls.get(CallId(call_id))
        if call is None or call.state not in _TALKING:
            return
        self._send(AgentHungUp(call_id=CallId(call_id)))
        if call.wrap_up is not None and call.agent is not None:
            self._plan(self.now + call.wrap_up, self._finish_wrap_up, call.agent, call_id)

    def _finish_wrap_up(self, agent_id: str, call_id: str) -> None:
        agent = self.agents[AgentId(agent_id)]
        # Not if the queue's wrap-up limit ended it first (or there was none).
        if agent.state is AgentState.WRAP_UP and agent.wrap_up_call == call_id:
            self._send(WrapUpFinished(agent_id=AgentId(agent_id)))

    def _start_shift(self, agent_id: str, _: str) -> None:
        agent = self.agents[AgentId(agent_id)]
        if agent.status is AgentStatus.LOGGED_OUT and not agent.shift_over:
            self._send(AgentLoggedIn(agent_id=AgentId(agent_id)))
            self._send(AgentWentReady(agent_id=AgentId(agent_id)))  # login leaves them not ready

    def _end_shift(self, agent_id: str, _: str) -> None:
        agent = self.agents[AgentId(agent_id)]
        agent.shift_over = True
        if agent.status is not AgentStatus.LOGGED_OUT:
            self._send(AgentLoggedOut(agent_id=AgentId(agent_id)))  # after the call in hand

    def _get_ready_again(self, agent_id: str, _: str) -> None:
        agent = self.agents[AgentId(agent_id)]
        if agent.status is AgentStatus.NOT_READY and not agent.shift_over:
            self._send(AgentWentReady(agent_id=AgentId(agent_id)))

    def _arrive(self, stream_name: str, _: str) -> None:
        scenario = self.scenario
        stream = self.streams[stream_name]
        rng = self.rng
        self.generated += 1
        call_id = CallId(f"c{self.generated}")
        call = _Call(stream, stream.queue)
        # Every draw happens here, in a fixed order, whatever becomes of the call.
        call.talk = stream.talk.sample(rng)
        if stream.hold is not None and rng.random() < stream.hold.share:
            call.hold = stream.hold.duration.sample(rng)
        if stream.wrap_up is not None:
            call.wrap_up = stream.wrap_up.sample(rng)
        if stream.patience is not None:
            call.patience = stream.patience.sample(rng)
        customer = None
        if stream.known_customer_share and rng.random() < stream.known_customer_share:
            customer = CustomerId(f"{stream.name}:{rng.randrange(stream.customer_population)}")
        if stream.callback_accept_share:
            call.callback = rng.random() < stream.callback_accept_share
        self.calls[call_id] = call
        self.live += 1
        self._send(
            CallArrived(
                call_id=call_id,
                queue_id=stream.queue,
                language=stream.language,
                skills=stream.skills,
                priority=stream.priority,
                customer_id=customer,
            )
        )
        following = None
        if scenario.max_calls is None or self.generated < scenario.max_calls:
            following = self._next_arrival(stream, self.now)
        if following is None:
            self.streams_left -= 1
            if scenario.max_calls is not None and self.generated >= scenario.max_calls:
                self._stop_arrivals()
        else:
            self._plan(following, self._arrive, stream_name)

    def _stop_arrivals(self) -> None:
        self.heap[:] = [e for e in self.heap if e[2] != self._arrive]  # the loop holds this list
        heapq.heapify(self.heap)
        self.streams_left = 0

    def _next_arrival(self, stream: TrafficStream, after: float) -> float | None:
        """The next arrival of a Poisson process whose rate is constant within each interval.

        Exponential gaps are memoryless, so a gap that overruns its interval
        is simply drawn again from the interval's end at the next rate.
        """
        length = self.scenario.interval_seconds
        rates = stream.calls_per_interval
        k = int(after // length)
        start = after
        while k < len(rates):
            end = (k + 1) * length
            if rates[k] > 0:
                at = start + self.rng.expovariate(rates[k] / length)
                if at < end:
                    return at
            k += 1
            start = end
        return None

    # == what the engine says ================================================================

    def _apply(self, step: Step) -> None:
        fold_add = self.fold.add
        self.events += len(step.events)
        if self.on_events is not None:
            self.on_events(step.events)
        for event in step.events:
            fold_add(event)
            if isinstance(event, CallStateChanged):
                self._call_changed(event)
            elif isinstance(event, AgentStateChanged):
                self._agent_changed(event)
            elif event.to_state is ReservationState.PENDING:
                self.ringing[event.reservation_id] = event.call_id
            else:
                self.ringing.pop(event.reservation_id, None)
        for action in step.actions:
            if isinstance(action, OfferCall):
                self._ring(action)
            elif isinstance(action, ConnectCall):
                self._connect(action)
            elif isinstance(action, PlayAnnouncement):
                self._announce(action)
            elif isinstance(action, TransferToSite):
                # The call's ENDED event already came; the reason says which rule.
                self.sent_away[f"overflowed:{action.reason}"] += 1
            elif isinstance(action, RejectCall):
                self.sent_away[f"blocked:{action.reason}"] += 1
            # RetractOffer: the reservation's event already cancelled the answer.

    def _call_changed(self, event: CallStateChanged) -> None:
        call = self.calls[event.call_id]
        call.state = to_state = event.to_state
        call.queue = event.queue_id
        if to_state is CallState.QUEUED:
            if call.queued_at is None:
                call.queued_at = event.at
                if call.patience is not None:
                    self._plan(event.at + call.patience, self._run_out_of_patience, event.call_id)
        elif to_state is CallState.CONNECTED:
            call.agent = event.agent_id
            self._answered(call, event.at)
        elif to_state is CallState.ENDED:
            del self.calls[event.call_id]
            self.live -= 1

    def _answered(self, call: _Call, at: float) -> None:
        waited = at - call.queued_at if call.queued_at is not None else 0.0
        self.asterisk[call.queue].record_answered(waited)
        if call.announced:
            per_queue = self.ewt_per_queue[call.queue]
            for announced_at, ours, baseline in call.announced:
                actual = at - announced_at  # the wait the caller really had left
                self.ewt.add(ours, baseline, actual)
                per_queue.add(ours, baseline, actual)
            call.announced = None

    def _agent_changed(self, event: AgentStateChanged) -> None:
        agent = self.agents[event.agent_id]
        if event.to_state is AgentState.WRAP_UP:
            agent.wrap_up_call = event.call_id
            if agent.state is not AgentState.WRAP_UP:
                self.wrapping += 1
        elif agent.state is AgentState.WRAP_UP:
            self.wrapping -= 1
        if event.from_status is AgentStatus.READY and event.to_status is AgentStatus.NOT_READY:
            # The simulated agents never ask for not ready: the engine set them
            # (missed offers). They notice, and make themselves ready again.
            self._plan(
                event.at + agent.group.ready_again_after_seconds,
                self._get_ready_again,
                event.agent_id,
            )
        agent.status = event.to_status
        agent.state = event.to_state

    def _ring(self, offer: OfferCall) -> None:
        group = self.agents[offer.agent_id].group
        rng = self.rng
        if group.miss_probability and rng.random() < group.miss_probability:
            return  # lets it ring out: the engine times the offer out
        delay = group.answer_delay.sample(rng)
        self._plan(self.now + delay, self._answer, offer.reservation_id, offer.agent_id)

    def _connect(self, connect: ConnectCall) -> None:
        call = self.calls[connect.call_id]
        now = self.now
        if call.hold is None:
            self._plan(now + call.talk, self._hang_up, connect.call_id)
            return
        middle = now + call.talk / 2.0  # one hold, halfway through the conversation
        self._plan(middle, self._hold, connect.call_id)
        self._plan(middle + call.hold, self._retrieve, connect.call_id)
        self._plan(now + call.talk + call.hold, self._hang_up, connect.call_id)

    def _announce(self, announcement: PlayAnnouncement) -> None:
        self.announcements += 1
        self.without_estimate += announcement.ewt_seconds is None
        call = self.calls.get(announcement.call_id)
        if call is None:
            return
        if announcement.ewt_seconds is not None and call.queued_at is not None:
            waited = self.now - call.queued_at
            baseline = self.asterisk[call.queue].estimate(waited)
            if call.announced is None:
                call.announced = []
            call.announced.append((self.now, announcement.ewt_seconds, baseline))
        if announcement.offer_callback:
            self.callbacks_offered += 1
            if call.callback:
                self._plan(self.now, self._take_callback, announcement.call_id)
            call.callback = None  # a caller decides once

    # == the report ===========================================================================

    def _report(self) -> SimulationReport:
        totals: KpiTotals = self.fold.totals(until=self.now)
        per_queue: Mapping[QueueId, EwtError] = MappingProxyType(
            {q: t.error() for q, t in sorted(self.ewt_per_queue.items())}
        )
        return SimulationReport(
            scenario=self.scenario.name,
            seed=self.seed,
            calls=self.generated,
            unfinished=self.live,
            simulated_seconds=self.now,
            events=self.events,
            kpis=totals,
            ewt=self.ewt.error(),
            ewt_per_queue=per_queue,
            announcements=self.announcements,
            without_estimate=self.without_estimate,
            callbacks_offered=self.callbacks_offered,
            callbacks_taken=self.callbacks_taken,
            sent_away=MappingProxyType(dict(sorted(self.sent_away.items()))),
        )
