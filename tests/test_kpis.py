"""The KPI fold on hand-built event sequences (definitions: docs/KPIS.md)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acd.events import AgentStateChanged, CallStateChanged, Event
from acd.ids import AgentId, CallId, QueueId
from acd.kpis import KpiFold
from acd.states import AgentState, AgentStatus, CallState, Outcome

C = CallState
A = AgentState
S = AgentStatus


class Centre:
    """Writes the events an engine would, remembering each call's and agent's last state."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.calls: dict[str, tuple[CallState, str]] = {}
        self.agents: dict[str, tuple[AgentStatus, AgentState]] = {}

    def _seq(self) -> int:
        return len(self.events) + 1

    def call(
        self,
        at: float,
        call_id: str,
        to: CallState,
        *,
        queue: str | None = None,
        outcome: Outcome | None = None,
        agent: str | None = None,
    ) -> Centre:
        previous = self.calls.get(call_id)
        queue = queue or (previous[1] if previous else "sales")
        self.events.append(
            CallStateChanged(
                seq=self._seq(),
                at=at,
                call_id=CallId(call_id),
                queue_id=QueueId(queue),
                from_state=previous[0] if previous else None,
                to_state=to,
                outcome=outcome,
                agent_id=AgentId(agent) if agent else None,
            )
        )
        self.calls[call_id] = (to, queue)
        return self

    def agent(
        self,
        at: float,
        agent_id: str,
        *,
        status: AgentStatus | None = None,
        state: AgentState | None = None,
        call: str | None = None,
    ) -> Centre:
        old_status, old_state = self.agents.get(agent_id, (None, None))
        new = (status or old_status or S.LOGGED_OUT, state or old_state or A.IDLE)
        self.events.append(
            AgentStateChanged(
                seq=self._seq(),
                at=at,
                agent_id=AgentId(agent_id),
                from_status=old_status,
                to_status=new[0],
                from_state=old_state,
                to_state=new[1],
                call_id=CallId(call) if call else None,
            )
        )
        self.agents[agent_id] = new
        return self

    def arrive(self, at: float, call_id: str, queue: str = "sales") -> Centre:
        return self.call(at, call_id, C.ARRIVED, queue=queue).call(at, call_id, C.QUEUED)

    def answer(self, at: float, call_id: str, agent: str, ring: float = 0.0) -> Centre:
        """Offer at ``at - ring``, connect at ``at``."""
        self.call(at - ring, call_id, C.OFFERED, agent=agent)
        self.agent(at - ring, agent, state=A.RESERVED, call=call_id)
        self.call(at, call_id, C.CONNECTED, agent=agent)
        return self.agent(at, agent, state=A.TALKING, call=call_id)

    def hang_up(self, at: float, call_id: str, agent: str, wrap_up: float | None) -> Centre:
        self.call(at, call_id, C.ENDED, outcome=Outcome.ANSWERED, agent=agent)
        if wrap_up is None:
            return self.agent(at, agent, state=A.IDLE, call=call_id)
        self.agent(at, agent, state=A.WRAP_UP, call=call_id)
        return self.agent(at + wrap_up, agent, state=A.IDLE, call=call_id)

    def leave(self, at: float, call_id: str, outcome: Outcome) -> Centre:
        return self.call(at, call_id, C.ENDED, outcome=outcome)

    def ready(self, at: float, agent: str) -> Centre:
        self.agent(at, agent, status=S.LOGGED_OUT, state=A.IDLE)
        self.agent(at, agent, status=S.NOT_READY)
        return self.agent(at, agent, status=S.READY)

    def fold(self, fold: KpiFold | None = None) -> KpiFold:
        fold = fold or KpiFold()
        fold.extend(self.events)
        return fold


