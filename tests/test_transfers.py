"""Transfers: blind to a queue or an agent, consultations, conferences, and what they count."""

from __future__ import annotations

import pytest

from acd.actions import ConnectCall, OfferCall, RetractOffer
from acd.commands import (
    AgentLeftConference,
    CallHeld,
    CallRetrieved,
    CallTransferred,
    Command,
    ConferenceStarted,
    ConsultCancelled,
    ConsultStarted,
    OfferAccepted,
    TransferCompleted,
)
from acd.config import AffinityMode, OverflowCondition, OverflowRule, Target, WhenUnstaffed
from acd.events import AgentStateChanged, CallStateChanged, ReservationStateChanged
from acd.ids import AgentId, CallId, CustomerId, QueueId
from acd.kpis import KpiFold
from acd.states import AgentState, CallState, ConsultState, Outcome
from acd.testing import Centre

C1 = CallId("c1")
ANN, BOB, CY = AgentId("ann"), AgentId("bob"), AgentId("cy")
TECH = QueueId("tech")
IDLE, RESERVED, TALKING = AgentState.IDLE, AgentState.RESERVED, AgentState.TALKING
HELD, WRAP_UP = AgentState.HELD, AgentState.WRAP_UP


def centre_with_ann_on_c1(**sales: object) -> Centre:
    """ann talks to c1 (sales, 5 s wrap-up unless told otherwise); bob serves tech, cy both."""
    centre = Centre().queue("sales", **{"wrap_up_seconds": 5, **sales}).queue("tech", priority=3)
    centre.agent("ann", queues=["sales"])
    centre.call("c1", "sales", customer_id=CustomerId("k1"), ani="5551234", dnis="800")
    centre.accept("ann", "c1")
    centre.agent("bob", queues=["tech"])
    centre.agent("cy", queues=["sales", "tech"])
    return centre.at(10)


def call_events(centre: Centre, since: int = 0) -> list[CallStateChanged]:
    return [e for e in centre.events[since:] if isinstance(e, CallStateChanged)]


def agent_events(centre: Centre, agent: str, since: int = 0) -> list[AgentStateChanged]:
    return [
        e for e in centre.events[since:] if isinstance(e, AgentStateChanged) and e.agent_id == agent
    ]


def transferred(centre: Centre) -> CallStateChanged:
    """The latest blind transfer."""
    return [e for e in call_events(centre) if e.reason == "blind_transfer"][-1]


def state_of(centre: Centre, agent: str) -> AgentState:
    return centre.agent_view(agent).state


def consulting(centre: Centre, accept: bool = True) -> Centre:
    """ann (sales) consults bob about c1, and bob answers unless told not to."""
    centre.consult("c1", "bob")
    if accept:
        centre.after(2).accept("bob", "c1")
    return centre


def fold(centre: Centre) -> KpiFold:
    kpis = KpiFold()
    kpis.extend(centre.events)
    return kpis


# -- blind transfer to a queue ---------------------------------------------------------------


def test_a_blind_transfer_sends_the_caller_back_to_queue_in_the_target_queue() -> None:
    centre = centre_with_ann_on_c1()
    centre.call("c2", "tech")  # to bob
    centre.call("c3", "tech")  # to cy: nobody is free in tech

    centre.transfer("c1", queue="tech")

    moved = transferred(centre)

    assert (moved.from_state, moved.to_state, moved.queue_id) == (
        CallState.CONNECTED,
        CallState.QUEUED,
        "tech",
    )
    assert (moved.agent_id, moved.reason) == ("ann", "blind_transfer")
    view = centre.call_view("c1")
    assert view is not None
    assert (view.queue_id, view.state, view.agent_id) == ("tech", CallState.QUEUED, None)
    assert (view.enqueued_at, view.priority, view.position) == (10, 3, 1)  # a fresh wait


