"""Admission: a full queue, nobody staffed, disaster mode: overflow, block, or let in."""

from __future__ import annotations

import pytest

from acd.actions import RejectCall, TransferToSite
from acd.commands import AgentLoggedOut, DisasterModeChanged
from acd.config import Target, WhenUnstaffed
from acd.errors import CommandRejected
from acd.events import CallStateChanged
from acd.ids import AgentId, QueueId
from acd.states import CallState, Outcome
from acd.testing import Centre

BACKUP = "sip:overflow@backup.example.net"
DR_SITE = "sip:queue@dr.example.net"


def call_events(centre: Centre, call: str) -> list[CallStateChanged]:
    return [e for e in centre.events_of(CallStateChanged) if e.call_id == call]


def outcome(centre: Centre, call: str) -> Outcome | None:
    """The call's one outcome (None while it is still in the centre)."""
    outcomes = [e.outcome for e in call_events(centre, call) if e.outcome is not None]
    assert len(outcomes) <= 1, f"{call} has outcomes {outcomes}"
    return outcomes[0] if outcomes else None


def full_queue(**config: object) -> Centre:
    """A ``sales`` queue of one place, taken by c1 (nobody is ready)."""
    centre = Centre().queue("spill").queue("sales", max_size=1, **config)
    centre.call("c1", "sales")
    return centre


# -- a full queue ----------------------------------------------------------------------------


def test_a_call_to_a_full_queue_without_a_target_is_blocked() -> None:
    centre = full_queue()

    centre.at(5).call("c2", "sales")

    assert centre.actions_of(RejectCall) == [RejectCall(call_id="c2", reason="queue_full")]
    assert outcome(centre, "c2") is Outcome.BLOCKED
    assert centre.call_view("c2") is None
    assert centre.engine.queue_stats(QueueId("sales")).size == 1


def test_a_call_to_a_full_queue_goes_to_its_when_full_queue() -> None:
    centre = full_queue(when_full=Target(queue=QueueId("spill")))

    centre.at(5).call("c2", "sales")

    view = centre.call_view("c2")
    assert view is not None and (view.queue_id, view.state) == ("spill", CallState.QUEUED)
    assert call_events(centre, "c2")[-1].queue_id == "spill"
    assert outcome(centre, "c2") is None
    assert centre.actions_of(RejectCall) == []


def test_a_call_to_a_full_queue_is_transferred_to_its_when_full_site() -> None:
    centre = full_queue(when_full=Target(site=BACKUP))

    centre.at(5).call("c2", "sales")

    assert centre.actions_of(TransferToSite) == [
        TransferToSite(call_id="c2", site=BACKUP, reason="queue_full")
    ]
    assert outcome(centre, "c2") is Outcome.OVERFLOWED
    assert centre.call_view("c2") is None


def test_a_place_freed_in_a_full_queue_lets_the_next_call_in() -> None:
    centre = full_queue()
    centre.at(5).caller_hangs_up("c1")

    centre.at(6).call("c2", "sales")

    assert outcome(centre, "c2") is None
    view = centre.call_view("c2")
    assert view is not None and view.state is CallState.QUEUED


def test_a_ringing_call_still_takes_its_place_in_the_queue() -> None:
    centre = Centre().queue("sales", max_size=1)
    centre.agent("ann", queues=["sales"])
    centre.call("c1", "sales")  # ringing ann

    centre.at(1).call("c2", "sales")

    assert outcome(centre, "c2") is Outcome.BLOCKED


def test_an_answered_call_frees_its_place_in_the_queue() -> None:
    centre = Centre().queue("sales", max_size=1)
    centre.agent("ann", queues=["sales"])
    centre.call("c1", "sales")
    centre.accept("ann", "c1")

    centre.at(1).call("c2", "sales")

    assert outcome(centre, "c2") is None


# -- nobody staffed ------------------------------------------------------------------------


def test_when_unstaffed_block_refuses_a_call_nobody_is_logged_in_for() -> None:
    centre = Centre().queue("sales", when_unstaffed=WhenUnstaffed.BLOCK)

    centre.call("c1", "sales")

    assert centre.actions_of(RejectCall) == [RejectCall(call_id="c1", reason="unstaffed")]
    assert outcome(centre, "c1") is Outcome.BLOCKED


def test_when_unstaffed_overflow_sends_the_call_to_the_queue_s_site() -> None:
    centre = Centre().queue(
        "sales", when_unstaffed=WhenUnstaffed.OVERFLOW, when_full=Target(site=BACKUP)
    )

    centre.call("c1", "sales")

    assert centre.actions_of(TransferToSite) == [
        TransferToSite(call_id="c1", site=BACKUP, reason="unstaffed")
    ]
    assert outcome(centre, "c1") is Outcome.OVERFLOWED


