"""Sequences an adversarial review found wrong once; each pins the behaviour now expected."""

from __future__ import annotations

from acd.actions import PlayAnnouncement, RetractOffer, TransferToSite
from acd.commands import AgentConfigured, AgentDeviceLost, AgentWentNotReady, AgentWentReady
from acd.config import (
    AffinityMode,
    AgentConfig,
    OverflowCondition,
    OverflowRule,
    RelaxStep,
    Strategy,
    Target,
    WhenUnstaffed,
)
from acd.ids import AgentId, QueueId
from acd.states import AgentState, CallState
from acd.testing import Centre


def test_a_ring_timeout_at_the_moment_of_a_relaxation_step_keeps_every_later_step() -> None:
    centre = Centre().queue(
        "q",
        skills={"s": 5},
        ring_timeout_seconds=10,
        max_misses=1,
        relaxation=(
            RelaxStep(after_seconds=10, lower_levels_by=1),
            RelaxStep(after_seconds=20, lower_levels_by=3),
        ),
    )
    centre.agent("hi", queues=["q"], skills={"s": 5}, ready=False)
    centre.agent("lo", queues=["q"], skills={"s": 2})  # eligible from the second step
    centre.call("x", "q")
    centre.do(AgentWentReady(agent_id=AgentId("hi")))  # rings out at t=10, with step one
    centre.at(30)
    assert centre.offered_to("x") == ["hi", "lo"]


def test_an_agent_set_not_ready_by_missed_offers_releases_the_calls_waiting_for_them() -> None:
    centre = Centre().queue(
        "q",
        affinity=AffinityMode.LAST_AGENT,
        affinity_window_seconds=300,
        max_misses=1,
        ring_timeout_seconds=10,
    )
    centre.agent("a", queues=["q"])
    centre.call("c0", "q", customer_id="cust")
    centre.accept("a", "c0")
    centre.agent_hangs_up("c0")
    centre.call("x", "q")  # rings a
    centre.agent("b", queues=["q"], ready=False)
    centre.call("y", "q", customer_id="cust")  # waits for a, who is ringing
    assert centre.call_view("y").waiting_for == "a"
    centre.at(10)  # x rings out: a is set not ready
    assert centre.call_view("y").waiting_for is None


def test_an_agent_moved_out_of_the_queue_is_not_offered_the_calls_waiting_for_them() -> None:
    centre = Centre().queue("q", affinity=AffinityMode.LAST_AGENT, affinity_window_seconds=300)
    centre.queue("other")
    centre.agent("a", queues=["q"])
    centre.call("c0", "q", customer_id="cust")
    centre.accept("a", "c0")
    centre.call("y", "q", customer_id="cust")
    assert centre.call_view("y").waiting_for == "a"
    config = AgentConfig(id=AgentId("a"), queues=frozenset({QueueId("other")}))
    centre.do(AgentConfigured(config=config))
    centre.agent_hangs_up("c0")
    assert centre.offered_to("y") == []


def test_an_announcement_without_an_estimate_does_not_lift_the_cap_on_later_ones() -> None:
    centre = Centre().queue("q", announce_every_seconds=10)
    centre.agent("a", queues=["q"])
    centre.call("c0", "q")
    centre.accept("a", "c0")
    centre.at(100).agent_hangs_up("c0")
    centre.call("c1", "q")
    centre.accept("a", "c1")
    centre.call("x", "q")
    centre.at(105).do(AgentWentNotReady(agent_id=AgentId("a"), reason="break"))
    centre.at(110)  # nobody expected to free up: no estimate
    centre.do(AgentWentReady(agent_id=AgentId("a")))
    centre.call("vip", "q", priority=5)
    centre.at(120)
    said = [
        a.ewt_seconds
        for a in centre.actions_of(PlayAnnouncement)
        if a.call_id == "x" and a.ewt_seconds is not None
    ]
    assert said == sorted(said, reverse=True)


def test_a_later_wait_rule_fires_on_time_while_an_earlier_target_keeps_refusing() -> None:
    centre = Centre().queue("backup", when_unstaffed=WhenUnstaffed.BLOCK)
    centre.queue(
        "q",
        overflow=(
            OverflowRule(
                when=OverflowCondition.WAIT_OVER, seconds=15, target=Target(queue=QueueId("backup"))
            ),
            OverflowRule(
                when=OverflowCondition.WAIT_OVER, seconds=20, target=Target(site="sip:remote")
            ),
        ),
    )
    centre.call("x", "q")
    centre.at(20)
    assert [a.call_id for a in centre.actions_of(TransferToSite)] == ["x"]


