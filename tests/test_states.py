"""The state machines as tables, and the events that report every move through them.

Table tests: every state × trigger either lands in the table's state or raises
InvalidTransition, and the tables have the shape the domain asks for (login
leaves an agent not ready, ended calls stay ended, a consultation is
conferenced or handed over only once the agents talk, ...). Event tests: each
change is one event, numbered without gaps, stamped with its time, moving
along a transition of the table, on a plain day and on a day of transfers;
each call ends with exactly one outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from itertools import product
from typing import Any

import pytest

from acd.commands import (
    AgentHungUp,
    CallHeld,
    CallRetrieved,
    CallSelfServed,
    Command,
)
from acd.config import OverflowCondition, OverflowRule, Target, WhenUnstaffed
from acd.engine import Engine
from acd.errors import CommandRejected
from acd.events import AgentStateChanged, CallStateChanged, Event, ReservationStateChanged
from acd.ids import CallId
from acd.states import (
    AGENT_STATE_TRANSITIONS,
    AGENT_STATUS_TRANSITIONS,
    CALL_TRANSITIONS,
    CONSULT_TRANSITIONS,
    RESERVATION_TRANSITIONS,
    AgentState,
    AgentStatus,
    CallState,
    ConsultState,
    InvalidTransition,
    Outcome,
    ReservationState,
    Trigger,
    next_state,
)
from acd.testing import Centre

Table = dict[tuple[Any, Trigger], Any]
TABLES: dict[str, tuple[Table, type[Enum]]] = {
    "agent_state": (AGENT_STATE_TRANSITIONS, AgentState),
    "agent_status": (AGENT_STATUS_TRANSITIONS, AgentStatus),
    "call": (CALL_TRANSITIONS, CallState),
    "reservation": (RESERVATION_TRANSITIONS, ReservationState),
    "consult": (CONSULT_TRANSITIONS, ConsultState),
}


def reachable(table: Table, start: Enum) -> set[Enum]:
    seen = {start}
    frontier = [start]
    while frontier:
        state = frontier.pop()
        for (source, _), target in table.items():
            if source is state and target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def exits(table: Table, state: Enum) -> dict[Trigger, Enum]:
    return {trigger: target for (source, trigger), target in table.items() if source is state}


# -- the tables ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "state", "trigger"),
    [
        pytest.param(name, state, trigger, id=f"{name}-{state.value}-{trigger.value}")
        for name, (_, states) in TABLES.items()
        for state, trigger in product(states, Trigger)
    ],
)
def test_every_state_and_trigger_lands_in_the_table_s_state_or_raises(
    name: str, state: Enum, trigger: Trigger
) -> None:
    table, states = TABLES[name]
    if (state, trigger) in table:
        landed = next_state(table, state, trigger)
        assert landed is table[(state, trigger)]
        assert isinstance(landed, states)
    else:
        with pytest.raises(InvalidTransition, match=trigger.value):
            next_state(table, state, trigger)


@pytest.mark.parametrize(
    ("name", "start"),
    [
        ("agent_state", AgentState.IDLE),
        ("agent_status", AgentStatus.LOGGED_OUT),
        ("call", CallState.ARRIVED),
        ("reservation", ReservationState.PENDING),
        ("consult", ConsultState.RINGING),
    ],
)
def test_every_state_is_reachable_from_the_initial_state(name: str, start: Enum) -> None:
    table, states = TABLES[name]

    assert reachable(table, start) == set(states)


def test_login_leaves_an_agent_not_ready_and_is_the_only_way_out_of_logged_out() -> None:
    assert exits(AGENT_STATUS_TRANSITIONS, AgentStatus.LOGGED_OUT) == {
        Trigger.LOGIN: AgentStatus.NOT_READY
    }


def test_an_agent_can_log_out_from_ready_or_not_ready() -> None:
    for status in (AgentStatus.READY, AgentStatus.NOT_READY):
        assert next_state(AGENT_STATUS_TRANSITIONS, status, Trigger.LOGOUT) is (
            AgentStatus.LOGGED_OUT
        )


def test_every_agent_state_leads_back_to_idle() -> None:
    for state in AgentState:
        assert AgentState.IDLE in reachable(AGENT_STATE_TRANSITIONS, state)


def test_only_an_idle_agent_loses_their_device_and_only_restoring_it_brings_them_back() -> None:
    lost = [s for (s, t) in AGENT_STATE_TRANSITIONS if t is Trigger.DEVICE_LOST]
    assert lost == [AgentState.IDLE]
    assert exits(AGENT_STATE_TRANSITIONS, AgentState.NOT_RESPONDING) == {
        Trigger.DEVICE_RESTORED: AgentState.IDLE
    }


def test_an_offer_is_the_only_way_an_idle_agent_starts_a_call() -> None:
    into_calls = {
        (s, t)
        for (s, t), target in AGENT_STATE_TRANSITIONS.items()
        if s is AgentState.IDLE and target is not AgentState.NOT_RESPONDING
    }
    assert into_calls == {(AgentState.IDLE, Trigger.OFFER)}


def test_every_call_state_can_end_and_an_ended_call_stays_ended() -> None:
    for state in CallState:
        assert CallState.ENDED in reachable(CALL_TRANSITIONS, state)
    assert exits(CALL_TRANSITIONS, CallState.ENDED) == {}


def test_an_offered_call_returns_to_the_queue_on_reject_or_ring_no_answer() -> None:
    for trigger in (Trigger.REJECT, Trigger.TIME_OUT):
        assert next_state(CALL_TRANSITIONS, CallState.OFFERED, trigger) is CallState.QUEUED


def test_a_connected_or_held_call_goes_back_to_queue_only_by_a_transfer() -> None:
    back = {
        (s, t)
        for (s, t), target in CALL_TRANSITIONS.items()
        if s in (CallState.CONNECTED, CallState.HELD) and target is CallState.QUEUED
    }
    assert back == {(CallState.CONNECTED, Trigger.TRANSFER), (CallState.HELD, Trigger.TRANSFER)}


def test_every_live_call_state_can_be_closed_as_interrupted_and_nothing_else_interrupts() -> None:
    interrupted = {
        s: t for (s, trigger), t in CALL_TRANSITIONS.items() if trigger is Trigger.INTERRUPT
    }
    assert interrupted == {s: CallState.ENDED for s in CallState if s is not CallState.ENDED}
    for table, _ in TABLES.values():
        if table is not CALL_TRANSITIONS:
            assert all(trigger is not Trigger.INTERRUPT for _, trigger in table)


def test_every_consultation_state_can_end_and_an_ended_one_stays_ended() -> None:
    for state in ConsultState:
        assert ConsultState.ENDED in reachable(CONSULT_TRANSITIONS, state)
    assert exits(CONSULT_TRANSITIONS, ConsultState.ENDED) == {}


def test_only_agents_who_talk_can_conference_or_hand_the_caller_over() -> None:
    for trigger in (Trigger.CONFERENCE, Trigger.HAND_OVER):
        sources = {s for (s, t) in CONSULT_TRANSITIONS if t is trigger}
        assert ConsultState.RINGING not in sources
    assert exits(CONSULT_TRANSITIONS, ConsultState.RINGING) == {
        Trigger.ACCEPT: ConsultState.TALKING,
        Trigger.REJECT: ConsultState.ENDED,
        Trigger.TIME_OUT: ConsultState.ENDED,
        Trigger.CANCEL: ConsultState.ENDED,
    }


def test_holding_a_conference_turns_it_back_into_a_consultation() -> None:
    assert next_state(CONSULT_TRANSITIONS, ConsultState.CONFERENCED, Trigger.HOLD) is (
        ConsultState.TALKING
    )
    assert next_state(CALL_TRANSITIONS, CallState.HELD, Trigger.CONFERENCE) is CallState.CONNECTED


def test_a_reservation_is_settled_once() -> None:
    assert set(exits(RESERVATION_TRANSITIONS, ReservationState.PENDING).values()) == {
        ReservationState.ACCEPTED,
        ReservationState.REJECTED,
        ReservationState.TIMED_OUT,
        ReservationState.CANCELLED,
    }
    for state in ReservationState:
        if state is not ReservationState.PENDING:
            assert exits(RESERVATION_TRANSITIONS, state) == {}


# -- events: one per change, numbered, timed, along the tables -----------------------------------


def busy_day() -> Centre:
    """A little of everything: answer, hold, reject, ring-no-answer, wrap-up, abandon."""
    centre = Centre().queue("sales", wrap_up_seconds=5, ring_timeout_seconds=10, max_misses=1)
    centre.agent("ann", queues=["sales"])
    centre.agent("bob", queues=["sales"])
    centre.at(1).call("c1", "sales")  # ann
    centre.accept("ann", "c1")
    centre.at(2).call("c2", "sales")  # bob
    centre.reject("bob", "c2")  # back to bob: nobody else is free
    centre.at(3).do(CallHeld(call_id=CallId("c1")))
    centre.at(4).do(CallRetrieved(call_id=CallId("c1")))
    centre.at(12)  # bob misses c2 and goes not ready
    centre.at(13).call("c3", "sales")
    centre.at(20).agent_hangs_up("c1")  # ann wraps up until 25
    centre.at(22).caller_hangs_up("c3")
    centre.at(26).accept("ann", "c2")  # offered to ann at 25
    centre.at(40).caller_hangs_up("c2")
    centre.at(50)
    return centre


def transfer_day() -> Centre:
    """Blind transfers to a queue and an agent, consultations rejected, cancelled, completed,
    conferenced, held and left, and a caller hanging up in a conference."""
    centre = Centre().queue("sales", wrap_up_seconds=5, ring_timeout_seconds=10)
    centre.queue("tech", ring_timeout_seconds=10)
    for agent in ("ann", "bob", "cy"):
        centre.agent(agent, queues=["sales", "tech"])
    centre.at(1).call("c1", "sales")  # ann
    centre.accept("ann", "c1")
    centre.at(2).transfer("c1", queue="tech")  # bob
    centre.at(3).accept("bob", "c1")
    centre.at(4).transfer("c1", agent="cy")
    centre.at(14)  # cy lets it ring out: to bob, idle longest
    centre.accept("bob", "c1")
    centre.at(15).consult("c1", "ann")
    centre.at(16).reject("ann", "c1")
    centre.at(17).consult("c1", "ann")
    centre.at(18).cancel_consult("c1")
    centre.at(19).consult("c1", "cy")
    centre.at(20).accept("cy", "c1")
    centre.at(21).cancel_consult("c1")
    centre.at(22).consult("c1", "ann")
    centre.at(23).accept("ann", "c1")
    centre.at(24).complete_transfer("c1")  # ann has it, bob is idle
    centre.at(30).consult("c1", "bob")
    centre.at(31).accept("bob", "c1")
    centre.at(32).conference("c1")
    centre.at(33).hold("c1")
    centre.at(34).conference("c1")
    centre.at(35).leave_conference("bob")  # ann keeps it
    centre.at(36).consult("c1", "cy")
    centre.at(37).accept("cy", "c1")
    centre.at(38).conference("c1")
    centre.at(39).leave_conference("ann")  # cy has it
    centre.at(45).consult("c1", "bob")
    centre.at(46).accept("bob", "c1")
    centre.at(47).conference("c1")
    centre.at(48).caller_hangs_up("c1")
    centre.at(60)
    return centre


DAYS = pytest.mark.parametrize("day", [busy_day, transfer_day], ids=lambda d: d.__name__)


def test_the_transfer_day_takes_every_kind_of_transfer_move() -> None:
    centre = transfer_day()

    reasons = {
        e.reason for e in centre.events if isinstance(e, CallStateChanged | AgentStateChanged)
    }
    assert reasons >= {
        "blind_transfer",
        "consult",
        "consult_cancelled",
        "consult_transfer",
        "conference",
        "conference_left",
        "conference_transfer",
        "caller_hung_up",
    }
    assert [e.outcome for e in centre.events_of(CallStateChanged) if e.outcome] == [
        Outcome.ANSWERED
    ]


def allowed(table: Table) -> set[tuple[Any, Any]]:
    return {(source, target) for (source, _), target in table.items()}


@DAYS
def test_every_event_moves_along_a_transition_of_its_table(day: Callable[[], Centre]) -> None:
    centre = day()

    for event in centre.events:
        if isinstance(event, CallStateChanged) and event.from_state is not None:
            assert (event.from_state, event.to_state) in allowed(CALL_TRANSITIONS), event
        elif isinstance(event, ReservationStateChanged) and event.from_state is not None:
            assert (event.from_state, event.to_state) in allowed(RESERVATION_TRANSITIONS), event
        elif isinstance(event, AgentStateChanged) and event.from_state is not None:
            assert event.from_status is not None
            if event.from_state is not event.to_state:
                pair = (event.from_state, event.to_state)
                assert pair in allowed(AGENT_STATE_TRANSITIONS), event
            if event.from_status is not event.to_status:
                pair = (event.from_status, event.to_status)
                assert pair in allowed(AGENT_STATUS_TRANSITIONS), event


def entity(event: Event) -> tuple[str, str]:
    if isinstance(event, CallStateChanged):
        return ("call", event.call_id)
    if isinstance(event, AgentStateChanged):
        return ("agent", event.agent_id)
    return ("reservation", event.reservation_id)


@DAYS
def test_each_event_starts_where_the_entity_s_previous_event_left_it(
    day: Callable[[], Centre],
) -> None:
    centre = day()
    last: dict[tuple[str, str], Event] = {}

    for event in centre.events:
        previous = last.get(entity(event))
        if previous is None:
            assert event.from_state is None
        else:
            assert event.from_state is previous.to_state, event
            if isinstance(event, AgentStateChanged):
                assert isinstance(previous, AgentStateChanged)
                assert event.from_status is previous.to_status, event
        last[entity(event)] = event


@DAYS
def test_events_are_numbered_one_by_one_across_commands_and_timers(
    day: Callable[[], Centre],
) -> None:
    centre = day()

    assert [e.seq for e in centre.events] == list(range(1, len(centre.events) + 1))


def test_events_carry_the_time_they_happened_in_order() -> None:
    centre = busy_day()

    times = [e.at for e in centre.events]
    assert times == sorted(times)
    timed_out = [
        e
        for e in centre.events_of(ReservationStateChanged)
        if e.to_state is ReservationState.TIMED_OUT
    ]
    assert [e.at for e in timed_out] == [12]


def test_a_late_command_meets_the_timers_that_fell_due_before_it_first() -> None:
    centre = Centre().queue("sales", ring_timeout_seconds=10)
    centre.agent("ann", queues=["sales"])
    centre.agent("bob", queues=["sales"])
    centre.call("c1", "sales")  # ann until 10

    step = centre.engine.handle(CallSelfServed(call_id=CallId("c1")), 30)

    kinds = [(type(e).__name__, e.at) for e in step.events]
    assert kinds[0] == ("ReservationStateChanged", 10)
    assert kinds[-1] == ("CallStateChanged", 30)
    assert [e.seq for e in step.events] == sorted(e.seq for e in step.events)


def test_an_answered_call_moves_through_its_states_one_event_each() -> None:
    centre = Centre().queue("sales")
    centre.agent("ann", queues=["sales"])
    centre.at(1).call("c1", "sales")
    centre.at(3).accept("ann", "c1")
    centre.at(10).do(CallHeld(call_id=CallId("c1")))
    centre.at(20).do(CallRetrieved(call_id=CallId("c1")))
    centre.at(60).agent_hangs_up("c1")

    moves = [
        (e.at, e.from_state, e.to_state, e.outcome)
        for e in centre.events_of(CallStateChanged)
        if e.call_id == "c1"
    ]
    assert moves == [
        (1, None, CallState.ARRIVED, None),
        (1, CallState.ARRIVED, CallState.QUEUED, None),
        (1, CallState.QUEUED, CallState.OFFERED, None),
        (3, CallState.OFFERED, CallState.CONNECTED, None),
        (10, CallState.CONNECTED, CallState.HELD, None),
        (20, CallState.HELD, CallState.CONNECTED, None),
        (60, CallState.CONNECTED, CallState.ENDED, Outcome.ANSWERED),
    ]


# -- exactly one outcome per call ------------------------------------------------------------

Scenario = Callable[[Centre], None]


def _answered(centre: Centre) -> None:
    centre.agent("ann", queues=["sales"])
    centre.call("c1", "sales")
    centre.accept("ann", "c1")
    centre.at(90).agent_hangs_up("c1")


def _answered_caller_hung_up(centre: Centre) -> None:
    centre.agent("ann", queues=["sales"])
    centre.call("c1", "sales")
    centre.accept("ann", "c1")
    centre.at(90).caller_hangs_up("c1")


def _abandoned(centre: Centre) -> None:
    centre.call("c1", "sales")
    centre.at(25).caller_hangs_up("c1")


def _short_abandoned(centre: Centre) -> None:
    centre.call("c1", "sales")
    centre.at(9).caller_hangs_up("c1")


def _short_abandoned_while_ringing(centre: Centre) -> None:
    centre.agent("ann", queues=["sales"])
    centre.call("c1", "sales")
    centre.at(3).caller_hangs_up("c1")


def _overflowed(centre: Centre) -> None:
    rule = OverflowRule(
        when=OverflowCondition.WAIT_OVER, seconds=30, target=Target(site="sip:b@backup.example")
    )
    centre.queue("sales", overflow=(rule,))
    centre.call("c1", "sales")
    centre.at(30)


def _answered_transferred_then_abandoned(centre: Centre) -> None:
    centre.queue("tech")
    centre.agent("ann", queues=["sales"])
    centre.call("c1", "sales")
    centre.accept("ann", "c1")
    centre.at(60).transfer("c1", queue="tech")
    centre.at(65).caller_hangs_up("c1")


def _answered_caller_hung_up_in_conference(centre: Centre) -> None:
    centre.agent("ann", queues=["sales"])
    centre.agent("bob", queues=["sales"])
    centre.call("c1", "sales")
    centre.accept("ann", "c1")
    centre.consult("c1", "bob")
    centre.accept("bob", "c1")
    centre.conference("c1")
    centre.at(90).caller_hangs_up("c1")


def _blocked(centre: Centre) -> None:
    centre.queue("sales", when_unstaffed=WhenUnstaffed.BLOCK)
    centre.call("c1", "sales")


def _self_served(centre: Centre) -> None:
    centre.call("c1", "sales")
    centre.at(40).do(CallSelfServed(call_id=CallId("c1")))


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        (_answered, Outcome.ANSWERED),
        (_answered_caller_hung_up, Outcome.ANSWERED),
        (_answered_transferred_then_abandoned, Outcome.ANSWERED),
        (_answered_caller_hung_up_in_conference, Outcome.ANSWERED),
        (_abandoned, Outcome.ABANDONED),
        (_short_abandoned, Outcome.SHORT_ABANDONED),
        (_short_abandoned_while_ringing, Outcome.SHORT_ABANDONED),
        (_overflowed, Outcome.OVERFLOWED),
        (_blocked, Outcome.BLOCKED),
        (_self_served, Outcome.SELF_SERVED),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)).strip("_"),
)
def test_every_call_ends_with_exactly_one_outcome(scenario: Scenario, expected: Outcome) -> None:
    centre = Centre().queue("sales", short_abandon_seconds=10)

    scenario(centre)
    centre.at(1000)

    events = [e for e in centre.events_of(CallStateChanged) if e.call_id == "c1"]
    assert [e.outcome for e in events if e.outcome is not None] == [expected]
    assert (events[-1].to_state, events[-1].outcome) == (CallState.ENDED, expected)
    assert [e.to_state for e in events].count(CallState.ENDED) == 1
    assert centre.call_view("c1") is None


def test_short_abandon_follows_the_queue_s_threshold() -> None:
    centre = Centre().queue("patient", short_abandon_seconds=5).queue("hasty")
    centre.call("c1", "patient")
    centre.call("c2", "hasty")  # default threshold, 20 s

    centre.at(8).caller_hangs_up("c1")
    centre.caller_hangs_up("c2")

    outcomes = {e.call_id: e.outcome for e in centre.events_of(CallStateChanged) if e.outcome}
    assert outcomes == {"c1": Outcome.ABANDONED, "c2": Outcome.SHORT_ABANDONED}


# -- time and refused commands ---------------------------------------------------------------


def test_time_must_not_go_backwards() -> None:
    engine = Engine()
    engine.advance(10)

    with pytest.raises(ValueError):
        engine.advance(9)
    with pytest.raises(ValueError):
        engine.handle(CallSelfServed(call_id=CallId("c1")), 9.5)
    assert engine.advance(10).events == []


def snapshot(centre: Centre) -> tuple[object, ...]:
    engine = centre.engine
    return (
        [engine.agent(a) for a in engine.agent_ids()],
        [engine.call(c) for c in engine.call_ids()],
        [engine.queue_stats(q) for q in engine.queue_ids()],
        engine.next_deadline(),
    )


def one_queued_one_ringing() -> Centre:
    centre = Centre().queue("sales")
    centre.agent("ann", queues=["sales"])
    centre.call("ringing", "sales")
    centre.call("queued", "sales")
    return centre


@pytest.mark.parametrize(
    ("command", "error_id"),
    [
        (CallHeld(call_id=CallId("queued")), "wrong_state"),
        (CallHeld(call_id=CallId("ringing")), "wrong_state"),
        (CallRetrieved(call_id=CallId("queued")), "wrong_state"),
        (AgentHungUp(call_id=CallId("queued")), "wrong_state"),
        (AgentHungUp(call_id=CallId("ringing")), "wrong_state"),
        (CallHeld(call_id=CallId("nobody")), "unknown_call"),
        (CallSelfServed(call_id=CallId("nobody")), "unknown_call"),
    ],
    ids=lambda v: getattr(v, "call_id", v),
)
def test_a_command_wrong_for_the_call_s_state_is_refused_and_changes_nothing(
    command: Command, error_id: str
) -> None:
    centre = one_queued_one_ringing()
    before = snapshot(centre)
    seen = len(centre.events)

    with pytest.raises(CommandRejected) as refused:
        centre.do(command)

    assert refused.value.error_id == error_id
    assert snapshot(centre) == before
    assert len(centre.events) == seen
    centre.at(1).caller_hangs_up("queued")  # the numbering goes on without a gap
    assert [e.seq for e in centre.events] == list(range(1, len(centre.events) + 1))


def test_self_service_of_a_connected_call_is_refused_and_changes_nothing() -> None:
    centre = one_queued_one_ringing()
    centre.accept("ann", "ringing")
    before = snapshot(centre)

    with pytest.raises(CommandRejected) as refused:
        centre.do(CallSelfServed(call_id=CallId("ringing")))

    assert refused.value.error_id == "wrong_state"
    assert snapshot(centre) == before
