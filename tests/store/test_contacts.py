"""Contact legs derived from the stream, without a database (api.store.contacts)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from acd.commands import WrapUpFinished
from acd.events import CallStateChanged
from acd.ids import AgentId, CallId, CustomerId, QueueId
from acd.states import AgentState, CallState, Outcome
from acd.testing import Centre
from api.store.contacts import Legs, LegStarted, LiveLeg, WrapUpRecorded, project
from cti.context import CallOpened

from .streams import Stream

C = CallState
A = AgentState


def rows_of(stream: Stream, legs: Legs | None = None) -> dict[tuple[str, int], dict[str, Any]]:
    return project((legs or Legs()).derive_all(stream.items))


def test_an_answered_call_is_one_leg_with_its_times_agent_outcome_and_disposition() -> None:
    s = Stream()
    s.answered_call("c1", 100.0, "a1", customer="cust1", talk=60, wrap_up=10)
    rows = rows_of(s)
    assert list(rows) == [("c1", 1)]
    row = rows[("c1", 1)]
    assert row == {
        "call_id": "c1",
        "leg": 1,
        "queue_id": "q1",
        "customer_id": "cust1",
        "ani": "+15550100",
        "dnis": "+18005550199",
        "data": {},
        "arrived_at": 100.0,
        "enqueued_at": 100.0,
        "answered_at": 105.0,
        "agent_id": "a1",
        "ended_at": 165.0,
        "outcome": "answered",
        "ended_reason": "caller_hung_up",
        "disposition": "sale",
        "resolved": True,
        "wrap_up_ended_at": 175.0,
    }


def test_an_abandoned_call_ends_its_leg_unanswered() -> None:
    s = Stream()
    s.opened("c1", 10.0)
    s.call("c1", 10.0, None, C.ARRIVED)
    s.call("c1", 10.0, C.ARRIVED, C.QUEUED)
    s.call("c1", 50.0, C.QUEUED, C.ENDED, outcome=Outcome.ABANDONED, reason="caller_hung_up")
    row = rows_of(s)[("c1", 1)]
    assert (row["enqueued_at"], row["answered_at"], row["agent_id"]) == (10.0, None, None)
    assert (row["ended_at"], row["outcome"], row["ended_reason"]) == (
        50.0,
        "abandoned",
        "caller_hung_up",
    )


def test_a_blocked_call_ends_without_ever_being_queued() -> None:
    s = Stream()
    s.opened("c1", 1.0)
    s.call("c1", 1.0, None, C.ARRIVED)
    s.call("c1", 1.0, C.ARRIVED, C.ENDED, outcome=Outcome.BLOCKED, reason="queue_full")
    row = rows_of(s)[("c1", 1)]
    assert (row["enqueued_at"], row["outcome"], row["ended_reason"]) == (
        None,
        "blocked",
        "queue_full",
    )


def test_a_blind_transfer_to_a_queue_ends_the_leg_and_starts_a_second_in_that_queue() -> None:
    s = Stream()
    s.opened("c1", 0.0, "sales", customer="cust1", data={"order": "42"})
    s.call("c1", 0.0, None, C.ARRIVED, queue="sales")
    s.call("c1", 0.0, C.ARRIVED, C.QUEUED, queue="sales")
    s.call("c1", 3.0, C.QUEUED, C.OFFERED, queue="sales", agent="a1")
    s.call("c1", 4.0, C.OFFERED, C.CONNECTED, queue="sales", agent="a1")
    s.call("c1", 30.0, C.CONNECTED, C.QUEUED, queue="billing", reason="blind_transfer")
    s.call("c1", 35.0, C.QUEUED, C.OFFERED, queue="billing", agent="a2")
    s.call("c1", 36.0, C.OFFERED, C.CONNECTED, queue="billing", agent="a2")
    s.call(
        "c1",
        90.0,
        C.CONNECTED,
        C.ENDED,
        queue="billing",
        agent="a2",
        outcome=Outcome.ANSWERED,
        reason="agent_hung_up",
    )
    rows = rows_of(s)
    assert sorted(rows) == [("c1", 1), ("c1", 2)]
    first, second = rows[("c1", 1)], rows[("c1", 2)]
    assert (first["queue_id"], first["agent_id"], first["answered_at"]) == ("sales", "a1", 4.0)
    assert (first["ended_at"], first["outcome"], first["ended_reason"]) == (
        30.0,
        "transferred",
        "blind_transfer",
    )
    assert second["queue_id"] == "billing"
    assert (second["arrived_at"], second["enqueued_at"], second["answered_at"]) == (
        30.0,
        30.0,
        36.0,
    )
    assert (second["agent_id"], second["outcome"], second["ended_at"]) == ("a2", "answered", 90.0)
    # the call's context goes with it
    assert (second["customer_id"], second["ani"], second["data"]) == (
        "cust1",
        "+15550100",
        {"order": "42"},
    )


def test_a_consult_transfer_starts_a_leg_answered_by_the_new_agent_at_once() -> None:
    s = Stream()
    s.answered_call("c1", 0.0, "a1", wrap_up=None)
    s.items = s.items[:-2]  # cut before the hang-up: a1 is talking
    s.call("c1", 30.0, C.CONNECTED, C.HELD, agent="a1")  # a1 holds the caller, consults a2
    s.agent("a1", 30.0, A.TALKING, A.HELD, call="c1")
    s.call("c1", 40.0, C.HELD, C.CONNECTED, agent="a2", reason="consult_transfer")
    s.agent("a1", 40.0, A.HELD, A.WRAP_UP, call="c1")
    s.call(
        "c1",
        100.0,
        C.CONNECTED,
        C.ENDED,
        agent="a2",
        outcome=Outcome.ANSWERED,
        reason="caller_hung_up",
    )
    s.agent("a1", 45.0, A.WRAP_UP, A.IDLE, call="c1", disposition="escalated")
    s.agent("a2", 100.0, A.TALKING, A.WRAP_UP, call="c1")
    s.agent("a2", 110.0, A.WRAP_UP, A.IDLE, call="c1", disposition="solved", resolved=True)
    rows = rows_of(s)
    first, second = rows[("c1", 1)], rows[("c1", 2)]
    assert (first["outcome"], first["ended_reason"], first["ended_at"]) == (
        "transferred",
        "consult_transfer",
        40.0,
    )
    assert (first["disposition"], first["wrap_up_ended_at"]) == ("escalated", 45.0)
    assert (second["arrived_at"], second["answered_at"], second["agent_id"]) == (40.0, 40.0, "a2")
    assert second["enqueued_at"] is None
    assert (second["outcome"], second["disposition"], second["resolved"]) == (
        "answered",
        "solved",
        True,
    )


def test_wrap_up_lands_on_the_agents_latest_leg_of_that_call() -> None:
    s = Stream()
    s.answered_call("c1", 0.0, "a1", wrap_up=None)
    s.items = s.items[:-2]
    s.call("c1", 20.0, C.CONNECTED, C.QUEUED, reason="blind_transfer")
    s.agent("a1", 20.0, A.TALKING, A.WRAP_UP, call="c1")
    s.call("c1", 21.0, C.QUEUED, C.OFFERED, agent="a2")
    s.call("c1", 22.0, C.OFFERED, C.CONNECTED, agent="a2")
    s.agent("a1", 30.0, A.WRAP_UP, A.IDLE, call="c1", disposition="transferred_to_billing")
    changes = Legs().derive_all(s.items)
    wrap = [c for c in changes if isinstance(c, WrapUpRecorded)]
    assert [(w.agent_id, w.leg, w.disposition) for w in wrap] == [
        ("a1", 1, "transferred_to_billing")
    ]
    rows = project(changes)
    assert rows[("c1", 1)]["disposition"] == "transferred_to_billing"
    assert rows[("c1", 2)]["disposition"] is None


def test_overflow_between_queues_moves_the_leg_to_the_new_queue() -> None:
    s = Stream()
    s.opened("c1", 0.0, "sales")
    s.call("c1", 0.0, None, C.ARRIVED, queue="sales")
    s.call("c1", 0.0, C.ARRIVED, C.QUEUED, queue="sales")
    s.call("c1", 60.0, C.QUEUED, C.QUEUED, queue="backup", reason="wait_over:sales")
    rows = rows_of(s)
    assert list(rows) == [("c1", 1)]
    assert (rows[("c1", 1)]["queue_id"], rows[("c1", 1)]["enqueued_at"]) == ("backup", 0.0)


def test_a_call_without_a_note_gets_its_leg_from_its_first_event() -> None:
    s = Stream()
    s.call("c9", 5.0, None, C.ARRIVED)
    s.call("c9", 5.0, C.ARRIVED, C.QUEUED)
    changes = Legs().derive_all(s.items)
    assert changes[0] == LegStarted(
        call_id="c9",
        leg=1,
        queue_id="q1",
        customer_id=None,
        ani="",
        dnis="",
        data={},
        arrived_at=5.0,
    )
    assert rows_of(s)[("c9", 1)]["enqueued_at"] == 5.0


def test_reservations_and_agent_changes_without_a_wrap_up_change_no_leg() -> None:
    s = Stream()
    s.agent("a1", 0.0, A.IDLE, A.NOT_RESPONDING)
    s.agent("a1", 1.0, A.IDLE, A.RESERVED, call="c1")
    assert Legs().derive_all(s.items) == []


def test_a_resumed_fold_continues_a_live_leg_from_the_database() -> None:
    legs = Legs()
    legs.resume(
        [
            LiveLeg(
                call_id=CallId("c1"),
                leg=2,
                queue_id=QueueId("q1"),
                agent_id=AgentId("a1"),
                customer_id=None,
                ani="+1",
                dnis="+2",
                data={},
                state="connected",
            )
        ]
    )
    s = Stream(first_seq=100)
    s.call("c1", 9.0, C.CONNECTED, C.ENDED, agent="a1", outcome=Outcome.ANSWERED, reason="x")
    changes = legs.derive_all(s.items)
    assert [(c.call_id, c.leg) for c in changes if not isinstance(c, WrapUpRecorded)] == [("c1", 2)]
    assert legs.live_calls == 0


def test_the_engines_own_stream_gives_one_answered_leg_with_its_disposition() -> None:
    centre = Centre().queue("q1", wrap_up_seconds=30)
    centre.agent("a1", queues=["q1"])
    note = CallOpened(call_id=CallId("c1"), queue_id=QueueId("q1"), at=10.0, ani="+1555")
    start = len(centre.events)
    centre.at(10.0).call("c1", "q1", ani="+1555")
    centre.at(12.0).accept("a1", "c1")
    centre.at(70.0).agent_hangs_up("c1")
    centre.at(80.0).do(WrapUpFinished(agent_id=AgentId("a1"), disposition="info", resolved=False))
    legs = Legs()
    legs.derive_all(centre.events[:start])  # the agent's log-in: no legs
    rows = project(legs.derive_all([note, *centre.events[start:]]))
    row = rows[("c1", 1)]
    assert (row["ani"], row["enqueued_at"], row["answered_at"], row["agent_id"]) == (
        "+1555",
        10.0,
        12.0,
        "a1",
    )
    assert (row["ended_at"], row["outcome"], row["ended_reason"]) == (
        70.0,
        "answered",
        "agent_hung_up",
    )
    assert (row["disposition"], row["resolved"], row["wrap_up_ended_at"]) == ("info", False, 80.0)


def test_the_customer_on_the_first_event_fills_a_leg_the_note_left_without_one() -> None:
    if "customer_id" not in CallStateChanged.__dataclass_fields__:
        pytest.skip("the core's events carry no customer_id yet")
    s = Stream()
    s.opened("c1", 0.0)  # no customer known to the note
    first = s.call("c1", 0.0, None, C.ARRIVED)
    s.items[-1] = dataclasses.replace(first, customer_id=CustomerId("cust9"))
    s.call("c1", 0.0, C.ARRIVED, C.QUEUED)
    assert rows_of(s)[("c1", 1)]["customer_id"] == "cust9"
    s2 = Stream()
    bare = s2.call("c2", 0.0, None, C.ARRIVED)
    s2.items[-1] = dataclasses.replace(bare, customer_id=CustomerId("cust8"))
    assert rows_of(s2)[("c2", 1)]["customer_id"] == "cust8"


def test_a_caller_who_asks_for_a_callback_stays_one_contact_answered_when_reached() -> None:
    s = Stream()
    s.opened("c1", 10.0)
    s.call("c1", 10.0, None, C.ARRIVED)
    s.call("c1", 10.0, C.ARRIVED, C.QUEUED)
    s.call("c1", 40.0, C.QUEUED, C.CALLBACK_QUEUED, reason="callback_requested")
    s.call("c1", 90.0, C.CALLBACK_QUEUED, C.CALLBACK_OFFERED, agent="a1")
    s.call("c1", 95.0, C.CALLBACK_OFFERED, C.DIALING, agent="a1")
    s.call("c1", 110.0, C.DIALING, C.CONNECTED, agent="a1")
    s.call("c1", 170.0, C.CONNECTED, C.ENDED, agent="a1", outcome=Outcome.ANSWERED)
    rows = rows_of(s)
    assert list(rows) == [("c1", 1)]
    row = rows[("c1", 1)]
    assert (row["enqueued_at"], row["answered_at"], row["agent_id"]) == (10.0, 95.0, "a1")
    assert row["outcome"] == "answered"


def test_a_callback_booked_in_the_ivr_is_enqueued_and_may_end_unreached() -> None:
    s = Stream()
    s.opened("b1", 5.0)
    s.call("b1", 5.0, None, C.ARRIVED)
    s.call("b1", 5.0, C.ARRIVED, C.CALLBACK_QUEUED, reason="callback_booked")
    s.call("b1", 60.0, C.CALLBACK_QUEUED, C.CALLBACK_OFFERED, agent="a1")
    s.call("b1", 62.0, C.CALLBACK_OFFERED, C.DIALING, agent="a1")
    s.call(
        "b1", 92.0, C.DIALING, C.ENDED, agent="a1", outcome=Outcome.CALLBACK_FAILED, reason="busy"
    )
    row = rows_of(s)[("b1", 1)]
    assert (row["enqueued_at"], row["answered_at"], row["agent_id"]) == (5.0, 62.0, "a1")
    assert (row["outcome"], row["ended_reason"]) == ("callback_failed", "busy")