def test_a_call_transferred_to_a_queue_is_offered_at_once_to_an_idle_agent_there() -> None:
    centre = centre_with_ann_on_c1()

    centre.transfer("c1", queue="tech")

    assert centre.offered_to("c1") == ["ann", "bob"]  # bob has been idle longest in tech
    assert centre.offers()[-1].deadline == 10 + 15


def test_the_transferring_agent_wraps_up_as_after_a_hang_up() -> None:
    centre = centre_with_ann_on_c1()

    centre.transfer("c1", queue="tech")

    [ended] = agent_events(centre, "ann")[-1:]
    assert (ended.from_state, ended.to_state) == (TALKING, WRAP_UP)
    assert (ended.call_id, ended.reason) == ("c1", "blind_transfer")
    assert centre.agent_view("ann").call_id == "c1"
    centre.at(15)
    assert state_of(centre, "ann") is IDLE


def test_wrap_up_finished_after_a_transfer_carries_the_disposition_of_the_call_handed_on() -> None:
    centre = centre_with_ann_on_c1(wrap_up_seconds=60)
    centre.transfer("c1", queue="tech")
    centre.after(2).accept("bob", "c1")

    centre.after(3).finish_wrap_up("ann", disposition="sent_to_tech")

    last = agent_events(centre, "ann")[-1]
    assert (last.to_state, last.call_id, last.disposition) == (IDLE, "c1", "sent_to_tech")
    view = centre.call_view("c1")
    assert view is not None and (view.state, view.agent_id) == (CallState.CONNECTED, "bob")


def test_without_wrap_up_the_transferring_agent_is_idle_at_once() -> None:
    centre = centre_with_ann_on_c1(wrap_up_seconds=0)

    centre.transfer("c1", queue="tech")

    last = agent_events(centre, "ann")[-1]
    assert (last.from_state, last.to_state, last.reason) == (TALKING, IDLE, "blind_transfer")
    assert centre.agent_view("ann").call_id is None


def test_a_held_call_can_be_transferred_blind() -> None:
    centre = centre_with_ann_on_c1()
    centre.hold("c1")

    centre.transfer("c1", queue="tech")

    assert transferred(centre).from_state is CallState.HELD
    assert (agent_events(centre, "ann")[-1].from_state, state_of(centre, "ann")) == (HELD, WRAP_UP)


def test_a_transferred_call_keeps_its_id_customer_and_numbers() -> None:
    centre = centre_with_ann_on_c1()
    centre.transfer("c1", queue="tech", note="refund")

    centre.accept("bob", "c1")

    view = centre.call_view("c1")
    assert view is not None
    assert (view.customer_id, view.ani, view.dnis) == ("k1", "5551234", "800")
    assert view.transfer_note == "refund"
    assert centre.engine.last_agent(CustomerId("k1")) == "bob"  # who answered most recently


def test_a_call_that_brought_its_own_priority_keeps_it_in_the_new_queue() -> None:
    centre = Centre().queue("sales").queue("tech", priority=3)
    centre.agent("ann", queues=["sales"])
    centre.call("c1", "sales", priority=9)
    centre.accept("ann", "c1")

    centre.transfer("c1", queue="tech")

    assert centre.call_view("c1").priority == 9  # type: ignore[union-attr]


def test_the_target_queue_s_wait_limits_count_from_the_transfer() -> None:
    rule = OverflowRule(
        when=OverflowCondition.WAIT_OVER, seconds=30, target=Target(site="sip:b@backup.example")
    )
    centre = Centre().queue("sales").queue("tech", overflow=(rule,))
    centre.call("c1", "sales")
    centre.at(100).agent("ann", queues=["sales"])
    centre.accept("ann", "c1")
    centre.at(200).transfer("c1", queue="tech")  # 200 s after it first queued

    assert centre.engine.next_deadline() == 230
    centre.at(230)
    assert centre.call_view("c1") is None


