"""Routed calls per second through the engine's full call lifecycle.

What is measured: ``acd.engine.Engine.handle`` driven on a virtual clock
through CallArrived -> (OfferCall) -> OfferAccepted -> AgentHungUp ->
WrapUpFinished, in centres of 100, 1,000 and 10,000 agents, always with 50
skills, 5 languages and 100 queues (generated from ``--seed``; traffic skewed
over the queues unless ``--uniform``). A call counts as routed when its
lifecycle completes. The rate is completed lifecycles over the
``time.perf_counter`` time of the measured loop, which includes the driver's
own work (building the accept, hang-up and wrap-up commands, reading each
step's actions, its bookkeeping); arrivals are generated before timing. The
process time of the same loop is shown too, as it is less disturbed by other
processes on a shared machine. Plain CPython, the garbage collector enabled;
before each measured loop the set-up is collected and frozen (``gc.freeze()``),
as a long-running server does once its configuration is loaded, so that the
collector's full passes don't rescan thousands of agents and profiles that
live for the whole process. Calls, events and offers made in the loop are
collected as usual.

Load: each loop iteration advances the clock by ``180 s / agents`` (a call
talks about three minutes), lets one call arrive, hangs up the oldest talking
calls while too many calls are in progress, ends the oldest wrap-ups beyond a
pipeline of 5% of the agents (or older than 30 s: queues' wrap-up timers are
longer, so the driver always ends them), and accepts every offer the steps
produced (at once: no ring timer fires). Calls in progress (arrived, lifecycle
not complete) follow a sine between 90% and 102% of the agents (``--load``),
so both routing paths run: most calls are offered an idle eligible agent on
arrival, the others wait and are offered to an agent leaving wrap-up. (A
95%-105% swing leaves no idle agent for half the time, so about half the
calls wait; the table shows the share for each size.)

Each size ramps up, builds every requirement profile calls can use (a primer
of one call per profile, during the ramp) and runs untimed lifecycles; the
measured loop then starts where a load swing begins, and 30,000 lifecycles
are whole swings at every size. Afterwards the centre is drained and checked:
every call that arrived completed and every agent is ready and idle.

The naive router (``NaiveEngine``) is the same engine with its two routing
decisions made by full scans: a call scans every agent, a freed agent scans
every waiting call. It warms up with the indexed decisions (the same ones)
and is switched to scanning for one load swing. A cross-check first runs both
routers on one centre and requires the very same sequence of offers.

Run: ``.venv/bin/python bench/route.py [--json] [--quick] [--seed N] [--calls N]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import random
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from acd.actions import OfferCall
from acd.agents import Agent
from acd.calls import Call
from acd.commands import (
    AgentConfigured,
    AgentHungUp,
    AgentLoggedIn,
    AgentWentReady,
    CallArrived,
    Command,
    OfferAccepted,
    QueueConfigured,
    WrapUpFinished,
)
from acd.config import AffinityMode, AgentConfig, QueueConfig, Strategy
from acd.engine import Engine, Step
from acd.errors import CommandRejected
from acd.ids import AgentId, CallId, Language, QueueId, Skill
from acd.profiles import WaitEntry
from acd.states import AgentState, AgentStatus

SIZES = (100, 1_000, 10_000)
SKILLS = tuple(Skill(f"skill{i:02d}") for i in range(50))
LANGUAGES = tuple(Language(code) for code in ("en", "fr", "de", "es", "it"))
QUEUES = 100
QUEUES_PER_AGENT = 4
TALK_SECONDS = 180.0  # virtual seconds a call talks, about: sets the clock step
DEFAULT_LOAD = (0.90, 1.02)  # calls in progress swing between these shares of the agents
WRAP_SHARE = 0.05  # agents in wrap-up at a time, as a share of all agents
MAX_WRAP_UP_SECONDS = 30.0  # the driver ends older wrap-ups: before any queue's timer does
EXTRA_SKILL_SHARE = 0.2  # calls that require one more skill than their queue
PRIORITY_WEIGHTS = (70, 20, 10)  # priorities 0, 1, 2
TARGET_CPS = 10_000.0  # routed calls per second at 10,000 agents, at least
TARGET_COST_RATIO = 2.0  # µs per call at 10,000 agents over that at 100, at most
TARGET_SPEEDUP = 20.0  # over the naive router at 10,000 agents, at least


# == the centre ====================================================================


@dataclass(frozen=True)
class QueueSpec:
    config: QueueConfig
    traffic: float  # relative call volume
    extras: tuple[Skill, ...]  # skills its calls may add, that its agents tend to have


@dataclass(frozen=True)
class CentreSpec:
    queues: tuple[QueueSpec, ...]
    agents: tuple[AgentConfig, ...]
    # per queue: the (skill, level) a call may add, each met by a few of its agents
    call_extras: tuple[tuple[tuple[Skill, int], ...], ...]


def make_queues(rng: random.Random, skewed: bool) -> list[QueueSpec]:
    specs = []
    for i in range(QUEUES):
        required = rng.sample(SKILLS, rng.choice((1, 2)))
        extras = rng.sample([s for s in SKILLS if s not in required], 2)
        config = QueueConfig(
            id=QueueId(f"q{i:03d}"),
            skills={skill: rng.randint(1, 6) for skill in required},
            language=rng.choice(LANGUAGES),
            language_level=rng.randint(1, 4),
            weight=rng.randint(0, 3),
            strategy=rng.choice(list(Strategy)),
            wrap_up_seconds=float(rng.choice((60, 90, 120, 180))),
        )
        traffic = 1.0 / (i + 1) ** 0.8 if skewed else 1.0
        specs.append(QueueSpec(config, traffic, tuple(extras)))
    return specs


def pick_queues(rng: random.Random, index: int, queues: Sequence[QueueSpec]) -> list[QueueSpec]:
    """About four queues, one chosen round-robin (every queue is staffed), the rest by volume."""
    chosen = [queues[index % len(queues)]]
    wanted = rng.randint(QUEUES_PER_AGENT - 1, QUEUES_PER_AGENT + 1)
    weights = [q.traffic for q in queues]
    while len(chosen) < wanted:
        spec = rng.choices(queues, weights)[0]
        if spec not in chosen:
            chosen.append(spec)
    return chosen


def raise_level(levels: dict[Any, int], name: Any, level: int) -> None:
    levels[name] = max(level, levels.get(name, 0))


def make_agent(rng: random.Random, index: int, queues: Sequence[QueueSpec]) -> AgentConfig:
    """An agent eligible for their queues, with some of the queues' extras and a few others."""
    skills: dict[Skill, int] = {}
    languages: dict[Language, int] = {}
    chosen = pick_queues(rng, index, queues)
    for spec in chosen:
        config = spec.config
        for skill, level in config.skills.items():
            raise_level(skills, skill, rng.randint(level, 10))
        assert config.language is not None
        raise_level(languages, config.language, rng.randint(config.language_level, 10))
        for skill in spec.extras:
            if rng.random() < 0.6:
                raise_level(skills, skill, rng.randint(1, 10))
    for skill in rng.sample(SKILLS, rng.randint(1, 3)):
        raise_level(skills, skill, rng.randint(1, 10))
    if rng.random() < 0.3:
        raise_level(languages, rng.choice(LANGUAGES), rng.randint(1, 10))
    return AgentConfig(
        id=AgentId(f"a{index:05d}"),
        skills=skills,
        languages=languages,
        queues=frozenset(spec.config.id for spec in chosen),
    )


