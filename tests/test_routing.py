"""Routing: eligibility, strategies, what a freed agent takes next, and customer affinity."""

from __future__ import annotations

from acd.commands import (
    AgentDeviceLost,
    AgentDeviceRestored,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentWentNotReady,
    AgentWentReady,
)
from acd.config import AffinityMode, Strategy
from acd.ids import AgentId, CustomerId
from acd.testing import Centre

KAREN = CustomerId("karen")


def ready(centre: Centre, agent: str) -> None:
    centre.do(AgentWentReady(agent_id=AgentId(agent)))


def handle(centre: Centre, agent: str, call: str, queue: str, **fields: object) -> None:
    """``call`` arrives, is offered to ``agent`` and answered."""
    centre.call(call, queue, **fields)
    assert centre.offered_to(call) == [agent]
    centre.accept(agent, call)


def first_offers(centre: Centre) -> list[tuple[str, str]]:
    """(call, agent) of every offer, in order."""
    return [(o.call_id, o.agent_id) for o in centre.offers()]


# -- eligibility ---------------------------------------------------------------------------


def test_a_call_goes_only_to_agents_with_the_required_skill_levels() -> None:
    centre = Centre().queue("billing", skills={"billing": 5})
    centre.agent("ann", queues=["billing"], skills={"billing": 4})
    centre.agent("bob", queues=["billing"], skills={"billing": 5})

    centre.call("c1", "billing")

    assert centre.offered_to("c1") == ["bob"]


def test_a_call_s_own_skills_add_to_the_queue_s_requirements() -> None:
    centre = Centre().queue("billing", skills={"billing": 2})
    centre.agent("ann", queues=["billing"], skills={"billing": 9})
    centre.agent("bob", queues=["billing"], skills={"billing": 2, "disputes": 3})

    centre.call("c1", "billing", skills={"disputes": 3})

    assert centre.offered_to("c1") == ["bob"]


def test_a_call_no_agent_qualifies_for_waits_instead_of_going_to_an_unqualified_agent() -> None:
    centre = Centre().queue("billing", skills={"billing": 5})
    centre.agent("ann", queues=["billing"], skills={"billing": 4, "sales": 9})

    centre.call("c1", "billing")

    assert centre.offered_to("c1") == []
    view = centre.call_view("c1")
    assert view is not None and view.position == 1


def test_a_call_goes_only_to_agents_speaking_the_queue_s_language_at_its_level() -> None:
    centre = Centre().queue("french", language="fr", language_level=3)
    centre.agent("ann", queues=["french"], languages={"fr": 2})
    centre.agent("bob", queues=["french"], languages={"fr": 3})

    centre.call("c1", "french")

    assert centre.offered_to("c1") == ["bob"]


def test_a_call_s_language_replaces_the_queue_s_language() -> None:
    centre = Centre().queue("support", language="en")
    centre.agent("ann", queues=["support"], languages={"en": 9})
    centre.agent("bob", queues=["support"], languages={"en": 1, "de": 5})

    centre.call("c1", "support", language="de")

    assert centre.offered_to("c1") == ["bob"]


# -- strategies ------------------------------------------------------------------------------


def test_longest_idle_is_the_default_strategy() -> None:
    centre = Centre().queue("sales")
    for agent in ("ann", "bob", "cat"):
        centre.agent(agent, queues=["sales"])
    handle(centre, "ann", "c1", "sales")
    handle(centre, "bob", "c2", "sales")
    handle(centre, "cat", "c3", "sales")
    centre.at(5).agent_hangs_up("c3")
    centre.at(10).agent_hangs_up("c1")
    centre.at(15).agent_hangs_up("c2")

    centre.at(20).call("c4", "sales")
    centre.call("c5", "sales")
    centre.call("c6", "sales")

    assert first_offers(centre)[3:] == [("c4", "cat"), ("c5", "ann"), ("c6", "bob")]


def test_longest_idle_counts_from_when_the_agent_went_ready() -> None:
    centre = Centre().queue("sales")
    centre.agent("ann", queues=["sales"], ready=False)  # on a break until 60
    centre.agent("bob", queues=["sales"])  # ready since 0
    centre.at(60)
    ready(centre, "ann")

    centre.at(100).call("c1", "sales")

    assert centre.offered_to("c1") == ["bob"]


