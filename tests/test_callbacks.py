"""Callback tasks: a waiting caller's request keeps their place; bookings from the IVR menu.

Scenario tests with a numeric clock, driving the engine through its commands
and reading its events, actions and views; the KPIs are folded from the
engine's own events.
"""

from __future__ import annotations

import pytest

from acd.actions import ConnectCall, OfferCall, PlayAnnouncement, RejectCall, RetractOffer
from acd.commands import (
    AgentHungUp,
    AgentWentReady,
    CallbackAnswered,
    CallbackFailed,
    CallbackRequested,
    CallerHungUp,
    CallSelfServed,
    DisasterModeChanged,
)
from acd.config import OverflowCondition, OverflowRule, Target
from acd.errors import CommandRejected
from acd.events import CallStateChanged, ReservationStateChanged
from acd.ids import AgentId, CallId, QueueId
from acd.kpis import KpiFold
from acd.states import AgentState, CallState, Outcome
from acd.testing import Centre


def _callback(call_id: str, number: str = "5551234") -> CallbackRequested:
    return CallbackRequested(call_id=CallId(call_id), number=number)


def _last_event_of(centre: Centre, call_id: str) -> CallStateChanged:
    return [e for e in centre.events_of(CallStateChanged) if e.call_id == call_id][-1]


def _three_waiting(**queue: object) -> Centre:
    centre = Centre().queue("sales", **queue)
    centre.agent("ann", queues=["sales"], ready=False)
    centre.at(0).call("c1", "sales")
    centre.at(1).call("c2", "sales")
    centre.at(2).call("c3", "sales")
    return centre


def _ann_is_ready(centre: Centre) -> None:
    centre.do(AgentWentReady(agent_id=AgentId("ann")))


def test_a_callback_requested_by_the_first_of_three_waiting_callers_is_offered_first() -> None:
    centre = _three_waiting()
    centre.at(10).do(_callback("c1"))

    view = centre.call_view("c1")
    assert view is not None
    assert view.state is CallState.CALLBACK_QUEUED
    assert view.position == 1
    assert view.enqueued_at == 0
    assert view.callback_number == "5551234"
    assert centre.engine.queue_stats(QueueId("sales")).callbacks == 1

    _ann_is_ready(centre)
    offer = centre.offers()[-1]
    assert (offer.call_id, offer.callback_number) == ("c1", "5551234")
    assert centre.call_view("c1").state is CallState.CALLBACK_OFFERED  # type: ignore[union-attr]
    pending = centre.events_of(ReservationStateChanged)[-1]
    assert pending.callback_number == "5551234"


def test_the_callers_behind_a_callback_keep_their_positions() -> None:
    centre = _three_waiting()
    centre.at(10).do(_callback("c2"))
    assert [centre.call_view(c).position for c in ("c1", "c2", "c3")] == [1, 2, 3]  # type: ignore[union-attr]


def test_an_agent_taking_a_callback_dials_and_the_call_connects_when_the_customer_answers() -> None:
    centre = _three_waiting()
    centre.at(10).do(_callback("c1"))
    _ann_is_ready(centre)
    centre.at(12).accept("ann", "c1")

    connect = centre.actions_of(ConnectCall)[-1]
    assert connect == ConnectCall(
        call_id=CallId("c1"), agent_id=AgentId("ann"), callback_number="5551234"
    )
    assert centre.call_view("c1").state is CallState.DIALING  # type: ignore[union-attr]
    assert centre.agent_view("ann").state is AgentState.TALKING

    centre.at(20).do(CallbackAnswered(call_id=CallId("c1")))
    assert centre.call_view("c1").state is CallState.CONNECTED  # type: ignore[union-attr]
    centre.at(80).agent_hangs_up("c1")
    ended = _last_event_of(centre, "c1")
    assert (ended.to_state, ended.outcome) == (CallState.ENDED, Outcome.ANSWERED)
    assert centre.offers()[-1].call_id == "c2"  # then the next caller


def test_a_callback_the_customer_does_not_answer_ends_with_its_own_outcome() -> None:
    centre = _three_waiting(wrap_up_seconds=0)
    centre.at(10).do(_callback("c1"))
    _ann_is_ready(centre)
    centre.at(12).accept("ann", "c1")
    centre.at(40).do(CallbackFailed(call_id=CallId("c1"), reason="no_answer"))

    ended = _last_event_of(centre, "c1")
    assert (ended.from_state, ended.to_state) == (CallState.DIALING, CallState.ENDED)
    assert (ended.outcome, ended.reason) == (Outcome.CALLBACK_FAILED, "no_answer")
    assert centre.call_view("c1") is None
    assert centre.offers()[-1].call_id == "c2"  # the agent is free for the next one