def test_affinity_never_holds_a_transferred_call_for_the_agent_who_sent_it() -> None:
    centre = Centre().queue("sales", wrap_up_seconds=5)
    centre.queue("tech", affinity=AffinityMode.LAST_AGENT, affinity_window_seconds=60)
    centre.agent("ann", queues=["sales", "tech"])
    centre.agent("bob", queues=["tech"])
    centre.call("c1", "sales", customer_id=CustomerId("k1"))
    centre.accept("ann", "c1")
    centre.call("c2", "tech")
    centre.accept("bob", "c2")

    centre.at(10).transfer("c1", queue="tech")  # ann, k1's last agent, wraps up until 15

    view = centre.call_view("c1")
    assert view is not None and view.waiting_for is None  # not held for ann
    centre.at(12).agent_hangs_up("c2")
    assert centre.offered_to("c1") == ["ann", "bob"]


def test_the_transferred_leg_counts_in_the_queue_s_handle_times() -> None:
    centre = centre_with_ann_on_c1(wrap_up_seconds=0)

    centre.at(40).transfer("c1", queue="tech")

    assert centre.engine.queue_stats(QueueId("sales")).aht_seconds == 40


def test_a_transferred_call_the_caller_abandons_keeps_its_answered_outcome() -> None:
    centre = centre_with_ann_on_c1()
    centre.call("c2", "tech")  # bob is busy: c1 waits in tech
    centre.accept("bob", "c2")
    centre.do(CallTransferred(call_id=C1, queue_id=QueueId("tech")))
    centre.agent_hangs_up("c2")  # (bob takes c1 now, and lets it ring)

    centre.after(3).caller_hangs_up("c1")

    ended = [e for e in call_events(centre) if e.call_id == "c1" and e.outcome is not None]
    assert [(e.outcome, e.reason) for e in ended] == [(Outcome.ANSWERED, "caller_hung_up")]


@pytest.mark.parametrize(
    ("command", "error_id"),
    [
        (CallTransferred(call_id=C1), "bad_target"),
        (CallTransferred(call_id=C1, queue_id=TECH, agent_id=BOB), "bad_target"),
        (CallTransferred(call_id=CallId("nope"), queue_id=TECH), "unknown_call"),
        (CallTransferred(call_id=C1, queue_id=QueueId("nowhere")), "unknown_queue"),
        (CallTransferred(call_id=CallId("c9"), queue_id=TECH), "wrong_state"),
        (CallTransferred(call_id=C1, queue_id=QueueId("full")), "queue_full"),
        (CallTransferred(call_id=C1, queue_id=QueueId("closed")), "unstaffed"),
    ],
    ids=lambda v: getattr(v, "queue_id", None) or str(v),
)
def test_a_blind_transfer_that_can_t_be_made_is_refused_and_changes_nothing(
    command: Command, error_id: str
) -> None:
    centre = centre_with_ann_on_c1()
    centre.queue("full", max_size=1).queue("closed", when_unstaffed=WhenUnstaffed.BLOCK)
    centre.call("waiting", "full")
    centre.call("c9", "sales")  # queued: ann is busy, cy rings

    assert centre.refused(command).error_id == error_id


# -- blind transfer to an agent --------------------------------------------------------------


def test_a_blind_transfer_to_an_agent_offers_the_call_to_them_from_its_queue() -> None:
    centre = centre_with_ann_on_c1(ring_timeout_seconds=12)
    seen = len(centre.events)

    centre.transfer("c1", agent="bob")

    moved = call_events(centre, seen)[0]
    assert (moved.to_state, moved.queue_id, moved.reason) == (
        CallState.QUEUED,
        "sales",
        "blind_transfer",
    )
    assert centre.offers()[-1] == OfferCall(
        reservation_id=centre.offers()[-1].reservation_id,
        call_id=C1,
        agent_id=AgentId("bob"),
        deadline=22,
    )
    assert (state_of(centre, "bob"), state_of(centre, "ann")) == (RESERVED, WRAP_UP)