def call_extras(spec: QueueSpec, agents: Sequence[AgentConfig]) -> tuple[tuple[Skill, int], ...]:
    """The extra requirements a call of this queue may carry: ones a few members meet."""
    members = [a for a in agents if spec.config.id in a.queues]
    enough = min(3, len(members))
    return tuple(
        (skill, level)
        for skill in spec.extras
        for level in range(1, 6)
        if sum(1 for a in members if a.skills.get(skill, 0) >= level) >= enough
    )


def make_centre(agents: int, seed: int, skewed: bool) -> CentreSpec:
    rng = random.Random(seed * 1_000_003 + agents)
    queues = make_queues(rng, skewed)
    configs = [make_agent(rng, i, queues) for i in range(agents)]
    extras = tuple(call_extras(spec, configs) for spec in queues)
    return CentreSpec(tuple(queues), tuple(configs), extras)


def make_arrivals(centre: CentreSpec, seed: int, count: int) -> list[CallArrived]:
    """A primer, then ``count`` calls: a queue by volume, a priority, sometimes one more skill.

    The primer is one call for each requirement profile calls can have, so the
    engine builds its profiles (one scan of a queue's members each) during the
    ramp-up rather than in the measured loop.
    """
    rng = random.Random(seed * 7_919 + len(centre.agents))
    picks = [(i, extra) for i, extras in enumerate(centre.call_extras) for extra in (None, *extras)]
    weights = [spec.traffic for spec in centre.queues]
    for i in rng.choices(range(len(centre.queues)), weights, k=count):
        extras = centre.call_extras[i]
        extra = rng.choice(extras) if extras and rng.random() < EXTRA_SKILL_SHARE else None
        picks.append((i, extra))
    return [
        CallArrived(
            call_id=CallId(f"c{n}"),
            queue_id=centre.queues[i].config.id,
            skills={} if extra is None else dict([extra]),
            priority=rng.choices((0, 1, 2), PRIORITY_WEIGHTS)[0],
        )
        for n, (i, extra) in enumerate(picks)
    ]


