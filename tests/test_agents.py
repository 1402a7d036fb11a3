"""Agents: a chosen status kept apart from the system state, pending changes, skills, devices."""

from __future__ import annotations

from acd.commands import (
    AgentConfigured,
    AgentDeviceLost,
    AgentDeviceRestored,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentWentNotReady,
    AgentWentReady,
    Command,
    WrapUpFinished,
)
from acd.config import AgentConfig
from acd.events import AgentStateChanged
from acd.ids import AgentId, Language, QueueId, Skill
from acd.states import AgentState, AgentStatus
from acd.testing import Centre

READY, NOT_READY, LOGGED_OUT = AgentStatus.READY, AgentStatus.NOT_READY, AgentStatus.LOGGED_OUT
IDLE, TALKING, WRAP_UP = AgentState.IDLE, AgentState.TALKING, AgentState.WRAP_UP


def ready(centre: Centre, agent: str) -> None:
    centre.do(AgentWentReady(agent_id=AgentId(agent)))


def not_ready(centre: Centre, agent: str, reason: str) -> None:
    centre.do(AgentWentNotReady(agent_id=AgentId(agent), reason=reason))


def log_out(centre: Centre, agent: str) -> None:
    centre.do(AgentLoggedOut(agent_id=AgentId(agent)))


def agent_events(centre: Centre, agent: str) -> list[AgentStateChanged]:
    return [e for e in centre.events_of(AgentStateChanged) if e.agent_id == agent]


def talking(centre: Centre, agent: str, call: str, queue: str = "sales") -> None:
    """Put a call through to ``agent`` (who must be the one it is offered to)."""
    centre.call(call, queue)
    assert centre.offered_to(call)[-1] == agent
    centre.accept(agent, call)


def assert_refused(centre: Centre, command: Command, error_id: str) -> None:
    assert centre.refused(command).error_id == error_id


# -- status ------------------------------------------------------------------------------


def test_login_leaves_the_agent_not_ready_and_offered_nothing() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"], ready=False)

    last = agent_events(centre, "alice")[-1]
    assert (last.from_status, last.to_status) == (LOGGED_OUT, NOT_READY)
    assert centre.agent_view("alice").status is NOT_READY
    centre.call("c1", "sales")
    assert centre.offered_to("c1") == []


def test_going_ready_makes_the_agent_take_the_waiting_call() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"], ready=False)
    centre.call("c1", "sales")

    centre.at(5)
    ready(centre, "alice")

    assert centre.offered_to("c1") == ["alice"]


def test_not_ready_carries_its_reason_code_and_stops_offers() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])

    not_ready(centre, "alice", "lunch")
    centre.call("c1", "sales")

    view = centre.agent_view("alice")
    assert (view.status, view.reason) == (NOT_READY, "lunch")
    last = agent_events(centre, "alice")[-1]
    assert (last.from_status, last.to_status, last.reason) == (READY, NOT_READY, "lunch")
    assert centre.offered_to("c1") == []


def test_not_ready_again_replaces_the_reason_code() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])
    not_ready(centre, "alice", "lunch")

    not_ready(centre, "alice", "training")

    assert centre.agent_view("alice").reason == "training"
    assert agent_events(centre, "alice")[-1].reason == "training"


def test_status_is_kept_apart_from_system_state_during_a_call() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])

    talking(centre, "alice", "c1")

    view = centre.agent_view("alice")
    assert (view.status, view.state, view.call_id) == (READY, TALKING, "c1")


def test_logout_of_an_idle_agent_is_immediate_and_stops_offers() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])

    log_out(centre, "alice")
    centre.call("c1", "sales")

    assert centre.agent_view("alice").status is LOGGED_OUT
    assert centre.offered_to("c1") == []


# -- pending changes ---------------------------------------------------------------------


def test_not_ready_asked_for_during_a_call_is_pending_until_the_call_ends() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])
    talking(centre, "alice", "c1")

    not_ready(centre, "alice", "break")

    view = centre.agent_view("alice")
    assert (view.status, view.state, view.pending_status) == (READY, TALKING, NOT_READY)
    centre.call("c2", "sales")
    centre.at(60).agent_hangs_up("c1")

    last = agent_events(centre, "alice")[-1]
    assert (last.from_state, last.to_state) == (TALKING, IDLE)
    assert (last.from_status, last.to_status, last.reason) == (READY, NOT_READY, "break")
    assert centre.agent_view("alice").pending_status is None
    assert centre.offered_to("c2") == []


def test_pending_not_ready_waits_for_the_end_of_wrap_up() -> None:
    centre = Centre().queue("sales", wrap_up_seconds=30)
    centre.agent("alice", queues=["sales"])
    talking(centre, "alice", "c1")
    not_ready(centre, "alice", "break")

    centre.at(60).agent_hangs_up("c1")
    assert (centre.agent_view("alice").status, centre.agent_view("alice").state) == (
        READY,
        WRAP_UP,
    )
    centre.at(70).do(WrapUpFinished(agent_id=AgentId("alice"), disposition="sold"))

    last = agent_events(centre, "alice")[-1]
    assert (last.from_state, last.to_state) == (WRAP_UP, IDLE)
    assert (last.from_status, last.to_status, last.reason) == (READY, NOT_READY, "break")


def test_pending_not_ready_applies_when_the_wrap_up_timer_ends() -> None:
    centre = Centre().queue("sales", wrap_up_seconds=30)
    centre.agent("alice", queues=["sales"])
    talking(centre, "alice", "c1")
    not_ready(centre, "alice", "break")
    centre.at(60).agent_hangs_up("c1")

    centre.at(90)

    last = agent_events(centre, "alice")[-1]
    assert (last.at, last.from_state, last.to_state) == (90, WRAP_UP, IDLE)
    assert (last.to_status, last.reason) == (NOT_READY, "break")