@pytest.mark.parametrize(
    ("target", "state"),
    [("ann", "talking"), ("dan", "not_ready"), ("bob", "reserved"), ("ghost", None)],
)
def test_a_blind_transfer_to_an_agent_who_can_t_take_it_is_refused(
    target: str, state: str | None
) -> None:
    centre = centre_with_ann_on_c1()
    centre.agent("dan", queues=["tech"], ready=False)
    centre.call("c2", "tech")  # rings bob

    refusal = centre.refused(CallTransferred(call_id=C1, agent_id=AgentId(target)))

    assert (refusal.error_id, refusal.state) == ("agent_unavailable", state)


def test_a_blind_transfer_the_agent_lets_ring_out_is_routed_in_its_queue() -> None:
    centre = centre_with_ann_on_c1(ring_timeout_seconds=10)
    centre.transfer("c1", agent="bob")  # bob does not serve sales

    centre.at(20)

    assert centre.offered_to("c1") == ["ann", "bob", "cy"]
    assert centre.agent_view("bob").misses == 1
    assert len(centre.actions_of(RetractOffer)) == 1


def test_a_blind_transfer_the_agent_rejects_waits_in_its_queue_for_the_next_agent() -> None:
    centre = centre_with_ann_on_c1()
    centre.call("c2", "sales")  # to cy
    centre.transfer("c1", agent="bob")

    centre.after(1).reject("bob", "c1")

    view = centre.call_view("c1")
    assert view is not None and (view.state, view.queue_id) == (CallState.QUEUED, "sales")
    centre.at(15)  # ann's wrap-up ends: normal routing, so it may go back to her
    assert centre.offered_to("c1")[-1] == "ann"


# -- consultation ------------------------------------------------------------------------


def test_a_consultation_puts_the_caller_on_hold_and_rings_the_consulted_agent() -> None:
    centre = centre_with_ann_on_c1(ring_timeout_seconds=12)
    seen = len(centre.events)

    centre.consult("c1", "bob")

    [held] = call_events(centre, seen)
    assert (held.from_state, held.to_state, held.agent_id) == (
        CallState.CONNECTED,
        CallState.HELD,
        "ann",
    )
    assert [(e.from_state, e.to_state) for e in agent_events(centre, "ann", seen)] == [
        (TALKING, HELD)
    ]
    [pending] = centre.events_of(ReservationStateChanged)[-1:]
    assert (pending.call_id, pending.agent_id, pending.from_state) == ("c1", "bob", None)
    offer = centre.offers()[-1]
    assert (offer.agent_id, offer.deadline, offer.consult_from) == ("bob", 22, "ann")
    bob = centre.agent_view("bob")
    assert (bob.state, bob.offered_call_id, bob.consult_call_id) == (RESERVED, "c1", "c1")
    assert agent_events(centre, "bob")[-1].reason == "consult"
    view = centre.call_view("c1")
    assert view is not None
    assert (view.state, view.agent_id, view.offered_to) == (CallState.HELD, "ann", None)
    assert (view.consult_agent_id, view.consult_state) == ("bob", ConsultState.RINGING)


def test_consulting_about_a_held_call_needs_no_second_hold() -> None:
    centre = centre_with_ann_on_c1()
    centre.hold("c1")
    seen = len(centre.events)

    centre.consult("c1", "bob")

    assert call_events(centre, seen) == [] and agent_events(centre, "ann", seen) == []


def test_the_consulted_agent_answers_and_talks_while_the_caller_stays_on_hold() -> None:
    centre = consulting(centre_with_ann_on_c1())

    answered = agent_events(centre, "bob")[-1]
    assert (answered.from_state, answered.to_state, answered.reason) == (
        RESERVED,
        TALKING,
        "consult",
    )
    view = centre.call_view("c1")
    assert view is not None
    assert (view.state, view.agent_id, view.consult_state) == (
        CallState.HELD,
        "ann",
        ConsultState.TALKING,
    )
    assert (state_of(centre, "ann"), centre.agent_view("bob").call_id) == (HELD, "c1")