def test_when_unstaffed_overflow_sends_the_call_to_the_queue_s_target_queue() -> None:
    centre = Centre().queue("spill")
    centre.queue(
        "sales", when_unstaffed=WhenUnstaffed.OVERFLOW, when_full=Target(queue=QueueId("spill"))
    )

    centre.call("c1", "sales")

    view = centre.call_view("c1")
    assert view is not None and view.queue_id == "spill"


def test_when_unstaffed_overflow_without_a_target_blocks() -> None:
    centre = Centre().queue("sales", when_unstaffed=WhenUnstaffed.OVERFLOW)

    centre.call("c1", "sales")

    assert outcome(centre, "c1") is Outcome.BLOCKED


def test_when_unstaffed_queue_lets_the_call_wait_for_someone_to_log_in() -> None:
    centre = Centre().queue("sales", when_unstaffed=WhenUnstaffed.QUEUE)

    centre.call("c1", "sales")
    centre.at(30).agent("ann", queues=["sales"])

    assert outcome(centre, "c1") is None
    assert centre.offered_to("c1") == ["ann"]


def test_a_logged_in_agent_who_is_not_ready_counts_as_staffed() -> None:
    centre = Centre().queue("sales", when_unstaffed=WhenUnstaffed.BLOCK)
    centre.agent("ann", queues=["sales"], ready=False)

    centre.call("c1", "sales")

    assert outcome(centre, "c1") is None
    assert centre.actions_of(RejectCall) == []


def test_a_logged_in_agent_without_the_call_s_skills_does_not_count_as_staffed() -> None:
    centre = Centre().queue("billing", skills={"billing": 5}, when_unstaffed=WhenUnstaffed.BLOCK)
    centre.agent("ann", queues=["billing"], skills={"billing": 2})

    centre.call("c1", "billing")

    assert outcome(centre, "c1") is Outcome.BLOCKED


def test_a_logged_out_agent_does_not_count_as_staffed() -> None:
    centre = Centre().queue("sales", when_unstaffed=WhenUnstaffed.BLOCK)
    centre.agent("ann", queues=["sales"])
    centre.do(AgentLoggedOut(agent_id=AgentId("ann")))

    centre.call("c1", "sales")

    assert outcome(centre, "c1") is Outcome.BLOCKED


# -- disaster mode ---------------------------------------------------------------------------


def test_disaster_mode_sends_every_new_call_to_the_site_even_with_agents_idle() -> None:
    centre = Centre().queue("sales").queue("support")
    centre.agent("ann", queues=["sales", "support"])

    centre.do(DisasterModeChanged(active=True, site=DR_SITE))
    centre.at(1).call("c1", "sales")
    centre.call("c2", "support")

    assert centre.actions_of(TransferToSite) == [
        TransferToSite(call_id="c1", site=DR_SITE, reason="disaster_mode"),
        TransferToSite(call_id="c2", site=DR_SITE, reason="disaster_mode"),
    ]
    assert (outcome(centre, "c1"), outcome(centre, "c2")) == (
        Outcome.OVERFLOWED,
        Outcome.OVERFLOWED,
    )
    assert centre.offers() == []


def test_calls_are_routed_again_once_disaster_mode_ends() -> None:
    centre = Centre().queue("sales")
    centre.agent("ann", queues=["sales"])
    centre.do(DisasterModeChanged(active=True, site=DR_SITE))

    centre.at(10).do(DisasterModeChanged(active=False))
    centre.call("c1", "sales")

    assert centre.offered_to("c1") == ["ann"]
    assert centre.engine.disaster_site is None


def test_disaster_mode_without_a_site_is_refused() -> None:
    centre = Centre().queue("sales")

    with pytest.raises(CommandRejected) as refused:
        centre.do(DisasterModeChanged(active=True))

    assert refused.value.error_id == "site_required"
    assert centre.engine.disaster_site is None


def test_a_call_arriving_for_an_unknown_queue_is_refused() -> None:
    centre = Centre().queue("sales")
    before = len(centre.events)

    with pytest.raises(CommandRejected) as refused:
        centre.call("c1", "nowhere")

    assert refused.value.error_id == "unknown_queue"
    assert len(centre.events) == before
    assert centre.call_view("c1") is None


def test_a_call_id_already_in_the_centre_is_refused() -> None:
    centre = Centre().queue("sales")
    centre.call("c1", "sales")
    before = (len(centre.events), centre.call_view("c1"))

    with pytest.raises(CommandRejected) as refused:
        centre.at(5).call("c1", "sales")

    assert refused.value.error_id == "duplicate_call"
    assert (len(centre.events), centre.call_view("c1")) == before