def test_logout_asked_for_during_a_call_applies_when_the_call_ends() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])
    talking(centre, "alice", "c1")

    log_out(centre, "alice")
    assert centre.agent_view("alice").status is READY
    assert centre.agent_view("alice").pending_status is LOGGED_OUT
    centre.at(60).agent_hangs_up("c1")

    last = agent_events(centre, "alice")[-1]
    assert (last.from_state, last.to_state) == (TALKING, IDLE)
    assert (last.from_status, last.to_status) == (READY, LOGGED_OUT)


def test_ready_cancels_a_pending_not_ready() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])
    talking(centre, "alice", "c1")
    not_ready(centre, "alice", "break")

    ready(centre, "alice")
    centre.call("c2", "sales")
    centre.at(60).agent_hangs_up("c1")

    assert centre.agent_view("alice").pending_status is None
    assert centre.agent_view("alice").status is READY
    assert centre.offered_to("c2") == ["alice"]


# -- skills, languages, queues -------------------------------------------------------------


def test_an_agent_is_offered_only_calls_of_queues_they_are_a_member_of() -> None:
    centre = Centre().queue("sales").queue("support")
    centre.agent("alice", queues=["sales"])

    centre.call("c1", "support")
    centre.call("c2", "sales")

    assert centre.offered_to("c1") == []
    assert centre.offered_to("c2") == ["alice"]


def test_an_agent_below_the_queue_s_skill_level_is_not_offered_its_calls() -> None:
    centre = Centre().queue("billing", skills={"billing": 5})
    centre.agent("alice", queues=["billing"], skills={"billing": 4})

    centre.call("c1", "billing")

    assert centre.offered_to("c1") == []


def test_an_agent_below_the_queue_s_language_level_is_not_offered_its_calls() -> None:
    centre = Centre().queue("french", language="fr", language_level=6)
    centre.agent("alice", queues=["french"], languages={"fr": 5, "en": 9})

    centre.call("c1", "french")

    assert centre.offered_to("c1") == []


def test_reconfiguring_an_agent_with_the_needed_skill_gets_them_the_waiting_call() -> None:
    centre = Centre().queue("billing", skills={"billing": 5})
    centre.agent("alice", queues=["billing"], skills={"billing": 4})
    centre.call("c1", "billing")

    config = AgentConfig(
        id=AgentId("alice"), skills={Skill("billing"): 7}, queues=frozenset({QueueId("billing")})
    )
    centre.at(10).do(AgentConfigured(config=config))

    assert centre.offered_to("c1") == ["alice"]


def test_joining_a_queue_gets_the_agent_its_waiting_call() -> None:
    centre = Centre().queue("sales").queue("support")
    centre.agent("alice", queues=["sales"])
    centre.call("c1", "support")

    config = AgentConfig(
        id=AgentId("alice"),
        languages={Language("en"): 5},
        queues=frozenset({QueueId("sales"), QueueId("support")}),
    )
    centre.at(10).do(AgentConfigured(config=config))

    assert centre.offered_to("c1") == ["alice"]


# -- devices -------------------------------------------------------------------------------


def test_a_lost_device_makes_the_agent_not_responding_and_skipped_by_routing() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])

    centre.do(AgentDeviceLost(agent_id=AgentId("alice")))
    centre.call("c1", "sales")

    view = centre.agent_view("alice")
    assert (view.status, view.state) == (READY, AgentState.NOT_RESPONDING)
    assert centre.offered_to("c1") == []


def test_a_restored_device_makes_the_agent_idle_and_offered_the_waiting_call() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])
    centre.do(AgentDeviceLost(agent_id=AgentId("alice")))
    centre.call("c1", "sales")

    centre.at(20).do(AgentDeviceRestored(agent_id=AgentId("alice")))

    restored = [e for e in agent_events(centre, "alice") if e.to_state is IDLE][-1]
    assert restored.from_state is AgentState.NOT_RESPONDING
    assert centre.offered_to("c1") == ["alice"]


# -- commands that do not fit --------------------------------------------------------------


def test_logging_in_twice_is_refused_and_changes_nothing() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])

    assert_refused(centre, AgentLoggedIn(agent_id=AgentId("alice")), "already_logged_in")


def test_going_ready_while_logged_out_is_refused_and_changes_nothing() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])
    log_out(centre, "alice")

    assert_refused(centre, AgentWentReady(agent_id=AgentId("alice")), "logged_out")


def test_commands_for_an_unknown_agent_are_refused() -> None:
    centre = Centre().queue("sales")

    assert_refused(centre, AgentLoggedIn(agent_id=AgentId("nobody")), "unknown_agent")


def test_finishing_wrap_up_outside_wrap_up_is_refused_and_changes_nothing() -> None:
    centre = Centre().queue("sales", wrap_up_seconds=30)
    centre.agent("alice", queues=["sales"])
    talking(centre, "alice", "c1")

    assert_refused(centre, WrapUpFinished(agent_id=AgentId("alice")), "wrong_state")


def test_restoring_a_device_that_was_not_lost_is_refused_and_changes_nothing() -> None:
    centre = Centre().queue("sales")
    centre.agent("alice", queues=["sales"])

    assert_refused(centre, AgentDeviceRestored(agent_id=AgentId("alice")), "wrong_state")
