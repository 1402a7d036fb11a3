"""Waiting: overflow on wait or estimated wait, relaxation steps, announcements and EWT."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from acd.actions import PlayAnnouncement, TransferToSite
from acd.commands import AgentWentNotReady, AgentWentReady
from acd.config import OverflowCondition, OverflowRule, RelaxStep, Target
from acd.events import CallStateChanged
from acd.ids import AgentId, QueueId
from acd.states import CallState, Outcome
from acd.testing import Centre

BACKUP = "sip:overflow@backup.example.net"
WAIT_OVER, EWT_OVER = OverflowCondition.WAIT_OVER, OverflowCondition.EWT_OVER


def to_queue(when: OverflowCondition, seconds: float, queue: str) -> OverflowRule:
    return OverflowRule(when=when, seconds=seconds, target=Target(queue=QueueId(queue)))


def to_site(when: OverflowCondition, seconds: float, site: str = BACKUP) -> OverflowRule:
    return OverflowRule(when=when, seconds=seconds, target=Target(site=site))


def outcome(centre: Centre, call: str) -> Outcome | None:
    outcomes = [
        e.outcome
        for e in centre.events_of(CallStateChanged)
        if e.call_id == call and e.outcome is not None
    ]
    assert len(outcomes) <= 1, f"{call} has outcomes {outcomes}"
    return outcomes[0] if outcomes else None


def announcements(centre: Centre, call: str) -> list[PlayAnnouncement]:
    return [a for a in centre.actions_of(PlayAnnouncement) if a.call_id == call]


def queue_of(centre: Centre, call: str) -> str:
    view = centre.call_view(call)
    assert view is not None, f"{call} has left"
    return view.queue_id


def handled_one_call(aht: float, **queue: object) -> Centre:
    """``sales`` with one agent, ann, who has handled one call of ``aht`` s and is busy again."""
    centre = Centre().queue("sales", **queue)
    centre.agent("ann", queues=["sales"])
    centre.at(1).call("h1", "sales")
    centre.accept("ann", "h1")
    centre.after(aht).agent_hangs_up("h1")
    centre.call("h2", "sales")
    centre.accept("ann", "h2")
    return centre


@contextmanager
def returns_within(seconds: int) -> Iterator[None]:
    """Fail, rather than hang, when the engine loops."""

    def stop(signum: int, frame: object) -> None:
        raise TimeoutError(f"the engine did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- overflow on waiting time -------------------------------------------------------------


def test_a_call_waiting_over_the_limit_moves_to_the_target_queue_keeping_its_enqueue_time() -> None:
    centre = Centre().queue("spill").queue("sales", overflow=(to_queue(WAIT_OVER, 30, "spill"),))
    centre.at(2).call("c1", "sales")

    centre.at(31.9)
    assert queue_of(centre, "c1") == "sales"
    centre.at(32)

    view = centre.call_view("c1")
    assert view is not None
    assert (view.queue_id, view.state, view.enqueued_at) == ("spill", CallState.QUEUED, 2)
    moved = [e for e in centre.events_of(CallStateChanged) if e.call_id == "c1"][-1]
    assert (moved.from_state, moved.to_state, moved.queue_id) == (
        CallState.QUEUED,
        CallState.QUEUED,
        "spill",
    )
    assert outcome(centre, "c1") is None


def test_an_overflowed_call_is_served_ahead_of_younger_calls_of_the_target_queue() -> None:
    centre = Centre().queue("spill").queue("sales", overflow=(to_queue(WAIT_OVER, 30, "spill"),))
    centre.agent("ann", queues=["spill"])
    centre.call("x1", "spill")
    centre.accept("ann", "x1")  # ann is busy
    centre.call("c1", "sales")
    centre.at(10).call("c2", "spill")

    centre.at(30)  # c1 joins spill, enqueued at 0
    centre.at(40).agent_hangs_up("x1")

    assert centre.offered_to("c1") == ["ann"]
    assert centre.offered_to("c2") == []


def test_a_call_waiting_over_the_limit_is_transferred_to_the_remote_site() -> None:
    centre = Centre().queue("sales", overflow=(to_site(WAIT_OVER, 60),))
    centre.call("c1", "sales")

    centre.at(60)

    assert centre.actions_of(TransferToSite) == [
        TransferToSite(call_id="c1", site=BACKUP, reason="wait_over")
    ]
    assert outcome(centre, "c1") is Outcome.OVERFLOWED
    assert centre.call_view("c1") is None


def test_an_overflowing_call_never_goes_back_to_a_queue_it_came_from() -> None:
    centre = Centre()
    centre.queue("sales", overflow=(to_queue(WAIT_OVER, 10, "spill"),))
    centre.queue("spill", overflow=(to_queue(WAIT_OVER, 20, "sales"), to_site(WAIT_OVER, 40)))
    centre.call("c1", "sales")

    centre.at(10)
    assert queue_of(centre, "c1") == "spill"
    centre.at(39)
    assert queue_of(centre, "c1") == "spill"
    centre.at(40)

    assert [a.call_id for a in centre.actions_of(TransferToSite)] == ["c1"]
    assert outcome(centre, "c1") is Outcome.OVERFLOWED


def test_a_wait_overflow_to_a_full_queue_leaves_the_call_waiting_where_it_is() -> None:
    centre = Centre().queue("spill", max_size=0)
    centre.queue("sales", overflow=(to_queue(WAIT_OVER, 10, "spill"),))
    centre.call("c1", "sales")

    with returns_within(5):
        centre.at(20)

    assert queue_of(centre, "c1") == "sales"
    assert outcome(centre, "c1") is None


# -- overflow on estimated wait ------------------------------------------------------------


def test_a_call_whose_estimated_wait_is_over_the_limit_overflows_to_the_site() -> None:
    centre = handled_one_call(100, overflow=(to_site(EWT_OVER, 60),))

    centre.at(110).call("c1", "sales")

    assert centre.actions_of(TransferToSite) == [
        TransferToSite(call_id="c1", site=BACKUP, reason="ewt_over")
    ]
    assert outcome(centre, "c1") is Outcome.OVERFLOWED


def test_a_call_whose_estimated_wait_is_under_the_limit_stays() -> None:
    centre = handled_one_call(100, overflow=(to_site(EWT_OVER, 600),))

    centre.at(110).call("c1", "sales")
    centre.at(200)

    assert centre.actions_of(TransferToSite) == []
    assert queue_of(centre, "c1") == "sales"


def test_without_an_estimate_a_call_does_not_overflow_on_estimated_wait() -> None:
    centre = Centre().queue("sales", overflow=(to_site(EWT_OVER, 1),))
    centre.agent("ann", queues=["sales"])
    centre.call("h1", "sales")
    centre.accept("ann", "h1")  # busy, and no call handled yet

    centre.at(1).call("c1", "sales")
    centre.at(100)

    assert centre.actions_of(TransferToSite) == []
    assert outcome(centre, "c1") is None


# -- relaxation ----------------------------------------------------------------------------


def test_a_call_no_agent_qualifies_for_is_offered_to_a_lower_level_agent_after_the_step() -> None:
    steps = (RelaxStep(after_seconds=20, lower_levels_by=3),)
    centre = Centre().queue("billing", skills={"billing": 8}, relaxation=steps)
    centre.agent("ann", queues=["billing"], skills={"billing": 5})
    centre.call("c1", "billing")

    centre.at(19.9)
    assert centre.offered_to("c1") == []
    centre.at(20)

    assert centre.offered_to("c1") == ["ann"]


def test_a_language_step_lets_an_agent_without_the_language_take_the_call() -> None:
    steps = (RelaxStep(after_seconds=30, any_language=True),)
    centre = Centre().queue("finnish", language="fi", relaxation=steps)
    centre.agent("ann", queues=["finnish"], languages={"en": 9})
    centre.call("c1", "finnish")

    centre.at(29)
    assert centre.offered_to("c1") == []
    centre.at(30)

    assert centre.offered_to("c1") == ["ann"]


def test_a_relaxed_call_keeps_its_place_ahead_of_younger_calls() -> None:
    steps = (RelaxStep(after_seconds=10, lower_levels_by=3),)
    centre = Centre()
    centre.queue("expert", skills={"billing": 8}, relaxation=steps)
    centre.queue("basic", skills={"billing": 5})
    centre.agent("ann", queues=["expert", "basic"], skills={"billing": 5})
    centre.call("x1", "basic")
    centre.accept("ann", "x1")  # ann is busy
    centre.call("c1", "expert")
    centre.at(5).call("c2", "basic")

    centre.at(10)  # c1 relaxes to ann's level, still enqueued at 0
    view = centre.call_view("c1")
    assert view is not None and (view.relax_level, view.enqueued_at) == (1, 0)
    centre.at(20).agent_hangs_up("x1")

    assert centre.offered_to("c1") == ["ann"]
    assert centre.offered_to("c2") == []


# -- announcements and estimated wait --------------------------------------------------------


def test_a_waiting_caller_hears_their_position_and_no_estimate_before_any_call_was_handled() -> (
    None
):
    centre = Centre().queue("sales", announce_every_seconds=30)

    centre.call("c1", "sales")
    centre.at(1).call("c2", "sales")

    assert announcements(centre, "c1") == [
        PlayAnnouncement(call_id="c1", position=1, ewt_seconds=None, offer_callback=False)
    ]
    assert announcements(centre, "c2") == [
        PlayAnnouncement(call_id="c2", position=2, ewt_seconds=None, offer_callback=False)
    ]


def test_a_call_offered_at_once_hears_no_announcement() -> None:
    centre = Centre().queue("sales", announce_every_seconds=30)
    centre.agent("ann", queues=["sales"])

    centre.call("c1", "sales")
    centre.accept("ann", "c1")
    centre.at(100)

    assert announcements(centre, "c1") == []


def test_announcements_repeat_every_interval_with_the_caller_s_new_position() -> None:
    centre = Centre().queue("sales", announce_every_seconds=30)
    centre.agent("ann", queues=["sales"], ready=False)
    centre.call("c1", "sales")
    centre.at(5).call("c2", "sales")
    centre.at(10).do(AgentWentReady(agent_id=AgentId("ann")))
    centre.accept("ann", "c1")

    centre.at(34.9)
    assert [a.position for a in announcements(centre, "c2")] == [2]
    centre.at(35)
    assert [a.position for a in announcements(centre, "c2")] == [2, 1]
    centre.at(65)
    assert [a.position for a in announcements(centre, "c2")] == [2, 1, 1]


def test_no_announcements_when_the_queue_has_no_interval() -> None:
    centre = Centre().queue("sales", announce_every_seconds=None)

    centre.call("c1", "sales")
    centre.at(300)

    assert announcements(centre, "c1") == []


def test_the_estimate_grows_with_the_position_once_calls_have_been_handled() -> None:
    centre = handled_one_call(100, announce_every_seconds=30)

    centre.at(110).call("c1", "sales")
    centre.call("c2", "sales")

    [first] = announcements(centre, "c1")
    [second] = announcements(centre, "c2")
    assert (first.position, second.position) == (1, 2)
    assert first.ewt_seconds is not None and second.ewt_seconds is not None
    assert 0 < first.ewt_seconds < second.ewt_seconds


def test_the_announced_estimate_never_grows_while_the_caller_waits() -> None:
    centre = Centre().queue("sales", announce_every_seconds=30)
    centre.agent("ann", queues=["sales"])
    centre.agent("bob", queues=["sales"])
    centre.at(1).call("h1", "sales")
    centre.accept("ann", "h1")
    centre.at(41).agent_hangs_up("h1")  # handle time so far: 40 s
    centre.at(50).call("h2", "sales")
    centre.accept("bob", "h2")
    centre.call("h3", "sales")
    centre.accept("ann", "h3")

    centre.at(60).call("c1", "sales")  # two ready agents, both busy
    centre.at(65).do(AgentWentNotReady(agent_id=AgentId("ann"), reason="break"))
    centre.at(70).agent_hangs_up("h3")  # one ready agent left, and a longer handle time
    centre.at(120)

    ewts = [a.ewt_seconds for a in announcements(centre, "c1")]
    assert len(ewts) == 3 and None not in ewts
    assert ewts == sorted(ewts, reverse=True)  # type: ignore[type-var]


def test_the_announced_estimate_does_not_grow_when_the_call_overflows_to_a_slower_queue() -> None:
    centre = Centre()
    centre.queue("slow", announce_every_seconds=30)
    centre.queue("fast", announce_every_seconds=30, overflow=(to_queue(WAIT_OVER, 45, "slow"),))
    centre.agent("ann", queues=["fast"])
    centre.agent("bob", queues=["slow"])
    centre.at(1)
    for call, agent, queue in (("f1", "ann", "fast"), ("s1", "bob", "slow")):
        centre.call(call, queue)
        centre.accept(agent, call)
    centre.at(11).agent_hangs_up("f1")  # fast: 10 s a call
    centre.at(201).agent_hangs_up("s1")  # slow: 200 s a call
    for call, agent, queue in (("f2", "ann", "fast"), ("s2", "bob", "slow")):
        centre.call(call, queue)
        centre.accept(agent, call)  # both busy again

    centre.at(210).call("c1", "fast")
    centre.at(256)  # moved to slow at 255

    assert queue_of(centre, "c1") == "slow"
    ewts = [a.ewt_seconds for a in announcements(centre, "c1")]
    assert len(ewts) == 3 and None not in ewts
    assert ewts == sorted(ewts, reverse=True)  # type: ignore[type-var]


def test_a_call_answered_at_time_zero_counts_its_whole_handle_time() -> None:
    centre = Centre().queue("sales")
    centre.agent("ann", queues=["sales"])
    centre.call("h1", "sales")
    centre.accept("ann", "h1")

    centre.at(100).agent_hangs_up("h1")

    assert centre.engine.queue_stats(QueueId("sales")).aht_seconds == 100


def test_a_callback_is_offered_when_the_estimate_is_over_the_threshold() -> None:
    centre = handled_one_call(100, callback_offer_over_seconds=60)

    centre.at(110).call("c1", "sales")

    [said] = announcements(centre, "c1")
    assert said.ewt_seconds is not None and said.ewt_seconds > 60
    assert said.offer_callback is True


def test_no_callback_is_offered_when_the_estimate_is_under_the_threshold() -> None:
    centre = handled_one_call(100, callback_offer_over_seconds=600)

    centre.at(110).call("c1", "sales")

    [said] = announcements(centre, "c1")
    assert said.offer_callback is False


def test_no_callback_is_offered_without_an_estimate() -> None:
    centre = Centre().queue("sales", callback_offer_over_seconds=1)

    centre.call("c1", "sales")

    [said] = announcements(centre, "c1")
    assert (said.ewt_seconds, said.offer_callback) == (None, False)
