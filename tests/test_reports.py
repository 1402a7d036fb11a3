"""KPI reports on the hand-computed fixture day (tests/reportday.py), and against raw events."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from reportday import (
    CUSTOMERS,
    FCR_WINDOW_SECONDS,
    SHORT_ABANDON_SECONDS,
    SINCE,
    SL_SECONDS,
    T0,
    TEAMS,
    UNTIL,
    ZONE,
    fixture_day,
)

from acd.commands import AgentWentReady, CallbackAnswered, CallbackFailed, CallbackRequested
from acd.events import CallStateChanged, Event
from acd.ids import AgentId, CallId, QueueId
from acd.intervals import Interval, Intervals
from acd.kpis import KpiFold
from acd.reports import CallerCall, Dimension, ReportRow, ReportSpec, build_report
from acd.sim import load_scenario, simulate
from acd.states import CallState, Outcome
from acd.testing import Centre as EngineCentre

approx = pytest.approx
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def fixture_report(interval: Interval = Interval.HALFHOUR) -> dict[Dimension, list[ReportRow]]:
    events = fixture_day()
    spec = ReportSpec(
        since=SINCE,
        until=UNTIL,
        intervals=Intervals(interval, ZONE),
        sl_seconds=SL_SECONDS,
        short_abandon_seconds=SHORT_ABANDON_SECONDS,
        fcr_window_seconds=FCR_WINDOW_SECONDS,
        queues=[QueueId("sales"), QueueId("support")],
        agents=TEAMS,
    )
    first = {e.call_id: e.at for e in events if isinstance(e, CallStateChanged)}
    return build_report(
        spec,
        events,
        callers={CallId(c): who for c, who in CUSTOMERS.items()},
        caller_calls=[
            CallerCall(call_id=CallId(c), caller=who, arrived_at=first[CallId(c)])
            for c, who in CUSTOMERS.items()
        ],
    )


def figures(rows: list[ReportRow], interval: int, key: str) -> dict[str, Any]:
    starts = sorted({r.start for r in rows})
    return next(r.figures for r in rows if r.start == starts[interval] and r.key == key)


def assert_figures(found: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        assert found[name] == (value if value is None else approx(value)), name


NO_ABANDONS = {f"le_{s}": 0 for s in (5, 10, 20, 30, 60, 120, 300)} | {"gt_300": 0}


def test_every_interval_of_the_range_has_a_row_per_queue_agent_and_team() -> None:
    rows = fixture_report()
    assert [(r.start - T0, r.key) for r in rows[Dimension.QUEUES]] == [
        (0, "sales"), (0, "support"), (1800, "sales"),
        (1800, "support"), (3600, "sales"), (3600, "support"),
    ]  # fmt: skip
    assert [r.key for r in rows[Dimension.AGENTS]] == ["a1", "a2", "a3"] * 3
    assert [r.key for r in rows[Dimension.TEAMS]] == ["blue", "green"] * 3
    assert all(r.end - r.start == 1800 for rows_ in rows.values() for r in rows_)


def test_sales_first_half_hour_every_call_kpi_as_computed_by_hand() -> None:
    sales = figures(fixture_report()[Dimension.QUEUES], 0, "sales")
    assert_figures(
        sales,
        {
            # c1, c2, c5 answered; c4 abandoned; c3 short; c6 blocked; c7 overflowed
            "offered": 7,
            "answered": 3,
            "abandoned": 1,
            "short_abandoned": 1,
            "blocked": 1,
            "overflowed": 1,
            "self_served": 0,
            "in_progress": 0,
            "answered_within_sl": 2,  # c1 (10 s), c5 (15 s); c2 waited 30 s
            "abandoned_within_sl": 1,  # c3 after 5 s; c4 after 40 s is not
            "service_level": 2 / 7,
            "service_level_with_abandons": 3 / 7,
            "asa_seconds": (10 + 30 + 15) / 3,
            "avg_queue_seconds": (10 + 30 + 15 + 40) / 4,  # the short abandon left out
            "max_wait_seconds": 30,
            "avg_abandon_seconds": 40,
            "abandon_rate": 1 / 7,
            "answered_rate": 3 / 7,
            "blocked_rate": 1 / 7,
            "queue_placement_rate": 6 / 7,  # all but the blocked c6 waited
            "avg_talk_seconds": (90 + 120 + 180) / 3,
            "avg_hold_seconds": 30 / 3,
            "avg_acw_seconds": (30 + 30 + 10) / 3,
            "aht_seconds": (390 + 30 + 70) / 3,
            "avg_ring_seconds": (5 + 0 + 5) / 3,
            "transferred_blind": 1,  # c5
            "transferred_warm": 0,
            "blind_transfer_rate": 1 / 3,
            "warm_transfer_rate": 0,
            "resolved_first_call": 1,  # c1; c2 was called back about, c5 not resolved
            "first_call_resolution": 1 / 3,
        },
    )
    assert sales["abandon_times"] == NO_ABANDONS | {"le_5": 1, "le_60": 1}


def test_second_half_hour_per_queue_with_a_warm_transfer_and_a_call_across_the_boundary() -> None:
    queues = fixture_report()[Dimension.QUEUES]
    assert_figures(
        figures(queues, 1, "support"),
        {
            "offered": 1,
            "answered": 1,
            "service_level": 1.0,  # 4 s within support's 30 s
            "service_level_with_abandons": 1.0,
            "asa_seconds": 4,
            "avg_queue_seconds": 4,
            "queue_placement_rate": 0.0,  # offered as it arrived
            "avg_talk_seconds": 236,
            "avg_hold_seconds": 60,
            "avg_acw_seconds": 60,
            "aht_seconds": 356,
            "avg_ring_seconds": 4,
            "transferred_warm": 1,
            "warm_transfer_rate": 1.0,
            "blind_transfer_rate": 0.0,
            "first_call_resolution": 1.0,
        },
    )
    assert_figures(
        figures(queues, 1, "sales"),
        {
            "offered": 2,  # c9 abandoned after 30 s, c10 answered after 45 s
            "answered": 1,
            "abandoned": 1,
            "short_abandoned": 0,
            "service_level": 0.0,
            "service_level_with_abandons": 0.0,
            "asa_seconds": 45,
            "avg_queue_seconds": (45 + 30) / 2,
            "avg_abandon_seconds": 30,
            "abandon_rate": 0.5,
            "answered_rate": 0.5,
            "queue_placement_rate": 1.0,
            "avg_talk_seconds": 955,  # in its arrival's half hour, though it ran past 10:00
            "avg_acw_seconds": 20,
            "aht_seconds": 975,
            "first_call_resolution": 0.0,  # wrap-up timed out: no disposition
        },
    )
    assert figures(queues, 1, "sales")["abandon_times"]["le_30"] == 1


def test_an_interval_with_no_call_shows_zeros_and_no_ratios() -> None:
    queues = fixture_report()[Dimension.QUEUES]
    support = figures(queues, 0, "support")  # c5 arrived in support but ended in sales
    assert (support["offered"], support["answered"], support["abandoned"]) == (0, 0, 0)
    assert support["service_level"] is None
    assert support["asa_seconds"] is None
    assert set(support["abandon_times"].values()) == {0}
    waiting = figures(queues, 2, "sales")
    assert (waiting["offered"], waiting["in_progress"]) == (0, 1)  # c11 is still waiting


def test_agents_time_splits_at_interval_boundaries() -> None:
    agents = fixture_report()[Dimension.AGENTS]
    assert_figures(
        figures(agents, 0, "a1"),
        {
            "handled": 2,  # c1, c5
            "talk_seconds": 30 + 60 + 85,
            "hold_seconds": 30,
            "acw_seconds": 30,
            "idle_seconds": 65 + 790 + 700,
            "logged_in_seconds": 1800,
            "occupancy": 205 / (205 + 1555),
            "calls_per_hour": 4.0,
            "avg_talk_seconds": 87.5,
            "avg_hold_seconds": 15,
            "avg_acw_seconds": 15,
            "aht_seconds": 117.5,
            "transferred_blind": 1,
            "blind_transfer_rate": 0.5,
            "transferred_warm": 0,
            "resolved_first_call": 1,  # c1
            "first_call_resolution": 0.5,
        },
    )
    assert_figures(
        figures(agents, 0, "a2"),  # c0's talk and wrap-up from 09:00 count, not its answer
        {
            "handled": 2,  # c2, c5
            "talk_seconds": 30 + 120 + 95,
            "hold_seconds": 0,
            "acw_seconds": 10 + 30 + 10,
            "idle_seconds": 110 + 800 + 590,
            "occupancy": 245 / 1745,
            "calls_per_hour": 4.0,
            "aht_seconds": 295 / 2,
            "first_call_resolution": 0.0,
        },
    )
    a3 = figures(agents, 0, "a3")  # logged out
    assert (a3["handled"], a3["logged_in_seconds"], a3["occupancy"]) == (0, 0, None)
    assert_figures(
        figures(agents, 1, "a1"),
        {"handled": 1, "talk_seconds": 855, "idle_seconds": 940, "occupancy": 855 / 1795},
    )
    assert_figures(
        figures(agents, 1, "a2"),  # the consultation, then c8 taken over at 10:34:20
        {
            "handled": 1,
            "talk_seconds": 195,
            "acw_seconds": 60,
            "idle_seconds": 200 + 1340,
            "occupancy": 195 / 1735,
            "calls_per_hour": 2.0,
            "aht_seconds": 255,
            "resolved_first_call": 1,
            "first_call_resolution": 1.0,
        },
    )
    assert_figures(
        figures(agents, 1, "a3"),
        {
            "handled": 1,
            "talk_seconds": 96,
            "hold_seconds": 60,
            "idle_seconds": 100 + 1540,
            "occupancy": 156 / 1796,
            "aht_seconds": 156,
            "transferred_warm": 1,
            "warm_transfer_rate": 1.0,
        },
    )
    assert_figures(
        figures(agents, 2, "a1"),
        {
            "handled": 0,
            "talk_seconds": 100,
            "acw_seconds": 20,
            "idle_seconds": 1680,
            "calls_per_hour": 0.0,
            "aht_seconds": None,
        },
    )
    assert_figures(
        figures(agents, 2, "a3"), {"logged_in_seconds": 400, "idle_seconds": 400, "occupancy": 0}
    )


def test_teams_sum_their_agents_and_an_agent_counts_in_each_of_their_teams() -> None:
    teams = fixture_report()[Dimension.TEAMS]
    assert_figures(
        figures(teams, 0, "blue"),  # a1 + a2
        {
            "handled": 4,
            "talk_seconds": 420,
            "hold_seconds": 30,
            "acw_seconds": 80,
            "idle_seconds": 3055,
            "logged_in_seconds": 3600,
            "occupancy": 450 / 3505,
            "calls_per_hour": 4.0,
            "aht_seconds": 132.5,
            "transferred_blind": 1,
            "first_call_resolution": 0.25,
        },
    )
    assert_figures(
        figures(teams, 1, "green"),  # a2 + a3
        {
            "handled": 2,
            "talk_seconds": 291,
            "hold_seconds": 60,
            "acw_seconds": 60,
            "idle_seconds": 3180,
            "occupancy": 351 / 3531,
            "calls_per_hour": 2.0,
            "aht_seconds": 205.5,
            "transferred_warm": 1,
            "first_call_resolution": 0.5,
        },
    )


def test_a_day_row_is_the_sum_of_its_half_hours() -> None:
    (sales,) = [r for r in fixture_report(Interval.DAY)[Dimension.QUEUES] if r.key == "sales"]
    assert sales.start == datetime(2026, 12, 1, tzinfo=ZONE).timestamp()
    assert_figures(
        sales.figures,
        {
            "offered": 9,
            "answered": 4,
            "abandoned": 2,
            "short_abandoned": 1,
            "in_progress": 1,
            "service_level": 2 / 9,
            "asa_seconds": (55 + 45) / 4,
            "abandon_rate": 2 / 9,
            "aht_seconds": (490 + 975) / 4,
        },
    )
    (a1,) = [r for r in fixture_report(Interval.MONTH)[Dimension.AGENTS] if r.key == "a1"]
    assert a1.figures["talk_seconds"] == 175 + 855 + 100
    assert a1.figures["logged_in_seconds"] == 5400


def test_the_short_abandon_threshold_is_the_reports() -> None:
    events = fixture_day()
    spec = ReportSpec(
        since=SINCE, until=UNTIL, intervals=Intervals(Interval.DAY, ZONE), short_abandon_seconds=45
    )
    (sales,) = [r for r in build_report(spec, events)[Dimension.QUEUES] if r.key == "sales"]
    assert (sales.figures["abandoned"], sales.figures["short_abandoned"]) == (0, 3)


def test_intervals_follow_the_local_clock_across_a_daylight_saving_change() -> None:
    paris = ZoneInfo("Europe/Paris")
    night = Intervals(Interval.HALFHOUR, paris)
    start = datetime(2026, 10, 25, 1, 30, tzinfo=paris).timestamp()
    labels = [night.label(s) for s in night.between(start, start + 4 * 1800)]
    assert labels == [
        "2026-10-25T01:30:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",  # the clock went back: the same wall time, an hour later
    ]
    days = Intervals(Interval.DAY, paris)
    day = days.start(start)
    assert days.following(day) - day == 25 * 3600
    weeks = Intervals(Interval.WEEK, ZoneInfo("UTC"))
    assert weeks.label(weeks.start(T0)) == "2026-11-30T00:00:00+00:00"  # a Monday
    kathmandu = Intervals(Interval.HALFHOUR, ZoneInfo("Asia/Kathmandu"))  # UTC+5:45
    label = kathmandu.label(kathmandu.start(T0))
    assert label[14:] in ("00:00+05:45", "30:00+05:45")  # on the local half hour


# == the report against the raw events, computed the obvious way =========================


def test_service_level_asa_and_abandon_rate_equal_those_computed_from_the_raw_events() -> None:
    """A simulated day through the real engine; each half hour's figures recomputed plainly."""
    events: list[Event] = []
    scenario = load_scenario(str(SCENARIOS / "single_queue.yaml"))
    simulate(scenario, 3, on_events=events.extend)
    utc = ZoneInfo("UTC")
    day = datetime(1970, 1, 1, tzinfo=UTC).timestamp()
    spec = ReportSpec(
        since=day, until=day + 86_400, intervals=Intervals(Interval.HALFHOUR, utc),
        sl_seconds={QueueId("service"): 20.0}, short_abandon_seconds=20.0,
    )  # fmt: skip
    report = build_report(spec, events)[Dimension.QUEUES]

    # The obvious way: per call, when it arrived, first queued, first answered, how it ended.
    arrived: dict[str, float] = {}
    queued: dict[str, float] = {}
    answered: dict[str, float] = {}
    ended: dict[str, tuple[float, Outcome | None]] = {}
    for e in events:
        if isinstance(e, CallStateChanged):
            arrived.setdefault(e.call_id, e.at)
            if e.to_state is CallState.QUEUED:
                queued.setdefault(e.call_id, e.at)
            if e.to_state is CallState.CONNECTED:
                answered.setdefault(e.call_id, e.at)
            if e.to_state is CallState.ENDED:
                ended[e.call_id] = (e.at, e.outcome)
    offered: dict[int, int] = defaultdict(int)
    within: dict[int, int] = defaultdict(int)
    waits: dict[int, list[float]] = defaultdict(list)
    abandoned: dict[int, int] = defaultdict(int)
    for call, (end, outcome) in ended.items():
        half_hour = int(arrived[call] // 1800)
        offered[half_hour] += 1
        if outcome is Outcome.ANSWERED:
            wait = answered[call] - queued[call]
            waits[half_hour].append(wait)
            within[half_hour] += wait <= 20
        elif outcome in (Outcome.ABANDONED, Outcome.SHORT_ABANDONED):
            abandoned[half_hour] += end - queued[call] >= 20

    assert sum(offered.values()) > 1000
    checked = 0
    for row in report:
        half_hour = int(row.start // 1800)
        k = row.figures
        assert k["offered"] == offered[half_hour]
        if not offered[half_hour]:
            assert k["service_level"] is None
            continue
        assert k["service_level"] == approx(within[half_hour] / offered[half_hour])
        assert k["abandon_rate"] == approx(abandoned[half_hour] / offered[half_hour])
        w = waits[half_hour]
        assert k["asa_seconds"] == (approx(sum(w) / len(w)) if w else None)
        checked += 1
    assert checked >= 20


# == the report against the KPI fold, on the same events ==================================


def whole(events: list[Event], now: float) -> dict[Dimension, list[ReportRow]]:
    """One row per key over everything: a month interval around the simulated day of 1970."""
    spec = ReportSpec(
        since=0.0,
        until=3 * 86_400.0,
        now=now,
        intervals=Intervals(Interval.MONTH, ZoneInfo("UTC")),
        sl_seconds={
            QueueId(q): x
            for q, x in {"billing": 20, "tech": 30, "sales": 15, "billing_fr": 30}.items()
        }
        | {QueueId("tech_es"): 30.0},
    )
    return build_report(spec, events)


def test_a_simulated_days_report_agrees_with_the_kpi_fold_on_every_figure_they_share() -> None:
    events: list[Event] = []
    run = simulate(load_scenario(str(SCENARIOS / "multi_skill.yaml")), 5, on_events=events.extend)
    rows = whole(events, now=run.simulated_seconds)
    queues = {r.key: r.figures for r in rows[Dimension.QUEUES]}
    assert set(queues) == {str(q) for q in run.kpis.per_queue}
    shared = {
        "offered": "offered",
        "answered": "answered",
        "abandoned": "abandoned",
        "short_abandoned": "short_abandoned",
        "overflowed": "overflowed",
        "blocked": "blocked",
        "answered_within_sl": "answered_within_sl",
        "service_level": "service_level",
        "asa_seconds": "asa_seconds",
        "avg_abandon_seconds": "avg_abandon_seconds",
        "abandon_rate": "abandon_rate",
        "queue_placement_rate": "queue_placement_rate",
        "avg_talk_seconds": "avg_talk_seconds",
        "avg_hold_seconds": "avg_hold_seconds",
        "avg_acw_seconds": "avg_acw_seconds",
        "aht_seconds": "aht_seconds",
        "avg_ring_seconds": "avg_ring_seconds",
        "max_wait_seconds": "max_wait_seconds",
    }
    for queue, kpis in run.kpis.per_queue.items():
        folded = kpis.as_dict()
        assert folded["offered"] > 50
        for ours, theirs in shared.items():
            want = folded[theirs]
            assert queues[queue][ours] == (want if want is None else approx(want)), (queue, ours)
    agents = {r.key: r.figures for r in rows[Dimension.AGENTS]}
    for agent, kpis in run.kpis.per_agent.items():
        assert agents[agent]["handled"] == kpis.handled
        assert agents[agent]["talk_seconds"] == approx(kpis.talk_seconds)
        assert agents[agent]["hold_seconds"] == approx(kpis.hold_seconds)
        assert agents[agent]["acw_seconds"] == approx(kpis.acw_seconds)
        assert agents[agent]["idle_seconds"] == approx(kpis.idle_seconds)
        assert agents[agent]["occupancy"] == approx(kpis.occupancy)


def test_transfers_through_the_engine_count_for_the_agent_who_made_them_and_the_call() -> None:
    centre = EngineCentre().queue("sales", wrap_up_seconds=5).queue("tech")
    centre.agent("ann", queues=["sales"]).agent("bob", queues=["tech"])
    centre.agent("cy", queues=["sales", "tech"])
    centre.call("c1", "sales")  # offered to ann, the longest idle
    centre.after(2).accept("ann", "c1")
    centre.after(30).transfer("c1", queue="tech")  # blind: bob or cy takes it
    taker = centre.offered_to("c1")[-1]
    centre.after(3).accept(taker, "c1")
    other = "cy" if taker == "bob" else "bob"
    centre.after(20).consult("c1", other)  # warm: the colleague takes the caller over
    centre.after(2).accept(other, "c1")
    centre.after(10).complete_transfer("c1")
    centre.after(60).agent_hangs_up("c1")
    centre.after(100)
    rows = whole(centre.events, now=centre.now)
    agents = {r.key: r.figures for r in rows[Dimension.AGENTS]}
    assert (agents["ann"]["handled"], agents["ann"]["transferred_blind"]) == (1, 1)
    assert (agents[taker]["handled"], agents[taker]["transferred_warm"]) == (1, 1)
    assert (agents[other]["handled"], agents[other]["transferred_warm"]) == (1, 0)
    (tech,) = [r.figures for r in rows[Dimension.QUEUES] if r.key == "tech"]
    assert (tech["offered"], tech["answered"]) == (1, 1)  # it ended in tech
    assert (tech["transferred_blind"], tech["transferred_warm"]) == (1, 1)
    assert tech["asa_seconds"] == 2.0  # its first answer
    # talk 2-32 (ann), 35-55 (taker), 67-127 (other); held 55-67 while consulting;
    # ann's 5 s of wrap-up after sending it on is after-call work on this call too
    assert (tech["avg_talk_seconds"], tech["avg_hold_seconds"]) == (110, 12)
    assert (tech["avg_acw_seconds"], tech["aht_seconds"]) == (5, 127)
    # (the KPI fold credits ann's wrap-up to sales, the queue she answered it in)
    folded = KpiFold()
    folded.extend(centre.events)
    assert folded.totals().per_queue[QueueId("tech")].aht_seconds == 122


def test_callbacks_count_in_reports_as_in_the_kpi_fold() -> None:
    """A caller who asks for a callback and is reached is answered; a booking
    whose customer is not reached is callback failed; neither is an abandon."""
    centre = EngineCentre().queue("sales", wrap_up_seconds=0)
    centre.agent("a1", queues=["sales"], ready=False)
    centre.at(T0).call("c1", "sales")
    centre.at(T0 + 10).do(CallbackRequested(call_id=CallId("c1"), number="5550001"))
    centre.call("b1", "sales", callback_number="5550002")
    centre.at(T0 + 100).do(AgentWentReady(agent_id=AgentId("a1")))  # c1 first: its place
    centre.at(T0 + 105).accept("a1", "c1")
    centre.at(T0 + 120).do(CallbackAnswered(call_id=CallId("c1")))
    centre.at(T0 + 180).agent_hangs_up("c1")
    centre.at(T0 + 185).accept("a1", "b1")
    centre.at(T0 + 215).do(CallbackFailed(call_id=CallId("b1"), reason="busy"))
    spec = ReportSpec(
        since=SINCE, until=UNTIL, intervals=Intervals(Interval.HALFHOUR, ZONE), sl_seconds={}
    )
    sales = figures(build_report(spec, centre.events)[Dimension.QUEUES], 0, "sales")
    assert_figures(
        sales,
        {
            "offered": 2,
            "answered": 1,
            "abandoned": 0,
            "short_abandoned": 0,
            "callback_failed": 1,
            "callbacks": 2,
            "asa_seconds": 105,  # from queueing to the agent taking the task
            "avg_talk_seconds": 60,  # from the customer's answer
        },
    )
