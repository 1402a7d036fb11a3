"""Restore after a restart: the event sequence goes on, dead calls are closed, affinity is kept."""

from __future__ import annotations

import pytest

from acd.commands import CallSelfServed
from acd.config import AffinityMode
from acd.engine import Engine
from acd.errors import CommandRejected
from acd.events import CallStateChanged
from acd.ids import AgentId, CallId, CustomerId, QueueId
from acd.kpis import KpiFold
from acd.states import CallState, Outcome
from acd.testing import Centre

SALES = QueueId("sales")


def close(engine: Engine, call: str, from_state: CallState, now: float = 0.0) -> CallStateChanged:
    step = engine.close_interrupted(
        call_id=CallId(call),
        queue_id=SALES,
        from_state=from_state,
        agent_id=AgentId("ann"),
        now=now,
    )
    [event] = step.events
    assert isinstance(event, CallStateChanged) and step.actions == []
    return event


# -- continue_sequence -----------------------------------------------------------------------


def test_the_first_event_after_continue_sequence_follows_the_stored_ones() -> None:
    centre = Centre()
    centre.engine.continue_sequence(41)

    centre.queue("sales").agent("ann", queues=["sales"])
    centre.call("c1", "sales")

    assert [e.seq for e in centre.events] == list(range(42, 42 + len(centre.events)))


def test_continue_sequence_may_be_given_again_until_an_event_is_numbered() -> None:
    engine = Engine()
    engine.continue_sequence(10)
    engine.continue_sequence(20)

    assert close(engine, "c1", CallState.QUEUED).seq == 21


def test_continue_sequence_after_an_event_is_refused() -> None:
    centre = Centre().queue("sales").agent("ann", queues=["sales"])

    with pytest.raises(ValueError):
        centre.engine.continue_sequence(100)
    centre.call("c1", "sales")
    assert [e.seq for e in centre.events] == list(range(1, len(centre.events) + 1))


def test_continue_sequence_refuses_a_negative_number() -> None:
    with pytest.raises(ValueError):
        Engine().continue_sequence(-1)


# -- close_interrupted -----------------------------------------------------------------------


def test_close_interrupted_ends_a_dead_call_with_one_event_and_the_next_seq() -> None:
    engine = Engine()
    engine.continue_sequence(7)

    event = close(engine, "c1", CallState.CONNECTED, now=50)

    assert event == CallStateChanged(
        seq=8,
        at=50,
        call_id=CallId("c1"),
        queue_id=SALES,
        from_state=CallState.CONNECTED,
        to_state=CallState.ENDED,
        outcome=Outcome.INTERRUPTED,
        agent_id=AgentId("ann"),
        reason="interrupted",
    )
    assert engine.call(CallId("c1")) is None
    assert list(engine.call_ids()) == [] and engine.next_deadline() is None


@pytest.mark.parametrize(
    "state", [s for s in CallState if s is not CallState.ENDED], ids=lambda s: s.value
)
def test_a_call_in_any_live_state_can_be_closed_as_interrupted(state: CallState) -> None:
    assert close(Engine(), "c1", state).from_state is state


def test_close_interrupted_changes_nothing_else() -> None:
    centre = Centre().queue("sales").agent("ann", queues=["sales"])
    centre.call("c1", "sales")
    before = centre.snapshot()[:4]

    step = centre.engine.close_interrupted(
        call_id=CallId("dead"), queue_id=SALES, from_state=CallState.HELD, agent_id=None, now=0
    )

    assert centre.snapshot()[:4] == before
    assert [e.seq for e in step.events] == [len(centre.events) + 1]


def test_close_interrupted_refuses_a_call_the_engine_holds() -> None:
    centre = Centre().queue("sales")
    centre.call("c1", "sales")
    before = centre.snapshot()

    with pytest.raises(CommandRejected) as refused:
        close(centre.engine, "c1", CallState.QUEUED)

    assert refused.value.error_id == "call_exists"
    assert centre.snapshot() == before


def test_close_interrupted_refuses_a_call_that_was_not_live() -> None:
    with pytest.raises(CommandRejected) as refused:
        close(Engine(), "c1", CallState.ENDED)

    assert (refused.value.error_id, refused.value.state) == ("wrong_state", "ended")


def test_close_interrupted_keeps_time_moving_forward_and_fires_due_timers_first() -> None:
    centre = Centre().queue("sales", ring_timeout_seconds=10).agent("ann", queues=["sales"])
    centre.call("c1", "sales")  # rings ann until 10

    step = centre.engine.close_interrupted(
        call_id=CallId("dead"), queue_id=SALES, from_state=CallState.QUEUED, agent_id=None, now=30
    )

    assert [type(e).__name__ for e in step.events][-1] == "CallStateChanged"
    assert step.events[0].at == 10  # the ring-no-answer, before
    with pytest.raises(ValueError):
        centre.engine.close_interrupted(
            call_id=CallId("x"), queue_id=SALES, from_state=CallState.QUEUED, agent_id=None, now=29
        )
    with pytest.raises(ValueError):
        centre.engine.handle(CallSelfServed(call_id=CallId("c1")), 29)


def test_an_interrupted_call_is_counted_apart_from_the_offered_calls() -> None:
    engine = Engine()
    kpis = KpiFold()

    kpis.add(close(engine, "c1", CallState.CONNECTED, now=5))

    totals = kpis.totals()
    assert (totals.overall.offered, totals.overall.interrupted, totals.in_progress) == (0, 1, 0)


# -- remember_last_agent -------------------------------------------------------------------


def test_a_remembered_last_agent_takes_the_known_customer_s_call() -> None:
    centre = Centre().queue("sales", affinity=AffinityMode.LAST_AGENT)
    centre.agent("ann", queues=["sales"])  # idle longest
    centre.agent("bob", queues=["sales"])
    seen = len(centre.events)

    centre.engine.remember_last_agent(CustomerId("k1"), AgentId("bob"))

    assert len(centre.events) == seen  # no event
    assert centre.engine.last_agent(CustomerId("k1")) == "bob"
    centre.call("c1", "sales", customer_id=CustomerId("k1"))
    centre.call("c2", "sales")
    assert (centre.offered_to("c1"), centre.offered_to("c2")) == (["bob"], ["ann"])


def test_a_remembered_last_agent_is_replaced_by_whoever_answers_next() -> None:
    centre = Centre().queue("sales", affinity=AffinityMode.LAST_AGENT)
    centre.agent("ann", queues=["sales"])
    centre.engine.remember_last_agent(CustomerId("k1"), AgentId("gone"))  # no longer here

    centre.call("c1", "sales", customer_id=CustomerId("k1"))
    centre.accept("ann", "c1")

    assert centre.engine.last_agent(CustomerId("k1")) == "ann"


# -- the creation event carries the customer ----------------------------------------------------


def test_a_call_s_first_event_names_its_customer_and_later_ones_do_not() -> None:
    centre = Centre().queue("sales").agent("ann", queues=["sales"])

    centre.call("c1", "sales", customer_id=CustomerId("k1"))
    centre.call("c2", "sales")

    first = {
        e.call_id: e.customer_id for e in centre.events_of(CallStateChanged) if e.from_state is None
    }
    assert first == {"c1": "k1", "c2": None}
    later = [e for e in centre.events_of(CallStateChanged) if e.from_state is not None]
    assert later and all(e.customer_id is None for e in later)