@pytest.mark.parametrize("how", ["reject", "ring_out"])
def test_an_unanswered_consultation_is_over_and_the_caller_stays_held(how: str) -> None:
    centre = centre_with_ann_on_c1(ring_timeout_seconds=10)
    consulting(centre, accept=False)

    if how == "reject":
        centre.after(1).reject("bob", "c1")
    else:
        centre.after(10)

    view = centre.call_view("c1")
    assert view is not None
    assert (view.state, view.agent_id, view.consult_state) == (CallState.HELD, "ann", None)
    assert (state_of(centre, "bob"), centre.agent_view("bob").misses) == (
        IDLE,
        1 if how == "ring_out" else 0,
    )
    assert centre.offered_to("c1") == ["ann", "bob"]  # never re-queued
    centre.retrieve("c1")
    assert state_of(centre, "ann") is TALKING


def test_a_late_answer_to_a_consultation_that_rang_out_is_refused_as_expired() -> None:
    centre = centre_with_ann_on_c1(ring_timeout_seconds=10)
    consulting(centre, accept=False).after(11)

    refusal = centre.refused(OfferAccepted(agent_id=AgentId("bob"), call_id=C1))

    assert refusal.error_id == "offer_expired"


def test_cancelling_a_ringing_consultation_retracts_the_offer() -> None:
    centre = consulting(centre_with_ann_on_c1(), accept=False)

    centre.cancel_consult("c1")

    [retract] = centre.actions_of(RetractOffer)
    assert (retract.call_id, retract.agent_id) == ("c1", "bob")
    assert centre.events_of(ReservationStateChanged)[-1].to_state.value == "cancelled"
    assert (state_of(centre, "bob"), centre.agent_view("bob").misses) == (IDLE, 0)


def test_cancelling_a_consultation_in_talk_frees_the_consulted_agent_without_wrap_up() -> None:
    centre = consulting(centre_with_ann_on_c1(wrap_up_seconds=30))

    centre.cancel_consult("c1")

    last = agent_events(centre, "bob")[-1]
    assert (last.from_state, last.to_state, last.reason) == (TALKING, IDLE, "consult_cancelled")
    view = centre.call_view("c1")
    assert view is not None and (view.agent_id, view.consult_agent_id) == ("ann", None)
    centre.retrieve("c1")
    assert state_of(centre, "ann") is TALKING


def test_completing_the_transfer_connects_the_caller_to_the_consulted_agent() -> None:
    centre = consulting(centre_with_ann_on_c1())

    centre.after(5).complete_transfer("c1")

    moved = call_events(centre)[-1]
    assert (moved.from_state, moved.to_state, moved.agent_id, moved.reason) == (
        CallState.HELD,
        CallState.CONNECTED,
        "bob",
        "consult_transfer",
    )
    left = agent_events(centre, "ann")[-1]
    assert (left.from_state, left.to_state, left.reason) == (HELD, WRAP_UP, "consult_transfer")
    assert centre.actions_of(ConnectCall)[-1] == ConnectCall(call_id=C1, agent_id=AgentId("bob"))
    assert (state_of(centre, "bob"), centre.agent_view("bob").calls_answered) == (TALKING, 1)
    assert centre.engine.last_agent(CustomerId("k1")) == "bob"
    centre.after(60).agent_hangs_up("c1")
    assert centre.call_view("c1") is None