def test_most_skilled_offers_the_call_to_the_highest_level_agent() -> None:
    centre = Centre().queue("billing", skills={"billing": 1}, strategy=Strategy.MOST_SKILLED)
    centre.agent("ann", queues=["billing"], skills={"billing": 3})
    centre.agent("bob", queues=["billing"], skills={"billing": 9})
    centre.agent("cat", queues=["billing"], skills={"billing": 6})

    centre.call("c1", "billing")
    centre.call("c2", "billing")

    assert first_offers(centre) == [("c1", "bob"), ("c2", "cat")]


def test_round_robin_offers_the_call_to_the_agent_least_recently_offered_one() -> None:
    centre = Centre().queue("sales", strategy=Strategy.ROUND_ROBIN)
    centre.agent("ann", queues=["sales"])
    centre.agent("bob", queues=["sales"])
    handle(centre, "ann", "c1", "sales")
    centre.at(10)
    handle(centre, "bob", "c2", "sales")
    centre.at(11).agent_hangs_up("c2")  # bob has been idle longest from here on
    centre.at(100).agent_hangs_up("c1")

    centre.at(200).call("c3", "sales")

    assert centre.offered_to("c3") == ["ann"]


def test_fewest_calls_offers_the_call_to_the_agent_who_answered_fewest() -> None:
    centre = Centre().queue("sales", strategy=Strategy.FEWEST_CALLS)
    centre.agent("ann", queues=["sales"])
    centre.agent("bob", queues=["sales"])
    centre.at(5).do(AgentDeviceLost(agent_id=AgentId("bob")))
    handle(centre, "ann", "c1", "sales")
    centre.at(10).agent_hangs_up("c1")  # ann: 1 call, idle since 10
    centre.at(30).do(AgentDeviceRestored(agent_id=AgentId("bob")))  # bob: 0 calls, idle since 30

    centre.at(40).call("c2", "sales")

    assert centre.offered_to("c2") == ["bob"]


def test_fewest_calls_counts_the_calls_answered_since_login() -> None:
    centre = Centre().queue("sales", strategy=Strategy.FEWEST_CALLS)
    centre.agent("ann", queues=["sales"])
    centre.agent("bob", queues=["sales"])
    handle(centre, "ann", "c1", "sales")
    centre.at(1).agent_hangs_up("c1")
    handle(centre, "bob", "c2", "sales")
    centre.at(2).agent_hangs_up("c2")
    handle(centre, "ann", "c3", "sales")
    centre.at(3).agent_hangs_up("c3")  # ann 2 calls, bob 1

    centre.at(10).do(AgentLoggedOut(agent_id=AgentId("ann")))
    centre.do(AgentLoggedIn(agent_id=AgentId("ann")))
    ready(centre, "ann")  # ann: no call since this login
    centre.at(20).call("c4", "sales")

    assert centre.offered_to("c4") == ["ann"]


# -- what a freed agent takes next ----------------------------------------------------------


def test_a_freed_agent_takes_the_highest_priority_call_across_their_queues() -> None:
    centre = Centre().queue("sales").queue("vip")
    centre.agent("ann", queues=["sales", "vip"], ready=False)
    centre.call("c1", "sales")
    centre.at(5).call("c2", "vip", priority=5)

    centre.at(10)
    ready(centre, "ann")

    assert centre.offered_to("c2") == ["ann"]
    assert centre.offered_to("c1") == []


def test_a_freed_agent_takes_the_oldest_call_across_their_queues() -> None:
    centre = Centre().queue("sales").queue("support")
    centre.agent("ann", queues=["sales", "support"], ready=False)
    centre.call("c1", "sales")
    centre.at(5).call("c2", "support")
    centre.at(10).call("c3", "sales")

    centre.at(20)
    ready(centre, "ann")
    for t, call in ((30, "c1"), (40, "c2")):
        centre.accept("ann", call)
        centre.at(t).agent_hangs_up(call)

    assert [call for call, _ in first_offers(centre)] == ["c1", "c2", "c3"]


