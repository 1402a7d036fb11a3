"""Reservations: an offer with a deadline; accept, reject, ring-no-answer, hang-up, late accept."""

from __future__ import annotations

from acd.actions import ConnectCall, RetractOffer
from acd.commands import AgentWentNotReady, Command, OfferAccepted, OfferRejected
from acd.events import AgentStateChanged, CallStateChanged, ReservationStateChanged
from acd.ids import AgentId, CallId
from acd.states import AgentState, AgentStatus, CallState, ReservationState
from acd.testing import Centre

R = ReservationState


def two_agents(**queue: object) -> Centre:
    """A queue with alice (longest idle) and bob, both ready."""
    centre = Centre().queue("sales", **queue)
    centre.agent("alice", queues=["sales"])
    centre.agent("bob", queues=["sales"])
    return centre


def reservation_states(centre: Centre, call: str) -> list[tuple[str, ReservationState]]:
    return [
        (e.agent_id, e.to_state)
        for e in centre.events_of(ReservationStateChanged)
        if e.call_id == call
    ]


def assert_refused(centre: Centre, command: Command, error_id: str) -> None:
    assert centre.refused(command).error_id == error_id


# -- the offer -----------------------------------------------------------------------------


def test_an_offer_rings_the_agent_until_the_queue_s_ring_timeout() -> None:
    centre = two_agents(ring_timeout_seconds=12)

    centre.at(5).call("c1", "sales")

    [offer] = centre.offers()
    assert (offer.call_id, offer.agent_id, offer.deadline) == ("c1", "alice", 17)
    assert reservation_states(centre, "c1") == [("alice", R.PENDING)]
    assert centre.agent_view("alice").state is AgentState.RESERVED
    assert centre.call_view("c1").state is CallState.OFFERED  # type: ignore[union-attr]
    assert centre.engine.next_deadline() == 17


def test_accept_connects_the_caller_to_the_agent() -> None:
    centre = two_agents()
    centre.call("c1", "sales")

    centre.at(3).accept("alice", "c1")

    assert centre.actions_of(ConnectCall) == [ConnectCall(call_id="c1", agent_id="alice")]
    assert reservation_states(centre, "c1") == [("alice", R.PENDING), ("alice", R.ACCEPTED)]
    assert centre.agent_view("alice").state is AgentState.TALKING
    view = centre.call_view("c1")
    assert view is not None and (view.state, view.agent_id) == (CallState.CONNECTED, "alice")


def test_an_accepted_offer_no_longer_times_out() -> None:
    centre = two_agents(ring_timeout_seconds=15)
    centre.call("c1", "sales")
    centre.at(3).accept("alice", "c1")

    centre.at(100)

    assert centre.actions_of(RetractOffer) == []
    assert centre.agent_view("alice").state is AgentState.TALKING


# -- reject --------------------------------------------------------------------------------


def test_reject_offers_the_call_to_another_idle_agent() -> None:
    centre = two_agents()
    centre.call("c1", "sales")

    centre.at(2).reject("alice", "c1")

    assert centre.offered_to("c1") == ["alice", "bob"]
    assert reservation_states(centre, "c1")[:2] == [("alice", R.PENDING), ("alice", R.REJECTED)]
    assert centre.agent_view("alice").state is AgentState.IDLE


def test_a_rejected_call_keeps_its_place_ahead_of_younger_calls() -> None:
    centre = two_agents()
    centre.call("c1", "sales")  # to alice
    centre.at(1).call("c2", "sales")  # to bob
    centre.accept("bob", "c2")
    centre.at(2).call("c3", "sales")  # waits
    centre.do(AgentWentNotReady(agent_id=AgentId("alice"), reason="break"))  # after this offer

    centre.at(3).reject("alice", "c1")
    view = centre.call_view("c1")
    assert view is not None and view.position == 1
    centre.at(10).agent_hangs_up("c2")

    assert centre.offered_to("c1") == ["alice", "bob"]
    assert centre.offered_to("c3") == []


def test_reject_does_not_count_as_a_miss() -> None:
    centre = two_agents()
    centre.call("c1", "sales")

    centre.reject("alice", "c1")

    assert centre.agent_view("alice").misses == 0


# -- ring-no-answer ------------------------------------------------------------------------


def test_ring_no_answer_offers_the_call_to_the_next_longest_idle_agent() -> None:
    centre = Centre().queue("sales", ring_timeout_seconds=15)
    for agent in ("ann", "ben", "cat"):
        centre.agent(agent, queues=["sales"])
    centre.at(1).call("c0", "sales")
    centre.accept("ann", "c0")
    centre.at(2).agent_hangs_up("c0")  # ann is now the most recently idle
    centre.at(3).call("c1", "sales")

    centre.at(18)

    assert centre.offered_to("c1") == ["ben", "cat"]
    assert centre.actions_of(RetractOffer) == [
        RetractOffer(reservation_id=centre.offers()[1].reservation_id, call_id="c1", agent_id="ben")
    ]
    assert ("ben", R.TIMED_OUT) in reservation_states(centre, "c1")


def test_ring_no_answer_gives_the_agent_a_miss_and_keeps_them_ready() -> None:
    centre = two_agents(ring_timeout_seconds=15, max_misses=3)
    centre.call("c1", "sales")

    centre.at(15)

    view = centre.agent_view("alice")
    assert (view.misses, view.status, view.state) == (1, AgentStatus.READY, AgentState.IDLE)