@pytest.mark.parametrize(
    ("setup", "command", "error_id", "state"),
    [
        ("none", ConsultCancelled(call_id=C1), "no_consult", "connected"),
        ("none", TransferCompleted(call_id=C1), "no_consult", "connected"),
        ("none", ConferenceStarted(call_id=C1), "no_consult", "connected"),
        ("ringing", TransferCompleted(call_id=C1), "wrong_state", "ringing"),
        ("ringing", ConferenceStarted(call_id=C1), "wrong_state", "ringing"),
        ("ringing", ConsultStarted(call_id=C1, agent_id=CY), "consult_in_progress", "ringing"),
        ("talking", CallRetrieved(call_id=C1), "consult_in_progress", "talking"),
        ("talking", CallTransferred(call_id=C1, queue_id=TECH), "consult_in_progress", "talking"),
        ("talking", CallHeld(call_id=C1), "wrong_state", "held"),
        ("conference", ConferenceStarted(call_id=C1), "wrong_state", "conferenced"),
        ("conference", TransferCompleted(call_id=C1), "wrong_state", "conferenced"),
        ("conference", ConsultCancelled(call_id=C1), "wrong_state", "conferenced"),
        ("conference", CallHeld(call_id=C1, agent_id=BOB), "not_main_agent", "connected"),
        ("none", ConsultStarted(call_id=C1, agent_id=ANN), "agent_unavailable", "talking"),
        ("none", ConsultStarted(call_id=CallId("c9"), agent_id=BOB), "wrong_state", "offered"),
        ("none", AgentLeftConference(agent_id=ANN), "no_conference", "talking"),
        ("talking", AgentLeftConference(agent_id=BOB), "no_conference", "talking"),
    ],
)
def test_a_consultation_command_wrong_for_its_state_is_refused_and_changes_nothing(
    setup: str, command: Command, error_id: str, state: str
) -> None:
    centre = centre_with_ann_on_c1()
    centre.call("c9", "sales")  # rings cy
    if setup != "none":
        consulting(centre, accept=setup != "ringing")
    if setup == "conference":
        centre.conference("c1")

    refusal = centre.refused(command)

    assert (refusal.error_id, refusal.state) == (error_id, state)


# -- conference --------------------------------------------------------------------------


def test_a_conference_brings_the_caller_in_with_both_agents() -> None:
    centre = consulting(centre_with_ann_on_c1())
    seen = len(centre.events)

    centre.conference("c1")

    [joined] = call_events(centre, seen)
    assert (joined.from_state, joined.to_state, joined.agent_id, joined.reason) == (
        CallState.HELD,
        CallState.CONNECTED,
        "ann",
        "conference",
    )
    [back] = agent_events(centre, "ann", seen)
    assert (back.from_state, back.to_state, back.reason) == (HELD, TALKING, "conference")
    assert agent_events(centre, "bob", seen) == []
    view = centre.call_view("c1")
    assert view is not None and view.consult_state is ConsultState.CONFERENCED


def test_holding_a_conference_leaves_the_two_agents_talking() -> None:
    centre = consulting(centre_with_ann_on_c1())
    centre.conference("c1")

    centre.do(CallHeld(call_id=C1, agent_id=AgentId("ann")))

    view = centre.call_view("c1")
    assert view is not None
    assert (view.state, view.consult_state) == (CallState.HELD, ConsultState.TALKING)
    assert (state_of(centre, "ann"), state_of(centre, "bob")) == (HELD, TALKING)
    centre.conference("c1")  # and back
    assert centre.call_view("c1").consult_state is ConsultState.CONFERENCED  # type: ignore[union-attr]


def test_the_main_agent_leaving_a_conference_leaves_the_caller_with_the_other() -> None:
    centre = consulting(centre_with_ann_on_c1())
    centre.conference("c1")

    centre.leave_conference("ann")

    moved = call_events(centre)[-1]
    assert (moved.from_state, moved.to_state, moved.agent_id, moved.reason) == (
        CallState.CONNECTED,
        CallState.CONNECTED,
        "bob",
        "conference_transfer",
    )
    left = agent_events(centre, "ann")[-1]
    assert (left.to_state, left.reason, left.call_id) == (WRAP_UP, "conference_transfer", "c1")
    view = centre.call_view("c1")
    assert view is not None and (view.agent_id, view.consult_agent_id) == ("bob", None)
    assert centre.agent_view("bob").consult_call_id is None


def test_the_consulted_agent_leaving_a_conference_leaves_the_caller_with_the_main_agent() -> None:
    centre = consulting(centre_with_ann_on_c1())
    centre.conference("c1")
    seen = len(centre.events)

    centre.leave_conference("bob")

    assert call_events(centre, seen) == []
    [left] = agent_events(centre, "bob", seen)
    assert (left.from_state, left.to_state, left.reason) == (TALKING, WRAP_UP, "conference_left")
    view = centre.call_view("c1")
    assert view is not None
    assert (view.state, view.agent_id, view.consult_agent_id) == (CallState.CONNECTED, "ann", None)
    centre.hold("c1")  # ann's call again, as before
    assert state_of(centre, "ann") is HELD


