"""Random command sequences against the engine, with its invariants checked after every step.

A shadow model is rebuilt from the emitted events alone; after each step it
must agree with the engine's own views: that is "no state change without its
event". It follows each call's state, queue and agent, and its consultation
(who is consulted, and whether ringing, talking or conferenced) through
blind transfers, consultations, conferences and hang-ups during them. The
other invariants are the issue's: an agent never holds two calls or
reservations (an agent is at most one call's agent, consulted agent or
offered agent), every call ends with exactly one outcome, offers within one
queue and one class of call go out in arrival order (but for a transfer to
one agent in particular), and sequence numbers strictly increase.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

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
    OfferAccepted,
    OfferRejected,
    QueueConfigured,
    TransferCompleted,
    WrapUpFinished,
)
from acd.config import (
    AffinityMode,
    AgentConfig,
    OverflowCondition,
    OverflowRule,
    QueueConfig,
    RelaxStep,
    Strategy,
    Target,
)
from acd.engine import Engine
from acd.errors import CommandRejected
from acd.events import AgentStateChanged, CallStateChanged, Event, ReservationStateChanged
from acd.ids import AgentId, CallId, CustomerId, Language, QueueId, Skill
from acd.states import AgentState, AgentStatus, CallState, ConsultState, ReservationState

STATS: dict[str, int] = {}
_TALKING = (CallState.CONNECTED, CallState.HELD)
_WAITING = (CallState.QUEUED, CallState.CALLBACK_QUEUED)  # a caller, or a callback in its place
_CALLBACK_WAITING = (CallState.CALLBACK_QUEUED, CallState.CALLBACK_OFFERED)
AGENTS = [AgentId(f"a{i}") for i in range(5)]
QUEUES = [QueueId("billing"), QueueId("french")]
QUEUE_LANGUAGE = {QUEUES[0]: Language("en"), QUEUES[1]: Language("fr")}


def _queues(strategy: Strategy) -> list[QueueConfig]:
    return [
        QueueConfig(
            id=QueueId("billing"),
            skills={Skill("billing"): 3},
            language=Language("en"),
            affinity=AffinityMode.DEDICATED_OR_LAST,
            affinity_window_seconds=10,
            wrap_up_seconds=5,
            ring_timeout_seconds=10,
            max_misses=2,
            short_abandon_seconds=5,
            announce_every_seconds=20,
            overflow=(
                OverflowRule(
                    when=OverflowCondition.WAIT_OVER, seconds=60, target=Target(queue=QUEUES[1])
                ),
            ),
        ),
        QueueConfig(
            id=QueueId("french"),
            language=Language("fr"),
            strategy=strategy,
            max_size=4,
            when_full=Target(site="sip:backup@backup.example.net"),
            relaxation=(RelaxStep(after_seconds=30, any_language=True),),
            ring_timeout_seconds=8,
            announce_every_seconds=15,
            callback_offer_over_seconds=60,
        ),
    ]


AGENT_CONFIGS = [
    AgentConfig(
        id=AGENTS[0],
        skills={Skill("billing"): 5},
        languages={Language("en"): 9},
        queues=frozenset(QUEUES),
    ),
    AgentConfig(
        id=AGENTS[1],
        skills={Skill("billing"): 2},
        languages={Language("en"): 9, Language("fr"): 5},
        queues=frozenset(QUEUES),
    ),
    AgentConfig(
        id=AGENTS[2],
        skills={Skill("billing"): 8},
        languages={Language("en"): 4},
        queues=frozenset({QUEUES[0]}),
    ),
    AgentConfig(id=AGENTS[3], languages={Language("fr"): 9}, queues=frozenset({QUEUES[1]})),
    AgentConfig(
        id=AGENTS[4],
        skills={Skill("billing"): 3},
        languages={Language("en"): 2, Language("fr"): 2},
        queues=frozenset(QUEUES),
    ),
]


@dataclass
class ShadowCall:
    queue: QueueId
    state: CallState
    priority: int
    order: int
    enqueued_at: float | None = None
    outcomes: list[object] = field(default_factory=list)
    agent: AgentId | None = None  # while connected or held
    consult: tuple[AgentId, ConsultState] | None = None


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = Engine()
        self.now = 0.0
        self.last_seq = 0
        self.calls: dict[CallId, ShadowCall] = {}
        self.agents: dict[AgentId, tuple[object, object]] = {}
        self.reservations: dict[str, tuple[ReservationState, AgentId, CallId]] = {}
        self.consult_offers: set[str] = set()  # reservations that ring a consultation
        self.direct: CallId | None = None  # being transferred to one agent in particular
        self.next_call = 0
        # What each call asked for at arrival: its language and whether it is a known customer.
        self.asked: dict[CallId, tuple[Language | None, bool]] = {}

    # -- driving ------------------------------------------------------------------

    def send(self, command: Command) -> None:
        before = self._snapshot()
        try:
            step = self.engine.handle(command, self.now)
        except CommandRejected as rejected:
            step = rejected.step  # type: ignore[attr-defined]
            self.observe(step.events)
            if not step.events:
                assert self._snapshot() == before, f"{command} was refused but changed state"
            return
        self.observe(step.events)

    def _snapshot(self) -> object:
        agents = tuple(self.engine.agent(a) for a in AGENTS)
        calls = tuple(self.engine.call(c) for c in sorted(self.calls))
        return agents, calls

    @initialize(strategy=st.sampled_from(list(Strategy)), ready=st.sets(st.sampled_from(AGENTS)))
    def configure(self, strategy: Strategy, ready: set[AgentId]) -> None:
        for queue in _queues(strategy):
            self.send(QueueConfigured(config=queue))
        for agent in AGENT_CONFIGS:
            self.send(AgentConfigured(config=agent))
        for agent_id in sorted(ready):
            self.log_in_and_ready(agent_id)

    @rule(agent=st.sampled_from(AGENTS))
    def log_in_and_ready(self, agent: AgentId) -> None:
        self.send(AgentLoggedIn(agent_id=agent))
        self.send(AgentWentReady(agent_id=agent))

    @rule(agent=st.sampled_from(AGENTS), reason=st.sampled_from(["break", "lunch"]))
    def not_ready(self, agent: AgentId, reason: str) -> None:
        self.send(AgentWentNotReady(agent_id=agent, reason=reason))

    @rule(agent=st.sampled_from(AGENTS))
    def ready(self, agent: AgentId) -> None:
        self.send(AgentWentReady(agent_id=agent))

    @rule(agent=st.sampled_from(AGENTS))
    def log_out(self, agent: AgentId) -> None:
        self.send(AgentLoggedOut(agent_id=agent))

    @rule(agent=st.sampled_from(AGENTS), lost=st.booleans())
    def device(self, agent: AgentId, lost: bool) -> None:
        if lost:
            self.send(AgentDeviceLost(agent_id=agent))
        else:
            self.send(AgentDeviceRestored(agent_id=agent))

    @rule(
        queue=st.sampled_from(QUEUES),
        priority=st.sampled_from([None, 0, 5]),
        language=st.sampled_from([None, Language("en"), Language("fr")]),
        customer=st.sampled_from([None, "cust1", "cust2"]),
    )
    def call_arrives(
        self, queue: QueueId, priority: int | None, language: Language | None, customer: str | None
    ) -> None:
        self.next_call += 1
        call_id = CallId(f"c{self.next_call}")
        self.asked[call_id] = (language, customer is not None)
        self.send(
            CallArrived(
                call_id=call_id,
                queue_id=queue,
                priority=priority,
                language=language,
                customer_id=None if customer is None else CustomerId(customer),
                dedicated_agent=AGENTS[0] if customer == "cust2" else None,
            )
        )

    @rule(queue=st.sampled_from(QUEUES), number=st.sampled_from(["5551234", "12"]))
    def a_callback_is_booked(self, queue: QueueId, number: str) -> None:
        """From the IVR menu: a callback task from the start ("12" is refused)."""
        self.next_call += 1
        call_id = CallId(f"c{self.next_call}")
        self.asked[call_id] = (None, False)
        self.send(CallArrived(call_id=call_id, queue_id=queue, callback_number=number))

    @rule(queue=st.sampled_from(QUEUES), customer=st.sampled_from([None, "cust1"]))
    def a_call_arrives_and_is_answered(self, queue: QueueId, customer: str | None) -> None:
        """Connected calls, for transfers and consultations to work on."""
        self.call_arrives(queue, None, None, customer)
        call = CallId(f"c{self.next_call}")
        for state, agent, offered in self.reservations.values():
            if offered == call and state is ReservationState.PENDING:
                self.send(OfferAccepted(agent_id=agent, call_id=call))

    @rule(data=st.data(), accept=st.sampled_from([True, True, False]))
    def answer_an_offer(self, data: st.DataObject, accept: bool) -> None:
        ringing = sorted(
            (agent, call)
            for _, (state, agent, call) in self.reservations.items()
            if state is ReservationState.PENDING
        )
        if not ringing:
            return
        agent, call = data.draw(st.sampled_from(ringing))
        kind = OfferAccepted if accept else OfferRejected
        self.send(kind(agent_id=agent, call_id=call))

    @rule(
        data=st.data(),
        kind=st.sampled_from(
            ["caller", "agent", "hold", "retrieve", "self", "callback", "reached", "failed"]
        ),
    )
    def act_on_a_call(self, data: st.DataObject, kind: str) -> None:
        live = sorted(c for c, s in self.calls.items() if s.state is not CallState.ENDED)
        if not live:
            return
        call = data.draw(st.sampled_from(live))
        if kind == "callback":
            self.send(CallbackRequested(call_id=call, number="5551234"))
            return
        if kind == "failed":
            self.send(CallbackFailed(call_id=call, reason="no_answer"))
            return
        command = {
            "caller": CallerHungUp,
            "agent": AgentHungUp,
            "hold": CallHeld,
            "retrieve": CallRetrieved,
            "self": CallSelfServed,
            "reached": CallbackAnswered,
        }[kind]
        self.send(command(call_id=call))

    def _draw_call(self, data: st.DataObject, talking: bool) -> CallId | None:
        """A live call, connected or held most of the time when ``talking``."""
        live = sorted(c for c, s in self.calls.items() if s.state is not CallState.ENDED)
        with_agent = [c for c in live if self.calls[c].state in _TALKING]
        pool = with_agent if talking and with_agent and data.draw(st.integers(0, 4)) else live
        return data.draw(st.sampled_from(pool)) if pool else None

    def _draw_agent(self, data: st.DataObject) -> AgentId:
        """An agent, ready and idle most of the time (by the shadow)."""
        free = [a for a in AGENTS if self.agents.get(a) == (AgentStatus.READY, AgentState.IDLE)]
        pool = free if free and data.draw(st.integers(0, 4)) else AGENTS
        return data.draw(st.sampled_from(pool))

    @rule(
        data=st.data(),
        to=st.sampled_from(["queue", "queue", "agent", "agent", "nowhere", "both", "none"]),
    )
    def blind_transfer(self, data: st.DataObject, to: str) -> None:
        call = self._draw_call(data, talking=True)
        if call is None:
            return
        queue = data.draw(st.sampled_from(QUEUES)) if to in ("queue", "both") else None
        if to == "nowhere":
            queue = QueueId("nowhere")
        agent = self._draw_agent(data) if to in ("agent", "both") else None
        self.direct = call if to == "agent" else None
        self.send(CallTransferred(call_id=call, queue_id=queue, agent_id=agent, note="n"))
        self.direct = None

    @rule(data=st.data())
    def consult(self, data: st.DataObject) -> None:
        call = self._draw_call(data, talking=True)
        if call is not None:
            self.send(ConsultStarted(call_id=call, agent_id=self._draw_agent(data)))

    @rule(data=st.data(), then=st.sampled_from(["answer", "answer", "reject", "let_ring"]))
    def consult_a_free_agent(self, data: st.DataObject, then: str) -> None:
        """A consultation that can start, so that the steps after it get their turn."""
        calls = sorted(
            c for c, s in self.calls.items() if s.state in _TALKING and s.consult is None
        )
        free = [a for a in AGENTS if self.agents.get(a) == (AgentStatus.READY, AgentState.IDLE)]
        if not calls or not free:
            return
        call, agent = data.draw(st.sampled_from(calls)), data.draw(st.sampled_from(free))
        self.send(ConsultStarted(call_id=call, agent_id=agent))
        if then != "let_ring":
            kind = OfferAccepted if then == "answer" else OfferRejected
            self.send(kind(agent_id=agent, call_id=call))
        if then == "answer":
            follow = data.draw(
                st.sampled_from([None, ConsultCancelled, ConferenceStarted, TransferCompleted])
            )
            if follow is not None:
                self.send(follow(call_id=call))

    @rule(data=st.data(), kind=st.sampled_from(["cancel", "complete", "conference", "hold"]))
    def go_on_with_a_consultation(self, data: st.DataObject, kind: str) -> None:
        consulting = sorted(c for c, s in self.calls.items() if s.consult is not None)
        call = data.draw(st.sampled_from(consulting)) if consulting else self._draw_call(data, True)
        if call is None:
            return
        if kind == "hold":  # by an agent of the call, the main one or not
            self.send(CallHeld(call_id=call, agent_id=data.draw(st.sampled_from(AGENTS))))
            return
        command = {
            "cancel": ConsultCancelled,
            "complete": TransferCompleted,
            "conference": ConferenceStarted,
        }[kind]
        self.send(command(call_id=call))

    @rule(data=st.data(), main=st.booleans())
    def leave_a_conference(self, data: st.DataObject, main: bool) -> None:
        """One of a conference's agents leaves (or, with no conference, anyone tries)."""
        conferences = sorted(
            (s.agent, s.consult[0])
            for s in self.calls.values()
            if s.consult is not None and s.consult[1] is ConsultState.CONFERENCED
        )
        if conferences:
            pair = data.draw(st.sampled_from(conferences))
            agent = pair[0] if main else pair[1]
        else:
            agent = data.draw(st.sampled_from(AGENTS))
        assert agent is not None
        self.send(AgentLeftConference(agent_id=agent))

    @rule(agent=st.sampled_from(AGENTS), resolved=st.booleans())
    def finish_wrap_up(self, agent: AgentId, resolved: bool) -> None:
        self.send(WrapUpFinished(agent_id=agent, disposition="done", resolved=resolved))

    @rule(seconds=st.sampled_from([0.0, 0.5, 3.0, 9.0, 25.0, 70.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self.observe(self.engine.advance(self.now).events)

    @rule(agent=st.sampled_from([*AGENTS, AgentId("ghost")]), call=st.sampled_from(["c1", "nope"]))
    def stray_commands_change_nothing(self, agent: AgentId, call: str) -> None:
        self.send(OfferAccepted(agent_id=agent, call_id=CallId(call)))
        self.send(CallRetrieved(call_id=CallId(call)))

    # -- the shadow model, from events only -------------------------------------------

    def observe(self, events: list[Event]) -> None:
        for event in events:
            assert event.seq == self.last_seq + 1, "sequence numbers must increase by one"
            self.last_seq = event.seq
            if isinstance(event, CallStateChanged):
                self._observe_call(event)
            elif isinstance(event, AgentStateChanged):
                assert event.from_status is None or self.agents[event.agent_id] == (
                    event.from_status,
                    event.from_state,
                ), "an agent event must start where the last one ended"
                self.agents[event.agent_id] = (event.to_status, event.to_state)
                self._observe_consulted_agent(event)
            elif isinstance(event, ReservationStateChanged):
                self._observe_reservation(event)

    def _observe_call(self, event: CallStateChanged) -> None:
        if event.from_state is None:
            view = self.engine.call(event.call_id)
            self.calls[event.call_id] = ShadowCall(
                queue=event.queue_id,
                state=event.to_state,
                priority=-1 if view is None else view.priority,
                order=event.seq,
            )
            return
        shadow = self.calls[event.call_id]
        assert shadow.state is event.from_state, "a call event must start where the last ended"
        assert shadow.state is not CallState.ENDED, "nothing happens to a call after it ends"
        shadow.state = event.to_state
        shadow.queue = event.queue_id
        if event.to_state in _WAITING and (
            shadow.enqueued_at is None or event.reason == "blind_transfer"
        ):
            assert event.reason != "blind_transfer" or shadow.consult is None
            shadow.enqueued_at = event.at  # a transfer starts a fresh wait
        shadow.agent = event.agent_id if event.to_state in _TALKING else None
        consult = shadow.consult
        if event.reason in ("consult_transfer", "conference_transfer"):
            assert consult is not None and consult[0] == event.agent_id
            assert consult[1] is (
                ConsultState.TALKING
                if event.reason == "consult_transfer"
                else ConsultState.CONFERENCED
            )
            shadow.consult = None
        elif event.reason == "conference":
            assert consult is not None and consult[1] is ConsultState.TALKING
            shadow.consult = (consult[0], ConsultState.CONFERENCED)
        elif event.to_state is CallState.HELD and consult is not None:
            assert consult[1] is ConsultState.CONFERENCED, "only a conference is held"
            shadow.consult = (consult[0], ConsultState.TALKING)
        elif event.to_state is CallState.ENDED:
            shadow.consult = None
        if event.to_state is CallState.ENDED:
            assert event.outcome is not None
            shadow.outcomes.append(event.outcome)
        else:
            assert event.outcome is None, "only the end of a call carries an outcome"

    def _observe_reservation(self, event: ReservationStateChanged) -> None:
        shadow = self.calls[event.call_id]
        if event.from_state is None:
            self.reservations[event.reservation_id] = (
                event.to_state,
                event.agent_id,
                event.call_id,
            )
            if shadow.state in _TALKING:  # the call stays with its agent: a consultation
                assert shadow.consult is None
                shadow.consult = (event.agent_id, ConsultState.RINGING)
                self.consult_offers.add(event.reservation_id)
            elif event.call_id != self.direct:
                self._check_arrival_order(event.call_id)
            return
        state, agent, call = self.reservations[event.reservation_id]
        assert state is event.from_state is ReservationState.PENDING
        self.reservations[event.reservation_id] = (event.to_state, agent, call)
        if event.reservation_id in self.consult_offers and shadow.consult is not None:
            assert shadow.consult == (agent, ConsultState.RINGING)
            answered = event.to_state is ReservationState.ACCEPTED
            shadow.consult = (agent, ConsultState.TALKING) if answered else None

    def _observe_consulted_agent(self, event: AgentStateChanged) -> None:
        """A consulted agent who stops talking has left the consultation or conference."""
        if event.call_id is None or event.from_state is not AgentState.TALKING:
            return
        shadow = self.calls[event.call_id]
        if shadow.consult is not None and shadow.consult[0] == event.agent_id:
            assert event.to_state in (AgentState.IDLE, AgentState.WRAP_UP)
            shadow.consult = None

    def _check_arrival_order(self, call_id: CallId) -> None:
        """No older call of the same queue and class is still waiting when this one is offered."""
        offered = self.calls[call_id]
        view = self.engine.call(call_id)
        if view is None:
            return
        if self._has_affinity(call_id):
            return
        for other_id, other in self.calls.items():
            if other_id == call_id or other.state not in _WAITING:
                continue
            if other.queue != offered.queue or self._has_affinity(other_id):
                continue
            if self._class(other_id) != self._class(call_id):
                continue
            assert other.enqueued_at is not None and offered.enqueued_at is not None
            assert (other.enqueued_at, other.order) > (offered.enqueued_at, offered.order), (
                f"{call_id} was offered while older {other_id} waited"
            )

    def _class(self, call_id: CallId) -> tuple[object, ...]:
        """Priority and language, as they were at the event being observed."""
        view = self.engine.call(call_id)
        assert view is not None
        queue = self.calls[call_id].queue  # the shadow's: the view may be a step ahead
        language = self.asked[call_id][0] or QUEUE_LANGUAGE[queue]
        return (view.priority, language)

    def _has_affinity(self, call_id: CallId) -> bool:
        return self.asked[call_id][1]

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def views_agree_with_the_events(self) -> None:
        consulted = {s.consult[0]: c for c, s in self.calls.items() if s.consult is not None}
        for agent_id in AGENTS:
            view = self.engine.agent(agent_id)
            if view is None:
                assert agent_id not in self.agents
                continue
            assert self.agents[agent_id] == (view.status, view.state)
            assert view.consult_call_id == consulted.get(agent_id)
        for call_id, shadow in self.calls.items():
            view = self.engine.call(call_id)
            if shadow.state is CallState.ENDED:
                assert view is None
            else:
                assert view is not None and view.state is shadow.state
                assert view.queue_id == shadow.queue
                if shadow.state in _TALKING:
                    assert view.agent_id == shadow.agent
                consult = (view.consult_agent_id, view.consult_state)
                assert consult == (shadow.consult or (None, None))

    @invariant()
    def an_agent_holds_at_most_one_call_or_offer(self) -> None:
        for agent_id in AGENTS:
            view = self.engine.agent(agent_id)
            if view is None:
                continue
            held = [c for c in (view.call_id, view.offered_call_id) if c is not None]
            assert len(held) <= 1, f"{agent_id} holds {held}"
            busy = view.state in (AgentState.RESERVED, AgentState.TALKING, AgentState.HELD)
            assert busy == (len(held) == 1) or view.state is AgentState.WRAP_UP
            for call in held:
                if view.state is AgentState.WRAP_UP:
                    continue
                call_view = self.engine.call(call)
                assert call_view is not None, f"{agent_id} holds {call}, which has ended"
                roles = (call_view.agent_id, call_view.offered_to, call_view.consult_agent_id)
                assert agent_id in roles, f"{agent_id} holds {call} in no role"
        # Each agent is at most one live call's agent, offered agent or consulted agent.
        taken = [
            a
            for c in self.engine.call_ids()
            if (v := self.engine.call(c)) is not None
            for a in (v.agent_id, v.offered_to, v.consult_agent_id)
            if a is not None
        ]
        assert len(taken) == len(set(taken)), f"an agent in two roles: {sorted(taken)}"
        pending = [r for r in self.reservations.values() if r[0] is ReservationState.PENDING]
        assert len({agent for _, agent, _ in pending}) == len(pending)
        assert len({call for _, _, call in pending}) == len(pending)

    @invariant()
    def a_call_ends_at_most_once(self) -> None:
        for shadow in self.calls.values():
            assert len(shadow.outcomes) <= 1

    def teardown(self) -> None:
        """Every caller hangs up, every call back fails, time runs on: every call has
        exactly one outcome, but callback tasks still waiting: they keep their place."""
        for call_id, shadow in sorted(self.calls.items()):
            if shadow.state is CallState.DIALING:
                self.send(CallbackFailed(call_id=call_id, reason="no_answer"))
            elif shadow.state is not CallState.ENDED:
                self.send(CallerHungUp(call_id=call_id))
        self.now += 3600
        self.observe(self.engine.advance(self.now).events)
        for call_id, shadow in self.calls.items():
            if shadow.state in _CALLBACK_WAITING:
                assert not shadow.outcomes and self.engine.call(call_id) is not None
                STATS["callback_waiting"] = STATS.get("callback_waiting", 0) + 1
                continue
            assert len(shadow.outcomes) == 1, f"{call_id} ended {len(shadow.outcomes)} times"
            STATS[str(shadow.outcomes[0])] = STATS.get(str(shadow.outcomes[0]), 0) + 1
        assert self.engine.next_deadline() is None or self.engine.next_deadline() > self.now


EngineMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("ACD_INVARIANT_EXAMPLES", "300")),
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineInvariants = EngineMachine.TestCase