def test_an_agent_who_hangs_up_while_dialing_ends_the_callback_unreached() -> None:
    centre = _three_waiting()
    centre.at(10).do(_callback("c1"))
    _ann_is_ready(centre)
    centre.at(12).accept("ann", "c1")
    centre.at(15).do(AgentHungUp(call_id=CallId("c1")))
    ended = _last_event_of(centre, "c1")
    assert (ended.outcome, ended.reason) == (Outcome.CALLBACK_FAILED, "agent_hung_up")


def test_a_callback_rejected_or_unanswered_by_the_agent_goes_back_to_its_place() -> None:
    centre = _three_waiting(ring_timeout_seconds=15)
    centre.at(10).do(_callback("c2"))
    _ann_is_ready(centre)  # c1 first
    centre.at(11).accept("ann", "c1")
    centre.at(20).agent_hangs_up("c1")  # (no wrap-up by default)
    assert centre.offers()[-1].call_id == "c2"
    centre.at(21).reject("ann", "c2")
    moves = [(e.from_state, e.to_state) for e in centre.events_of(CallStateChanged)]
    assert moves[-2:] == [
        (CallState.CALLBACK_OFFERED, CallState.CALLBACK_QUEUED),
        (CallState.CALLBACK_QUEUED, CallState.CALLBACK_OFFERED),  # ann is the only one
    ]
    view = centre.call_view("c2")
    assert view is not None
    assert view.enqueued_at == 1  # its place in time, as before
    assert centre.offers()[-1].callback_number == "5551234"


def test_a_caller_whose_offer_is_ringing_can_still_ask_for_a_callback() -> None:
    centre = Centre().queue("sales")
    centre.agent("ann", queues=["sales"])
    centre.at(0).call("c1", "sales")
    assert centre.offers()[-1].callback_number is None
    centre.at(3).do(_callback("c1", "+4912345"))

    retracted = centre.actions_of(RetractOffer)[-1]
    assert retracted.call_id == "c1"
    offer = centre.offers()[-1]  # offered again, now as a callback task
    assert (offer.call_id, offer.callback_number) == ("c1", "+4912345")


def test_a_callback_task_hears_no_announcements_and_never_overflows() -> None:
    centre = _three_waiting(
        announce_every_seconds=30,
        overflow=(
            OverflowRule(
                when=OverflowCondition.WAIT_OVER, seconds=60, target=Target(site="sip:b@x")
            ),
        ),
    )
    centre.at(10).do(_callback("c1"))
    heard = len([a for a in centre.actions_of(PlayAnnouncement) if a.call_id == "c1"])
    centre.at(300)
    assert len([a for a in centre.actions_of(PlayAnnouncement) if a.call_id == "c1"]) == heard
    assert centre.call_view("c1").state is CallState.CALLBACK_QUEUED  # type: ignore[union-attr]
    assert centre.call_view("c2") is None  # the callers overflowed; the callback stayed


def test_nobody_is_on_the_line_of_a_callback_task_to_hang_up() -> None:
    centre = _three_waiting()
    centre.at(10).do(_callback("c1"))
    refusal = centre.refused(CallerHungUp(call_id=CallId("c1")))
    assert refusal.error_id == "no_caller"
    assert centre.refused(CallSelfServed(call_id=CallId("c1"))).error_id == "wrong_state"
    assert centre.refused(_callback("c1")).error_id == "wrong_state"


@pytest.mark.parametrize("number", ["", "12", "abc123", "5551234;x", "1" * 21])
def test_a_callback_number_that_cannot_be_dialled_is_refused(number: str) -> None:
    centre = _three_waiting()
    assert centre.refused(_callback("c1", number)).error_id == "invalid_number"


def test_a_booking_from_the_ivr_menu_enters_the_queue_as_a_callback_task() -> None:
    centre = _three_waiting()
    centre.at(5).call("b1", "sales", callback_number="5559876")
    view = centre.call_view("b1")
    assert view is not None
    assert (view.state, view.position) == (CallState.CALLBACK_QUEUED, 4)
    first = [e for e in centre.events_of(CallStateChanged) if e.call_id == "b1"]
    assert [(e.from_state, e.to_state) for e in first] == [
        (None, CallState.ARRIVED),
        (CallState.ARRIVED, CallState.CALLBACK_QUEUED),
    ]
    assert first[1].callback_number == "5559876"