# -- hang-ups during consultations and conferences ----------------------------------------


@pytest.mark.parametrize(
    ("stage", "bob_after"),
    [("ringing", IDLE), ("talking", IDLE), ("conference", WRAP_UP)],
)
def test_a_caller_hanging_up_mid_consultation_ends_every_leg(
    stage: str, bob_after: AgentState
) -> None:
    centre = centre_with_ann_on_c1()
    consulting(centre, accept=stage != "ringing")
    if stage == "conference":
        centre.conference("c1")

    centre.after(4).caller_hangs_up("c1")

    ended = [e for e in call_events(centre) if e.outcome is not None]
    assert [(e.call_id, e.outcome) for e in ended] == [("c1", Outcome.ANSWERED)]
    assert (state_of(centre, "ann"), state_of(centre, "bob")) == (WRAP_UP, bob_after)
    assert centre.agent_view("bob").consult_call_id is None
    assert len(centre.actions_of(RetractOffer)) == (stage == "ringing")
    centre.at(100)
    assert (state_of(centre, "ann"), state_of(centre, "bob")) == (IDLE, IDLE)


def test_an_agent_hanging_up_a_conference_ends_it_for_everyone() -> None:
    centre = consulting(centre_with_ann_on_c1(wrap_up_seconds=0))
    centre.conference("c1")

    centre.agent_hangs_up("c1")

    assert centre.call_view("c1") is None
    assert (state_of(centre, "ann"), state_of(centre, "bob")) == (IDLE, IDLE)
    assert agent_events(centre, "bob")[-1].reason == "agent_hung_up"


# -- what the KPIs make of it --------------------------------------------------------------


def test_a_blind_transferred_call_is_one_offered_call_answered_once() -> None:
    centre = centre_with_ann_on_c1(wrap_up_seconds=0)  # ann answered at 0
    centre.at(30).transfer("c1", queue="tech")
    centre.at(34).accept("bob", "c1")
    centre.at(94).agent_hangs_up("c1")

    totals = fold(centre).totals()

    k = totals.overall
    assert (k.offered, k.answered, k.abandoned) == (1, 1, 0)
    assert (k.transferred_blind, k.transferred_warm, k.blind_transfer_rate) == (1, 0, 1.0)
    assert (k.asa_seconds, k.avg_ring_seconds) == (0, 0)  # its first answer
    assert k.avg_talk_seconds == 30 + 60
    assert totals.per_agent[AgentId("ann")].handled == 1
    assert totals.per_agent[AgentId("bob")].handled == 1
    assert totals.per_queue[QueueId("tech")].answered == 1  # counted where it ended


def test_a_warm_transfer_counts_apart_and_the_consulted_agent_handles_the_call_they_take() -> None:
    centre = consulting(centre_with_ann_on_c1())  # bob answered the consultation at 12
    centre.at(20).complete_transfer("c1")
    centre.at(80).caller_hangs_up("c1")  # bob wraps up until 85
    centre.at(100).call("c2", "sales")  # to cy
    centre.accept("cy", "c2")
    centre.consult("c2", "bob")
    centre.after(1).accept("bob", "c2")
    centre.cancel_consult("c2")  # a consultation alone is not handling a call
    centre.agent_hangs_up("c2")

    totals = fold(centre).totals()

    k = totals.overall
    assert (k.offered, k.answered, k.transferred_warm, k.transferred_blind) == (2, 2, 1, 0)
    assert k.warm_transfer_rate == 0.5
    assert totals.per_agent[AgentId("bob")].handled == 1
    assert k.avg_hold_seconds == (20 - 10 + 1) / 2  # c1 held from 10 to 20, c2 for 1 s