def test_service_level_counts_calls_answered_within_the_threshold_of_entering_the_queue() -> None:
    centre = Centre().ready(0, "a1").ready(0, "a2")
    centre.arrive(0, "c1").answer(15, "c1", "a1", ring=3).hang_up(100, "c1", "a1", None)
    centre.arrive(0, "c2").answer(45, "c2", "a2").hang_up(100, "c2", "a2", None)
    k = centre.fold().totals().overall
    assert (k.offered, k.answered, k.answered_within_sl) == (2, 2, 1)
    assert k.service_level == 0.5
    assert k.asa_seconds == 30.0  # (15 + 45) / 2: ringing is part of the queue time
    assert k.max_wait_seconds == 45.0
    assert k.avg_ring_seconds == 1.5


def test_an_answer_exactly_at_the_threshold_is_within_it() -> None:
    centre = Centre().ready(0, "a1")
    centre.arrive(0, "c1").answer(20, "c1", "a1").hang_up(60, "c1", "a1", None)
    assert centre.fold().totals().overall.service_level == 1.0


def test_each_queue_uses_its_own_service_level_threshold() -> None:
    centre = Centre().ready(0, "a1").ready(0, "a2")
    centre.arrive(0, "s1", "sales").answer(25, "s1", "a1").hang_up(90, "s1", "a1", None)
    centre.arrive(0, "v1", "vip").answer(25, "v1", "a2").hang_up(90, "v1", "a2", None)
    totals = centre.fold(KpiFold({QueueId("sales"): 30.0}, default_sl_seconds=10.0)).totals()
    assert totals.per_queue[QueueId("sales")].service_level == 1.0
    assert totals.per_queue[QueueId("vip")].service_level == 0.0
    assert totals.overall.service_level == 0.5
    assert totals.overall.answered_within_sl == 1


def test_a_threshold_function_is_asked_when_each_call_ends() -> None:
    thresholds: dict[QueueId, float] = {QueueId("sales"): 10.0}
    fold = KpiFold(thresholds.get, default_sl_seconds=99.0)
    centre = Centre().ready(0, "a1")
    centre.arrive(0, "c1").answer(15, "c1", "a1").hang_up(60, "c1", "a1", None)
    fold.extend(centre.events)
    seen = len(centre.events)
    thresholds[QueueId("sales")] = 30.0  # the queue is reconfigured
    centre.arrive(100, "c2").answer(115, "c2", "a1").hang_up(160, "c2", "a1", None)
    fold.extend(centre.events[seen:])
    k = fold.totals().overall
    assert (k.answered, k.answered_within_sl) == (2, 1)  # 15 s against 10 s, then against 30 s


def test_the_answer_wait_sum_is_asa_times_answered() -> None:
    centre = Centre().ready(0, "a1").ready(0, "a2")
    centre.arrive(0, "c1").answer(15, "c1", "a1").hang_up(100, "c1", "a1", None)
    centre.arrive(0, "c2").answer(40, "c2", "a2").hang_up(100, "c2", "a2", None)
    assert centre.fold().totals().overall.answer_wait_seconds == 55.0


def test_short_abandons_are_offered_but_left_out_of_abandons_and_time_to_abandon() -> None:
    centre = Centre()
    centre.arrive(0, "c1").leave(90, "c1", Outcome.ABANDONED)
    centre.arrive(10, "c2").leave(40, "c2", Outcome.ABANDONED)
    centre.arrive(0, "c3").leave(4, "c3", Outcome.SHORT_ABANDONED)
    k = centre.fold().totals().overall
    assert (k.offered, k.abandoned, k.short_abandoned, k.answered) == (3, 2, 1, 0)
    assert k.avg_abandon_seconds == 60.0  # (90 + 30) / 2
    assert k.abandon_rate == pytest.approx(2 / 3)
    assert k.service_level == 0.0


def test_no_answered_call_gives_no_asa_nor_aht_rather_than_zero() -> None:
    centre = Centre().arrive(0, "c1").leave(4, "c1", Outcome.SHORT_ABANDONED)
    k = centre.fold().totals().overall
    assert k.asa_seconds is None
    assert k.aht_seconds is None
    assert k.avg_abandon_seconds is None
    assert k.max_wait_seconds is None
    empty = KpiFold().totals()
    assert empty.overall.offered == 0
    assert empty.overall.service_level is None
    assert empty.agents.occupancy is None