def test_queue_weight_breaks_the_tie_between_equally_old_calls() -> None:
    centre = Centre().queue("sales", weight=0).queue("gold", weight=5)
    centre.agent("ann", queues=["sales", "gold"], ready=False)
    centre.at(5).call("c1", "sales")
    centre.call("c2", "gold")

    centre.at(10)
    ready(centre, "ann")

    assert centre.offered_to("c2") == ["ann"]


def test_priority_beats_waiting_time_within_a_queue() -> None:
    centre = Centre().queue("sales")
    centre.agent("ann", queues=["sales"], ready=False)
    centre.call("c1", "sales")
    centre.at(5).call("c2", "sales", priority=9)

    centre.at(10)
    ready(centre, "ann")

    assert centre.offered_to("c2") == ["ann"]


def test_calls_of_one_queue_with_equal_priority_are_offered_in_arrival_order() -> None:
    centre = Centre().queue("sales")
    for agent in ("ann", "bob", "cat"):
        centre.agent(agent, queues=["sales"], ready=False)
    centre.call("c1", "sales")
    centre.call("c2", "sales")
    centre.at(1).call("c3", "sales")

    centre.at(10)
    for agent in ("cat", "ann", "bob"):
        ready(centre, agent)

    assert first_offers(centre) == [("c1", "cat"), ("c2", "ann"), ("c3", "bob")]


# -- affinity ------------------------------------------------------------------------------


def last_agent_centre(mode: AffinityMode = AffinityMode.LAST_AGENT, **queue: object) -> Centre:
    """Bob answered Karen's call c0 and is idle since 10; ann has been ready longer."""
    centre = Centre().queue("care", affinity=mode, **queue)
    centre.agent("ann", queues=["care"], ready=False)
    centre.agent("bob", queues=["care"])
    centre.agent("cat", queues=["care"], ready=False)
    handle(centre, "bob", "c0", "care", customer_id=KAREN)
    centre.at(1)
    ready(centre, "ann")
    centre.at(10).agent_hangs_up("c0")
    return centre


def test_the_last_agent_gets_the_customer_s_next_call_before_a_longer_idle_agent() -> None:
    centre = last_agent_centre()

    centre.at(20).call("c1", "care", customer_id=KAREN)
    centre.call("c2", "care", customer_id=CustomerId("someone_else"))

    assert centre.offered_to("c1") == ["bob"]
    assert centre.offered_to("c2") == ["ann"]


def test_without_affinity_the_customer_s_call_goes_to_the_longest_idle_agent() -> None:
    centre = last_agent_centre(AffinityMode.OFF)

    centre.at(20).call("c1", "care", customer_id=KAREN)

    assert centre.offered_to("c1") == ["ann"]


def test_the_dedicated_agent_gets_the_call_in_dedicated_mode() -> None:
    centre = last_agent_centre(AffinityMode.DEDICATED)
    ready(centre, "cat")

    centre.at(20).call("c1", "care", customer_id=KAREN, dedicated_agent=AgentId("cat"))

    assert centre.offered_to("c1") == ["cat"]


def test_dedicated_mode_ignores_the_last_agent() -> None:
    centre = last_agent_centre(AffinityMode.DEDICATED)

    centre.at(20).call("c1", "care", customer_id=KAREN)

    assert centre.offered_to("c1") == ["ann"]


def test_dedicated_or_last_prefers_the_dedicated_agent_then_the_last_agent() -> None:
    centre = last_agent_centre(AffinityMode.DEDICATED_OR_LAST)
    ready(centre, "cat")

    centre.at(20).call("c1", "care", customer_id=KAREN, dedicated_agent=AgentId("cat"))
    centre.call("c2", "care", customer_id=KAREN)

    assert centre.offered_to("c1") == ["cat"]
    assert centre.offered_to("c2") == ["bob"]


def test_a_logged_out_dedicated_agent_is_not_waited_for() -> None:
    centre = last_agent_centre(AffinityMode.DEDICATED, affinity_window_seconds=30)
    centre.do(AgentLoggedOut(agent_id=AgentId("cat")))

    centre.at(20).call("c1", "care", dedicated_agent=AgentId("cat"))

    assert centre.offered_to("c1") == ["ann"]