def test_ring_no_answer_keeps_the_call_s_place_in_the_queue() -> None:
    centre = Centre().queue("sales", ring_timeout_seconds=15, max_misses=1)
    centre.agent("alice", queues=["sales"])
    centre.agent("bob", queues=["sales"])
    centre.call("c1", "sales")  # to alice
    centre.at(1).call("c2", "sales")  # to bob
    centre.accept("bob", "c2")
    centre.at(2).call("c3", "sales")  # waits

    centre.at(15)  # alice misses c1 and goes not ready
    centre.at(20).agent_hangs_up("c2")

    assert centre.offered_to("c1") == ["alice", "bob"]
    assert centre.offered_to("c3") == []


def test_max_misses_consecutive_ring_no_answers_set_the_agent_not_ready_no_answer() -> None:
    centre = Centre().queue("sales", ring_timeout_seconds=15, max_misses=2)
    centre.agent("alice", queues=["sales"])
    centre.call("c1", "sales")

    centre.at(15)  # first miss; c1 rings alice again
    assert centre.agent_view("alice").status is AgentStatus.READY
    centre.at(30)  # second miss

    view = centre.agent_view("alice")
    assert (view.status, view.reason, view.state) == (
        AgentStatus.NOT_READY,
        "no_answer",
        AgentState.IDLE,
    )
    last = centre.events_of(AgentStateChanged)[-1]
    assert (last.agent_id, last.from_state, last.to_state) == (
        "alice",
        AgentState.RESERVED,
        AgentState.IDLE,
    )
    assert (last.from_status, last.to_status) == (AgentStatus.READY, AgentStatus.NOT_READY)
    assert centre.offered_to("c1") == ["alice", "alice"]


def test_too_many_misses_never_log_the_agent_out() -> None:
    centre = Centre().queue("sales", ring_timeout_seconds=10, max_misses=1)
    centre.agent("alice", queues=["sales"])
    centre.call("c1", "sales")

    centre.at(100)

    assert centre.agent_view("alice").status is AgentStatus.NOT_READY
    assert all(
        e.to_status is not AgentStatus.LOGGED_OUT
        for e in centre.events_of(AgentStateChanged)
        if e.agent_id == "alice" and e.from_status is not None  # after being created
    )


def test_an_answered_call_resets_the_misses() -> None:
    centre = Centre().queue("sales", ring_timeout_seconds=15, max_misses=2)
    centre.agent("alice", queues=["sales"])
    centre.call("c1", "sales")
    centre.at(15)  # miss; c1 rings alice again
    centre.at(16).accept("alice", "c1")
    assert centre.agent_view("alice").misses == 0
    centre.at(20).agent_hangs_up("c1")

    centre.at(30).call("c2", "sales")
    centre.at(45)  # one miss again: not two in a row

    view = centre.agent_view("alice")
    assert (view.misses, view.status) == (1, AgentStatus.READY)


# -- the caller hangs up while ringing -----------------------------------------------------


def test_caller_hang_up_while_ringing_retracts_the_offer_and_frees_the_agent() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])
    centre.call("c1", "sales")
    centre.at(1).call("c2", "sales")

    centre.at(4).caller_hangs_up("c1")

    [offer] = [o for o in centre.offers() if o.call_id == "c1"]
    assert centre.actions_of(RetractOffer) == [
        RetractOffer(reservation_id=offer.reservation_id, call_id="c1", agent_id="alice")
    ]
    assert reservation_states(centre, "c1") == [("alice", R.PENDING), ("alice", R.CANCELLED)]
    assert centre.agent_view("alice").misses == 0
    assert centre.offered_to("c2") == ["alice"]
    ended = [e for e in centre.events_of(CallStateChanged) if e.call_id == "c1"][-1]
    assert ended.to_state is CallState.ENDED


# -- accepts that come too late or for the wrong call ---------------------------------------


def test_a_late_accept_after_ring_no_answer_is_refused_as_offer_expired() -> None:
    centre = two_agents(ring_timeout_seconds=15)
    centre.call("c1", "sales")
    centre.at(15)  # alice missed it; bob is ringing
    assert centre.offered_to("c1") == ["alice", "bob"]

    centre.at(16)
    assert_refused(
        centre, OfferAccepted(agent_id=AgentId("alice"), call_id=CallId("c1")), "offer_expired"
    )
    assert centre.agent_view("bob").offered_call_id == "c1"


def test_an_accept_after_the_caller_hung_up_is_refused_as_offer_expired() -> None:
    centre = two_agents()
    centre.call("c1", "sales")
    centre.at(4).caller_hangs_up("c1")

    assert_refused(
        centre, OfferAccepted(agent_id=AgentId("alice"), call_id=CallId("c1")), "offer_expired"
    )


def test_accepting_a_call_offered_to_someone_else_is_refused_as_no_offer() -> None:
    centre = two_agents()
    centre.call("c1", "sales")  # to alice

    assert_refused(centre, OfferAccepted(agent_id=AgentId("bob"), call_id=CallId("c1")), "no_offer")


def test_accepting_with_no_offer_at_all_is_refused_as_no_offer() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"], ready=False)
    centre.call("c1", "sales")

    assert_refused(
        centre, OfferAccepted(agent_id=AgentId("alice"), call_id=CallId("c1")), "no_offer"
    )


def test_rejecting_a_call_not_offered_is_refused_as_no_offer() -> None:
    centre = two_agents()
    centre.call("c1", "sales")

    assert_refused(centre, OfferRejected(agent_id=AgentId("bob"), call_id=CallId("c1")), "no_offer")


def test_offer_deadline_is_reported_for_each_new_offer() -> None:
    centre = two_agents(ring_timeout_seconds=10)
    centre.call("c1", "sales")

    centre.at(4).reject("alice", "c1")

    assert [o.deadline for o in centre.offers()] == [10, 14]