def test_overflowed_blocked_and_self_served_calls_are_offered_but_not_answered() -> None:
    centre = Centre()
    centre.arrive(0, "c1").leave(300, "c1", Outcome.OVERFLOWED)
    centre.call(5, "c2", C.ARRIVED).leave(5, "c2", Outcome.BLOCKED)  # never queued
    centre.arrive(0, "c3").leave(60, "c3", Outcome.SELF_SERVED)
    k = centre.fold().totals().overall
    assert (k.offered, k.overflowed, k.blocked, k.self_served, k.answered) == (3, 1, 1, 1, 0)
    assert k.blocked_rate == pytest.approx(1 / 3)
    assert k.answered_rate == 0.0
    assert k.queue_placement_rate == pytest.approx(2 / 3)  # the blocked call never waited


def test_a_call_moved_to_another_queue_counts_there_with_its_wait_from_the_first_queue() -> None:
    centre = Centre().ready(0, "a1")
    centre.arrive(0, "c1", "sales").call(60, "c1", C.QUEUED, queue="backup")
    centre.answer(90, "c1", "a1").hang_up(200, "c1", "a1", None)
    totals = centre.fold().totals()
    assert QueueId("sales") not in totals.per_queue
    backup = totals.per_queue[QueueId("backup")]
    assert backup.answered == 1
    assert backup.asa_seconds == 90.0


def test_aht_is_talk_plus_hold_plus_the_wrap_up_that_follows_the_call() -> None:
    centre = Centre().ready(0, "a1")
    centre.arrive(0, "c1").answer(10, "c1", "a1")
    centre.call(40, "c1", C.HELD).agent(40, "a1", state=A.HELD, call="c1")
    centre.call(70, "c1", C.CONNECTED).agent(70, "a1", state=A.TALKING, call="c1")
    centre.hang_up(130, "c1", "a1", wrap_up=30)
    k = centre.fold().totals().overall
    assert k.avg_talk_seconds == 90.0  # 10-40 and 70-130
    assert k.avg_hold_seconds == 30.0
    assert k.avg_acw_seconds == 30.0
    assert k.aht_seconds == 150.0


def test_wrap_up_is_credited_to_the_queue_of_the_call_it_follows() -> None:
    centre = Centre().ready(0, "a1")
    centre.arrive(0, "s1", "sales").answer(0, "s1", "a1").hang_up(100, "s1", "a1", wrap_up=20)
    centre.arrive(120, "v1", "vip").answer(120, "v1", "a1").hang_up(200, "v1", "a1", wrap_up=50)
    totals = centre.fold().totals()
    assert totals.per_queue[QueueId("sales")].aht_seconds == 120.0
    assert totals.per_queue[QueueId("vip")].aht_seconds == 130.0
    assert totals.overall.aht_seconds == 125.0


def test_occupancy_is_talk_and_hold_over_talk_hold_and_ready_idle_time() -> None:
    centre = Centre().ready(0, "a1")  # idle 0-10
    centre.arrive(10, "c1").answer(12, "c1", "a1", ring=2)  # ringing 10-12 counts nowhere
    centre.call(50, "c1", C.HELD).agent(50, "a1", state=A.HELD, call="c1")
    centre.call(60, "c1", C.CONNECTED).agent(60, "a1", state=A.TALKING, call="c1")
    centre.hang_up(100, "c1", "a1", wrap_up=30)  # wrap-up 100-130 counts nowhere
    centre.agent(150, "a1", status=S.NOT_READY)  # idle 130-150, then not ready
    centre.agent(400, "a1", status=S.READY)  # ready again: idle from 400
    totals = centre.fold().totals(until=430)
    agent = totals.per_agent[AgentId("a1")]
    assert (agent.talk_seconds, agent.hold_seconds) == (78.0, 10.0)
    assert agent.idle_seconds == 10 + 20 + 30
    assert agent.acw_seconds == 30.0
    assert agent.handled == 1
    assert agent.occupancy == pytest.approx(88 / 148)
    assert totals.agents.occupancy == agent.occupancy