def test_dedicated_or_last_tries_the_last_agent_when_the_dedicated_one_is_not_ready() -> None:
    centre = Centre().queue("q", affinity=AffinityMode.DEDICATED_OR_LAST)
    centre.agent("last", queues=["q"])
    centre.agent("ded", queues=["q"], ready=False)
    centre.call("c0", "q", customer_id="k")
    centre.accept("last", "c0")
    centre.agent_hangs_up("c0")
    centre.agent("other", queues=["q"])  # idle longer than "last" from now on
    centre.at(5).call("c1", "q", customer_id="k", dedicated_agent="ded")
    assert centre.offered_to("c1") == ["last"]


def test_a_missed_offer_goes_to_another_free_agent_when_a_relaxation_step_is_due() -> None:
    centre = Centre().queue(
        "q",
        skills={"s": 5},
        strategy=Strategy.MOST_SKILLED,
        ring_timeout_seconds=10,
        relaxation=(RelaxStep(after_seconds=10, lower_levels_by=1),),
    )
    centre.agent("hi", queues=["q"], skills={"s": 9}, ready=False)
    centre.agent("mid", queues=["q"], skills={"s": 4})
    centre.call("x", "q")
    centre.do(AgentWentReady(agent_id=AgentId("hi")))
    centre.at(10)
    assert centre.offered_to("x") == ["hi", "mid"]


def test_relaxation_steps_only_ever_loosen() -> None:
    centre = Centre().queue(
        "q",
        language="fr",
        relaxation=(
            RelaxStep(after_seconds=10, any_language=True),
            RelaxStep(after_seconds=20, lower_levels_by=1),
        ),
    )
    centre.agent("en_only", queues=["q"], languages={"en": 5}, ready=False)
    centre.call("x", "q")
    centre.at(25).do(AgentWentReady(agent_id=AgentId("en_only")))
    assert centre.offered_to("x") == ["en_only"]


def test_a_new_queue_configuration_applies_to_calls_already_waiting() -> None:
    centre = Centre().queue("q", skills={"s": 5})
    centre.agent("lo", queues=["q"], skills={"s": 2})
    centre.call("x", "q")
    centre.at(1).queue(
        "q",
        skills={"s": 5},
        relaxation=(RelaxStep(after_seconds=10, lower_levels_by=3),),
        overflow=(
            OverflowRule(when=OverflowCondition.WAIT_OVER, seconds=60, target=Target(site="sip:b")),
        ),
    )
    centre.at(10)
    assert centre.offered_to("x") == ["lo"]
    view = centre.call_view("x")
    assert view is not None and view.state is CallState.OFFERED


def test_a_replaced_relaxation_ladder_drops_the_old_steps() -> None:
    centre = Centre().queue(
        "q", skills={"s": 5}, relaxation=(RelaxStep(after_seconds=10, lower_levels_by=3),)
    )
    centre.agent("lo", queues=["q"], skills={"s": 2})
    centre.call("x", "q")
    centre.at(5).queue(
        "q", skills={"s": 5}, relaxation=(RelaxStep(after_seconds=100, lower_levels_by=3),)
    )
    centre.at(50)
    assert centre.offered_to("x") == []
    centre.at(100)
    assert centre.offered_to("x") == ["lo"]


def test_a_phone_lost_while_ringing_sends_the_call_to_another_agent_without_a_miss() -> None:
    centre = Centre().queue("q")
    centre.agent("a", queues=["q"])
    centre.agent("b", queues=["q"])
    centre.call("x", "q")
    assert centre.offered_to("x") == ["a"]
    centre.at(3).do(AgentDeviceLost(agent_id=AgentId("a")))
    assert centre.offered_to("x") == ["a", "b"]
    assert [r.call_id for r in centre.actions_of(RetractOffer)] == ["x"]
    lost = centre.agent_view("a")
    assert lost.state is AgentState.NOT_RESPONDING and lost.misses == 0


def test_a_call_sent_on_by_a_full_queue_takes_the_priority_of_the_queue_it_joins() -> None:
    centre = Centre().queue("vip", priority=5)
    centre.queue("front", max_size=0, when_full=Target(queue=QueueId("vip")))
    centre.call("x", "front")
    centre.call("y", "front", priority=1)
    x, y = centre.call_view("x"), centre.call_view("y")
    assert x is not None and x.queue_id == "vip" and x.priority == 5
    assert y is not None and y.priority == 1  # a priority the call came with is kept