def test_a_call_waits_up_to_the_window_for_its_busy_last_agent() -> None:
    centre = last_agent_centre(affinity_window_seconds=30)
    handle(centre, "bob", "x1", "care", customer_id=KAREN)  # bob busy; ann idle

    centre.at(20).call("c1", "care", customer_id=KAREN)
    centre.at(40)
    view = centre.call_view("c1")
    assert view is not None and view.waiting_for == "bob"
    assert centre.offered_to("c1") == []
    centre.agent_hangs_up("x1")

    assert centre.offered_to("c1") == ["bob"]


def test_after_the_window_the_call_falls_back_to_the_other_agents() -> None:
    centre = last_agent_centre(affinity_window_seconds=30)
    handle(centre, "bob", "x1", "care", customer_id=KAREN)

    centre.at(20).call("c1", "care", customer_id=KAREN)
    centre.at(49.9)
    assert centre.offered_to("c1") == []
    centre.at(50)

    assert centre.offered_to("c1") == ["ann"]


def test_a_call_falling_back_after_the_window_keeps_its_place() -> None:
    centre = last_agent_centre(affinity_window_seconds=30)
    handle(centre, "bob", "x1", "care", customer_id=KAREN)
    handle(centre, "ann", "x2", "care")  # nobody is free
    centre.at(20).call("c1", "care", customer_id=KAREN)
    centre.at(25).call("c2", "care")

    centre.at(50)  # the window ends: c1 waits with everyone, from its arrival at 20
    centre.at(60).agent_hangs_up("x2")

    assert centre.offered_to("c1") == ["ann"]
    assert centre.offered_to("c2") == []


def test_the_call_falls_back_at_once_when_its_preferred_agent_goes_not_ready() -> None:
    centre = last_agent_centre(affinity_window_seconds=30)
    handle(centre, "bob", "x1", "care", customer_id=KAREN)
    centre.at(20).call("c1", "care", customer_id=KAREN)

    centre.at(25).do(AgentWentNotReady(agent_id=AgentId("bob"), reason="training"))

    assert centre.offered_to("c1") == ["ann"]
    assert first_offers(centre)[-1] == ("c1", "ann")


def test_a_call_does_not_wait_for_a_preferred_agent_whose_device_is_lost() -> None:
    centre = last_agent_centre(affinity_window_seconds=30)
    centre.at(15).do(AgentDeviceLost(agent_id=AgentId("bob")))

    centre.at(20).call("c1", "care", customer_id=KAREN)

    assert centre.offered_to("c1") == ["ann"]


def test_an_ineligible_last_agent_is_ignored() -> None:
    centre = Centre()
    for queue, skills in (("general", {}), ("billing", {"billing": 5})):
        centre.queue(queue, skills=skills, affinity=AffinityMode.LAST_AGENT)
    centre.agent("ann", queues=["general", "billing"], skills={"billing": 8}, ready=False)
    centre.agent("bob", queues=["general", "billing"], skills={"billing": 2})
    handle(centre, "bob", "c0", "general", customer_id=KAREN)
    centre.at(10).agent_hangs_up("c0")  # bob is idle and Karen's last agent
    ready(centre, "ann")

    centre.at(20).call("c1", "billing", customer_id=KAREN)

    assert centre.offered_to("c1") == ["ann"]


def test_an_ineligible_last_agent_is_not_waited_for() -> None:
    centre = Centre()
    for queue, skills in (("general", {}), ("billing", {"billing": 5})):
        centre.queue(
            queue, skills=skills, affinity=AffinityMode.LAST_AGENT, affinity_window_seconds=30
        )
    centre.agent("ann", queues=["general", "billing"], skills={"billing": 8}, ready=False)
    centre.agent("bob", queues=["general", "billing"], skills={"billing": 2})
    handle(centre, "bob", "c0", "general", customer_id=KAREN)  # bob stays busy
    ready(centre, "ann")

    centre.at(20).call("c1", "billing", customer_id=KAREN)

    assert centre.offered_to("c1") == ["ann"]