def test_open_periods_count_only_up_to_until_and_not_at_all_without_it() -> None:
    centre = Centre().ready(0, "a1").ready(0, "a2")
    centre.arrive(0, "c1").answer(0, "c1", "a1")
    fold = centre.fold()
    assert fold.totals().agents.occupancy is None
    totals = fold.totals(until=100)
    assert totals.per_agent[AgentId("a1")].talk_seconds == 100.0
    assert totals.per_agent[AgentId("a2")].idle_seconds == 100.0
    assert totals.agents.occupancy == 0.5


def test_calls_still_in_the_centre_are_in_progress_and_nowhere_else() -> None:
    centre = Centre().ready(0, "a1")
    centre.arrive(0, "c1").answer(5, "c1", "a1")
    centre.arrive(1, "c2")
    totals = centre.fold().totals(until=50)
    assert totals.in_progress == 2
    assert totals.overall.offered == 0


def test_queue_placement_counts_calls_that_waited_before_their_first_offer() -> None:
    centre = Centre().ready(0, "a1").ready(0, "a2")
    centre.arrive(0, "c1").answer(0, "c1", "a1").hang_up(50, "c1", "a1", None)
    centre.arrive(0, "c2").answer(30, "c2", "a2").hang_up(90, "c2", "a2", None)
    assert centre.fold().totals().overall.queue_placement_rate == 0.5


def test_as_dict_carries_occupancy_with_the_overall_figures() -> None:
    centre = Centre().ready(0, "a1")
    centre.arrive(0, "c1").answer(0, "c1", "a1").hang_up(60, "c1", "a1", None)
    data: Any = centre.fold().totals(until=120).as_dict()
    assert data["overall"]["occupancy"] == 0.5
    assert data["per_queue"]["sales"]["answered"] == 1


def test_a_call_ending_without_an_outcome_is_a_broken_contract() -> None:
    centre = Centre().arrive(0, "c1").call(5, "c1", C.ENDED)
    with pytest.raises(ValueError, match="without an outcome"):
        centre.fold()


_ENDINGS = st.sampled_from(
    [
        Outcome.ANSWERED,
        Outcome.ABANDONED,
        Outcome.SHORT_ABANDONED,
        Outcome.OVERFLOWED,
        Outcome.BLOCKED,
        Outcome.SELF_SERVED,
    ]
)


@given(st.lists(st.tuples(_ENDINGS, st.floats(0, 600), st.floats(0, 600)), max_size=40))
def test_offered_is_the_sum_of_outcomes_and_every_rate_is_a_fraction(
    calls: list[tuple[Outcome, float, float]],
) -> None:
    centre = Centre()
    for i, (outcome, wait, talk) in enumerate(calls):
        call_id, agent = f"c{i}", f"a{i}"
        if outcome is Outcome.BLOCKED:
            centre.call(0, call_id, C.ARRIVED).leave(0, call_id, outcome)
        elif outcome is Outcome.ANSWERED:
            centre.ready(0, agent).arrive(0, call_id).answer(wait, call_id, agent)
            centre.hang_up(wait + talk, call_id, agent, wrap_up=5)
        else:
            centre.arrive(0, call_id).leave(wait, call_id, outcome)
    k = centre.fold().totals().overall
    assert k.offered == len(calls)
    assert k.offered == (
        k.answered + k.abandoned + k.short_abandoned + k.overflowed + k.blocked + k.self_served
    )
    for rate in (k.service_level, k.abandon_rate, k.answered_rate, k.queue_placement_rate):
        if calls:
            assert rate is not None and 0.0 <= rate <= 1.0
        else:
            assert rate is None
    if k.answered:
        assert k.asa_seconds is not None and k.asa_seconds >= 0
        assert k.aht_seconds == pytest.approx(
            sum(t for o, _, t in calls if o is Outcome.ANSWERED) / k.answered + 5
        )