def staff(engine: Engine, centre: CentreSpec) -> None:
    """Configure the queues and agents, and make every agent ready."""
    for spec in centre.queues:
        engine.handle(QueueConfigured(config=spec.config), 0.0)
    for config in centre.agents:
        engine.handle(AgentConfigured(config=config), 0.0)
        engine.handle(AgentLoggedIn(agent_id=config.id), 0.0)
        engine.handle(AgentWentReady(agent_id=config.id), 0.0)


# == the naive router ================================================================


class NaiveEngine(Engine):
    """The engine with both routing decisions made by full scans, once ``naive`` is set.

    Choosing an agent for a call scans every agent (available, a member of the
    call's queue, admitted by the call's profile, lowest ``Profile.rank``);
    choosing a call for a freed agent scans every waiting call (of a queue
    the agent serves, whose profile admits them, lowest wait entry). Ranks
    and wait entries end with unique orders, so the choices are the ones the
    indexed engine makes. Everything else is the engine's own code.

    The seams are ``Engine._route`` and ``Engine._serve_agent``, which mix the
    decision with what follows it; only their decision parts are replaced
    here (affinity, which the benchmark does not configure, is refused). A
    freed agent with no call to take is not pushed into the profiles' heaps:
    the scans do not use them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.naive = False

    def _route(self, call: Call, now: float, *, affinity: bool = False) -> None:
        if not self.naive:
            super()._route(call, now, affinity=affinity)
            return
        if affinity and call.queue.config.affinity is not AffinityMode.OFF:
            raise NotImplementedError("the naive router has no affinity path (unused here)")
        agent = self._scan_agents(call)
        if agent is not None:
            self._offer(call, agent, now)
        else:
            self._wait(call, now)

    def _scan_agents(self, call: Call) -> Agent | None:
        profile = call.profile
        assert profile is not None
        queue_id = call.queue.id
        best: Agent | None = None
        best_rank: tuple[float, ...] = ()
        for agent in self._agents.values():
            if agent.available and queue_id in agent.config.queues and profile.admits(agent):
                rank = profile.rank(agent)
                if best is None or rank < best_rank:
                    best, best_rank = agent, rank
        return best

    def _serve_agent(self, agent: Agent, now: float) -> None:
        if not self.naive or agent.affinity_waiting:
            super()._serve_agent(agent, now)
            return
        entry = self._scan_waiting(agent)
        if entry is None:
            return  # idle: found by the next call's scan, no index to update
        call = entry[4]
        assert call.profile is not None
        call.profile.remove_waiting(entry)
        call.entry = None
        self._offer(call, agent, now)

    def _scan_waiting(self, agent: Agent) -> WaitEntry | None:
        queues = agent.config.queues
        best: WaitEntry | None = None
        for entry in self._waiting_entries():
            call = entry[4]
            profile = call.profile
            assert profile is not None
            if call.queue.id in queues and profile.admits(agent) and (best is None or entry < best):
                best = entry
        return best

    def _waiting_entries(self) -> Iterator[WaitEntry]:
        """Every call waiting in a queue (calls waiting for one agent excepted)."""
        for queue in self._queues.values():
            for profile in queue.profiles.values():
                yield from profile.waiting


# == the driver ======================================================================


class Driver:
    """Plays callers and agents around one engine, on a virtual clock."""

    def __init__(
        self,
        engine: Engine,
        centre: CentreSpec,
        arrivals: list[CallArrived],
        load: tuple[float, float],
    ) -> None:
        self.engine = engine
        self.load_mid = (load[0] + load[1]) / 2
        self.load_swing = (load[1] - load[0]) / 2
        self.agents = len(centre.agents)
        self.arrivals = arrivals
        self.dt = TALK_SECONDS / self.agents
        self.wrap_pipeline = max(1, round(WRAP_SHARE * self.agents))
        self.period = max(200, self.agents // 2)  # iterations per load swing
        self.now = 0.0
        self.iteration = 0
        self.started = 0
        self.completed = 0
        self.events = 0
        self.offered_at_arrival = 0
        self.offered_later = 0
        self.wrap_up_timeouts = 0
        self.pending: list[OfferCall] = []
        self.talking: deque[tuple[CallId, AgentId]] = deque()
        self.wrapping: deque[tuple[AgentId, float]] = deque()  # (agent, since)
        self.offer_log: list[tuple[CallId, AgentId]] | None = None

    def do(self, command: Command) -> int:
        """Apply a command; keep the offers it produced; return how many."""
        return self.take(self.engine.handle(command, self.now))

    def take(self, step: Step) -> int:
        self.events += len(step.events)
        offers = 0
        for action in step.actions:
            if type(action) is OfferCall:
                self.pending.append(action)
                offers += 1
        return offers

    def target(self) -> float:
        """Calls not yet hung up (waiting, ringing, talking) the load aims at."""
        swing = self.load_swing * math.sin(2 * math.pi * self.iteration / self.period)
        return self.agents * (self.load_mid + swing) - self.wrap_pipeline

    def arrive(self) -> None:
        self.offered_at_arrival += self.do(self.arrivals[self.started])
        self.started += 1

    def hang_up_oldest(self) -> None:
        call_id, agent_id = self.talking.popleft()
        self.do(AgentHungUp(call_id=call_id))
        self.wrapping.append((agent_id, self.now))

    def finish_oldest_wrap_up(self) -> None:
        agent_id, _ = self.wrapping.popleft()
        try:
            self.offered_later += self.do(WrapUpFinished(agent_id=agent_id))
        except CommandRejected as rejected:  # the engine's wrap-up timer ended it first
            self.wrap_up_timeouts += 1
            self.offered_later += self.take(rejected.step)  # type: ignore[attr-defined]
        self.completed += 1

    def accept_offers(self) -> None:
        pending, self.pending = self.pending, []
        for offer in pending:
            self.do(OfferAccepted(agent_id=offer.agent_id, call_id=offer.call_id))
            self.talking.append((offer.call_id, offer.agent_id))
            if self.offer_log is not None:
                self.offer_log.append((offer.call_id, offer.agent_id))

    def step(self) -> None:
        """One iteration: time passes, a call arrives, the oldest work ends, offers are taken."""
        self.iteration += 1
        self.now += self.dt
        self.arrive()
        excess = self.started - self.completed - len(self.wrapping) - self.target()
        while excess > 0 and self.talking:
            self.hang_up_oldest()
            excess -= 1
        wrapping = self.wrapping
        while len(wrapping) > self.wrap_pipeline or (
            wrapping and wrapping[0][1] < self.now - MAX_WRAP_UP_SECONDS
        ):
            self.finish_oldest_wrap_up()
        self.accept_offers()

    def run_until(self, completed: int) -> None:
        while self.completed < completed:
            self.step()

    def align(self, ahead: int = 0) -> None:
        """Run to ``ahead`` iterations before a load swing begins (measure whole swings)."""
        while (self.iteration + ahead) % self.period:
            self.step()

    def run_iterations(self, iterations: int) -> None:
        for _ in range(iterations):
            self.step()

    def timed(self, lifecycles: int) -> Measurement:
        """Measure ``lifecycles`` more completed lifecycles."""
        start_completed, start_events = self.completed, self.events
        start_now, start_later = self.offered_at_arrival, self.offered_later
        gc.collect()
        gc.freeze()  # what a server does after start-up: see the module docstring
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        self.run_until(self.completed + lifecycles)
        seconds = time.perf_counter() - t0
        cpu_seconds = time.process_time() - cpu0
        done = self.completed - start_completed
        at_arrival = self.offered_at_arrival - start_now
        later = self.offered_later - start_later
        return Measurement(
            agents=self.agents,
            calls=done,
            seconds=seconds,
            cpu_seconds=cpu_seconds,
            events_per_call=(self.events - start_events) / done,
            waited_share=later / max(1, at_arrival + later),
        )

    def drain(self) -> None:
        """No more arrivals: end every call, then check the centre is back at rest."""
        while self.talking or self.wrapping or self.pending:
            self.now += self.dt
            while self.talking:
                self.hang_up_oldest()
            while self.wrapping:
                self.finish_oldest_wrap_up()
            self.accept_offers()
        self.verify()

    def verify(self) -> None:
        engine = self.engine
        left = list(engine.call_ids())
        if self.completed != self.started or left:
            raise AssertionError(
                f"{self.started} calls arrived, {self.completed} completed; "
                f"{len(left)} still in the centre, e.g. {left[:3]}"
            )
        for agent_id in engine.agent_ids():
            view = engine.agent(agent_id)
            assert view is not None
            if view.state is not AgentState.IDLE or view.status is not AgentStatus.READY:
                raise AssertionError(f"agent {agent_id} is {view.status.value}/{view.state.value}")
            if view.call_id is not None or view.reservation_id is not None:
                raise AssertionError(f"agent {agent_id} still holds a call or an offer")
        if self.wrap_up_timeouts:
            raise AssertionError(f"{self.wrap_up_timeouts} wrap-ups ended by the engine's timer")


@dataclass(frozen=True)
class Measurement:
    agents: int
    calls: int
    seconds: float
    cpu_seconds: float  # process time: less disturbed by other processes on the machine
    events_per_call: float
    waited_share: float  # offers made to freed agents, among all offers

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds

    @property
    def us_per_call(self) -> float:
        return 1e6 * self.seconds / self.calls

    @property
    def cpu_us_per_call(self) -> float:
        return 1e6 * self.cpu_seconds / self.calls


# == the runs ========================================================================


@dataclass(frozen=True)
class Plan:
    seed: int
    skewed: bool
    load: tuple[float, float]  # calls in progress, as shares of the agents: low, high
    calls: int  # measured lifecycles per size
    warmup: int  # untimed lifecycles after the ramp-up
    naive_calls: int
    naive_warmup: int  # untimed scanning iterations after the switch
    check_agents: int
    check_calls: int
    repeat: int


def make_plan(args: argparse.Namespace) -> Plan:
    quick = args.quick
    calls = args.calls or (2_000 if quick else 30_000)
    return Plan(
        seed=args.seed,
        skewed=not args.uniform,
        load=args.load,
        calls=calls,
        warmup=500 if quick else 5_000,
        naive_calls=max(50, calls // 6),  # one load swing at 10,000 agents
        naive_warmup=50 if quick else 200,
        check_agents=200 if quick else 1_000,
        check_calls=500 if quick else 2_000,
        repeat=args.repeat,
    )


def new_driver(engine: Engine, agents: int, p: Plan, lifecycles: int) -> Driver:
    centre = make_centre(agents, p.seed, p.skewed)
    staff(engine, centre)
    # enough calls for the ramp to full load, the lifecycles, and what is left in progress
    arrivals = make_arrivals(centre, p.seed, lifecycles + 2 * agents + 1_000)
    return Driver(engine, centre, arrivals, p.load)


def warm(driver: Driver, lifecycles: int) -> None:
    """Ramp up to full load, run ``lifecycles`` untimed, stop where a load swing begins."""
    driver.run_until(1)
    driver.run_until(driver.completed + lifecycles)
    driver.align()


def measure_indexed(agents: int, p: Plan) -> Measurement:
    driver = new_driver(Engine(), agents, p, p.warmup + p.calls)
    warm(driver, p.warmup)
    result = driver.timed(p.calls)
    driver.drain()
    return result


def measure_naive(agents: int, p: Plan) -> Measurement:
    engine = NaiveEngine()
    driver = new_driver(engine, agents, p, p.warmup + p.naive_warmup + p.naive_calls)
    warm(driver, p.warmup)  # indexed decisions: the same ones, much sooner
    driver.align(ahead=p.naive_warmup)
    engine.naive = True
    driver.run_iterations(p.naive_warmup)
    result = driver.timed(p.naive_calls)
    driver.drain()
    return result


def median(runs: list[Measurement]) -> Measurement:
    return sorted(runs, key=lambda m: m.seconds)[len(runs) // 2]


def cross_check(p: Plan) -> int:
    """Both engines, same centre and calls: the same offers, in the same order."""
    logs = []
    for engine in (Engine(), NaiveEngine()):
        if isinstance(engine, NaiveEngine):
            engine.naive = True
        driver = new_driver(engine, p.check_agents, p, p.check_calls)
        driver.offer_log = []
        driver.run_until(p.check_calls)
        driver.drain()
        logs.append(driver.offer_log)
    if logs[0] != logs[1]:
        first = next(i for i, (a, b) in enumerate(zip(*logs, strict=False)) if a != b)
        raise AssertionError(f"indexed and naive routers differ at offer {first}")
    return len(logs[0])


# == output ==========================================================================


def summary(
    indexed: dict[int, list[Measurement]], naive: list[Measurement], checked: int, p: Plan
) -> dict[str, Any]:
    best = {n: median(runs) for n, runs in indexed.items()}
    small, big, slow = best[SIZES[0]], best[SIZES[-1]], median(naive)
    return {
        "calls_per_second": {str(n): round(m.calls_per_second, 1) for n, m in best.items()},
        "cost_ratio_10000_vs_100": round(big.us_per_call / small.us_per_call, 3),
        "speedup_vs_naive_at_10000": round(big.calls_per_second / slow.calls_per_second, 2),
        "naive_calls_per_second_at_10000": round(slow.calls_per_second, 1),
        "us_per_call": {str(n): round(m.us_per_call, 2) for n, m in best.items()},
        "cpu_us_per_call": {str(n): round(m.cpu_us_per_call, 2) for n, m in best.items()},
        "naive_cpu_us_per_call_at_10000": round(slow.cpu_us_per_call, 2),
        "runs_calls_per_second": {
            str(n): [round(m.calls_per_second, 1) for m in runs] for n, runs in indexed.items()
        },
        "naive_runs_calls_per_second": [round(m.calls_per_second, 1) for m in naive],
        "measured_calls": {str(n): m.calls for n, m in best.items()},
        "naive_measured_calls": slow.calls,
        "events_per_call": {str(n): round(m.events_per_call, 2) for n, m in best.items()},
        "picked_up_later_share": {str(n): round(m.waited_share, 4) for n, m in best.items()},
        "cross_checked_offers": checked,
        "seed": p.seed,
        "load": list(p.load),
        "queue_traffic": "skewed" if p.skewed else "uniform",
        "repeat": p.repeat,
        "timing": "perf_counter around the measured loop, driver overhead included",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_table(
    indexed: dict[int, list[Measurement]], naive: list[Measurement], s: dict[str, Any]
) -> None:
    low, high = s["load"]
    print(f"ACD routing benchmark: {s['python']}, seed {s['seed']}, {s['queue_traffic']} traffic")
    print("a call is routed when its lifecycle completes: arrive, offer, accept, hang up, wrap up")
    print(f"calls in progress swing between {low:.0%} and {high:.0%} of the agents")
    print("timing: perf_counter around the measured loop, driver overhead included")
    if s["repeat"] > 1:
        print(f"each figure: the median of {s['repeat']} runs")
    print()
    print(
        f"{'router':<8}{'agents':>8}{'calls':>9}{'seconds':>9}{'calls/s':>10}"
        f"{'µs/call':>9}{'cpu µs':>8}{'events/call':>13}{'picked up later':>17}"
    )
    rows = [("indexed", median(runs)) for runs in indexed.values()] + [("naive", median(naive))]
    for name, m in rows:
        print(
            f"{name:<8}{m.agents:>8,}{m.calls:>9,}{m.seconds:>9.2f}{m.calls_per_second:>10,.0f}"
            f"{m.us_per_call:>9.1f}{m.cpu_us_per_call:>8.1f}{m.events_per_call:>13.1f}"
            f"{m.waited_share:>17.1%}"
        )
    print()
    cps = s["calls_per_second"][str(SIZES[-1])]
    ratio, speedup = s["cost_ratio_10000_vs_100"], s["speedup_vs_naive_at_10000"]
    print(
        f"calls/s at 10,000 agents:    {cps:>9,.0f}   "
        f"(target >= {TARGET_CPS:,.0f}: {verdict(cps >= TARGET_CPS)})"
    )
    print(
        f"cost ratio 10,000 vs 100:    {ratio:>9.2f}x  "
        f"(target <= {TARGET_COST_RATIO:g}x: {verdict(ratio <= TARGET_COST_RATIO)})"
    )
    print(
        f"speedup vs naive at 10,000:  {speedup:>9.1f}x  "
        f"(target >= {TARGET_SPEEDUP:g}x: {verdict(speedup >= TARGET_SPEEDUP)})"
    )
    print(f"cross-check: the indexed and naive routers made the same {s['cross_checked_offers']:,}")
    print("offers; after every run each call had completed and each agent was ready and idle")


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def load_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(":")
    try:
        pair = (float(low), float(high))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not LOW:HIGH: {text!r}") from None
    if not 0 < pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError(f"need 0 < LOW <= HIGH: {text!r}")
    return pair


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Routed calls per second through the engine.")
    parser.add_argument("--seed", type=int, default=1, help="centre and calls (default 1)")
    parser.add_argument("--calls", type=positive, help="lifecycles measured per size (30000)")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--repeat", type=positive, default=1, help="runs per size: the median")
    parser.add_argument("--uniform", action="store_true", help="uniform instead of skewed traffic")
    parser.add_argument(
        "--load",
        type=load_range,
        default=DEFAULT_LOAD,
        metavar="LOW:HIGH",
        help="calls in progress swing between these shares of the agents "
        f"(default {DEFAULT_LOAD[0]:g}:{DEFAULT_LOAD[1]:g})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    p = make_plan(args)
    checked = cross_check(p)
    indexed = {n: [measure_indexed(n, p) for _ in range(p.repeat)] for n in SIZES}
    naive = [measure_naive(SIZES[-1], p) for _ in range(p.repeat)]
    s = summary(indexed, naive, checked, p)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print_table(indexed, naive, s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