def test_a_booking_in_disaster_mode_is_refused_rather_than_sent_to_the_backup_site() -> None:
    centre = Centre().queue("sales")
    centre.do(DisasterModeChanged(active=True, site="sip:backup@example.com"))
    centre.call("b1", "sales", callback_number="5559876")
    assert centre.actions_of(RejectCall)[-1].call_id == "b1"
    assert centre.events_of(CallStateChanged)[-1].outcome is Outcome.BLOCKED


def test_kpis_a_callback_is_not_an_abandon_and_a_reached_one_is_answered() -> None:
    centre = _three_waiting(wrap_up_seconds=0)
    centre.at(10).do(_callback("c1"))
    centre.at(11).do(_callback("c2", "5550002"))
    _ann_is_ready(centre)  # at 11: c1 offered
    centre.at(15).accept("ann", "c1")
    centre.at(25).do(CallbackAnswered(call_id=CallId("c1")))
    centre.at(85).agent_hangs_up("c1")  # 60 s of talk
    centre.at(86).accept("ann", "c2")
    centre.at(100).do(CallbackFailed(call_id=CallId("c2"), reason="busy"))
    centre.at(101).caller_hangs_up("c3")  # (c3 was offered to ann at 100)

    fold = KpiFold()
    fold.extend(centre.events)
    sales = fold.totals().per_queue[QueueId("sales")]
    assert sales.offered == 3
    assert (sales.answered, sales.callback_failed, sales.callbacks) == (1, 1, 2)
    assert sales.abandoned == 1  # c3, the caller who really hung up
    assert sales.asa_seconds == 15  # from its queueing at 0 to ann taking the task
    assert sales.avg_talk_seconds == 60  # from the customer's answer


def test_every_call_ends_once_when_a_callback_is_live_at_a_restart() -> None:
    centre = _three_waiting()
    centre.at(10).do(_callback("c1"))
    restarted = Centre()
    restarted.engine.continue_sequence(centre.events[-1].seq)
    step = restarted.engine.close_interrupted(
        call_id=CallId("c1"),
        queue_id=QueueId("sales"),
        from_state=CallState.CALLBACK_QUEUED,
        agent_id=None,
        now=20,
    )
    (ended,) = step.events
    assert isinstance(ended, CallStateChanged)
    assert ended.outcome is Outcome.INTERRUPTED


def test_offer_actions_of_ordinary_calls_carry_no_callback_number() -> None:
    centre = Centre().queue("sales")
    centre.agent("ann", queues=["sales"])
    centre.call("c1", "sales")
    offer: OfferCall = centre.offers()[-1]
    assert offer.callback_number is None
    centre.accept("ann", "c1")
    assert centre.actions_of(ConnectCall)[-1].callback_number is None


def test_a_callback_task_waiting_at_a_restart_is_put_back_in_its_place() -> None:
    centre = Centre()
    centre.engine.continue_sequence(100)
    centre.queue("sales").agent("ann", queues=["sales"], ready=False)
    centre.at(50).call("c9", "sales")  # arrived in this process, after the task
    step = centre.engine.restore_callback(
        call_id=CallId("c1"),
        queue_id=QueueId("sales"),
        from_state=CallState.CALLBACK_OFFERED,
        number="5551234",
        enqueued_at=10,
        now=60,
    )
    centre.events.extend(step.events)
    (restored,) = step.events
    assert isinstance(restored, CallStateChanged)
    assert (restored.from_state, restored.to_state, restored.reason) == (
        CallState.CALLBACK_OFFERED,
        CallState.CALLBACK_QUEUED,
        "restored",
    )
    assert centre.call_view("c1").position == 1  # type: ignore[union-attr]
    centre.at(61)
    _ann_is_ready(centre)
    offer = centre.offers()[-1]
    assert (offer.call_id, offer.callback_number) == ("c1", "5551234")


@pytest.mark.parametrize("state", [CallState.QUEUED, CallState.DIALING, CallState.CONNECTED])
def test_only_a_waiting_callback_task_can_be_put_back(state: CallState) -> None:
    centre = Centre().queue("sales")
    with pytest.raises(CommandRejected):
        centre.engine.restore_callback(
            call_id=CallId("c1"),
            queue_id=QueueId("sales"),
            from_state=state,
            number="5551234",
            enqueued_at=0,
            now=1,
        )
    assert centre.call_view("c1") is None
