"""The simulator: against Erlang C, on the shipped scenarios, and on small exact cases."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acd.erlang import evaluate
from acd.sim import SimulationReport, load_scenario, parse_scenario, simulate

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SHIPPED = ["single_queue", "multi_skill", "overload_backup"]


def scenario(**changes: Any) -> dict[str, Any]:
    """A one-queue, one-agent scenario as parsed YAML, with top-level fields replaced."""
    data: dict[str, Any] = {
        "name": "small",
        "duration_hours": 1,
        "queues": [{"id": "q", "announce_every_seconds": None}],
        "agents": [{"prefix": "a", "count": 1, "queues": ["q"]}],
        "traffic": [{"queue": "q", "calls_per_interval": 10, "talk": {"constant": 100}}],
    }
    data.update(changes)
    return data


def run(data: dict[str, Any], seed: int = 1) -> SimulationReport:
    return simulate(parse_scenario(data), seed)


def assert_adds_up(report: SimulationReport) -> None:
    k = report.kpis.overall
    assert k.offered == (
        k.answered + k.abandoned + k.short_abandoned + k.overflowed + k.blocked + k.self_served
    )
    assert k.offered + report.unfinished == report.calls
    assert sum(q.offered for q in report.kpis.per_queue.values()) == k.offered
    assert sum(a.handled for a in report.kpis.per_agent.values()) == k.answered


# == against Erlang C ==================================================================


@pytest.mark.slow
def test_mmn_with_100000_calls_matches_erlang_c() -> None:
    sc = load_scenario(SCENARIOS / "mmn.yaml")
    (stream,) = sc.traffic
    (queue,) = sc.queues
    (group,) = sc.agents
    assert sc.max_calls == 100_000
    started = time.perf_counter()
    report = simulate(sc, seed=1)
    elapsed = time.perf_counter() - started
    erlang = evaluate(
        calls=stream.calls_per_interval[0],
        interval_seconds=sc.interval_seconds,
        aht_seconds=stream.talk.mean,
        sl_seconds=queue.sl_seconds,
        agents=group.count,
    )
    k = report.kpis.overall
    assert 0.85 <= erlang.occupancy <= 0.9
    assert erlang.asa_seconds > 30  # a load where waiting is not rare
    assert (k.offered, k.answered, report.unfinished) == (100_000, 100_000, 0)
    assert k.asa_seconds == pytest.approx(erlang.asa_seconds, rel=0.10)
    assert k.service_level == pytest.approx(erlang.service_level, rel=0.10)
    assert report.kpis.agents.occupancy == pytest.approx(erlang.occupancy, rel=0.03)
    assert k.aht_seconds == pytest.approx(stream.talk.mean, rel=0.02)
    assert elapsed < 60, f"100,000 calls took {elapsed:.1f} s"


# == the shipped scenarios ============================================================


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request: pytest.FixtureRequest) -> SimulationReport:
    return simulate(load_scenario(SCENARIOS / f"{request.param}.yaml"), seed=1)


def test_every_shipped_scenario_runs_to_the_end_and_its_kpis_add_up(
    shipped: SimulationReport,
) -> None:
    assert shipped.calls > 1000
    assert shipped.unfinished == 0
    assert_adds_up(shipped)
    k = shipped.kpis.overall
    assert k.answered > 0
    assert k.service_level is not None and 0 < k.service_level <= 1
    assert k.aht_seconds is not None and k.aht_seconds > 0
    occupancy = shipped.kpis.agents.occupancy
    assert occupancy is not None and 0 < occupancy <= 1


def test_our_wait_estimates_beat_asterisks_in_every_shipped_scenario(
    shipped: SimulationReport,
) -> None:
    ewt = shipped.ewt
    assert ewt.announcements > 100
    assert ewt.acd_mae_seconds is not None and ewt.asterisk_mae_seconds is not None
    assert ewt.acd_mae_seconds <= 0.7 * ewt.asterisk_mae_seconds, ewt


def test_the_overload_day_overflows_to_the_backup_site_and_blocks_some_calls() -> None:
    report = simulate(load_scenario(SCENARIOS / "overload_backup.yaml"), seed=1)
    k = report.kpis.overall
    assert k.overflowed > 0.02 * k.offered
    assert k.blocked > 0
    assert k.self_served > 0  # callers who took the callback


def test_the_same_seed_gives_the_same_report_and_another_seed_another() -> None:
    sc = load_scenario(SCENARIOS / "single_queue.yaml")
    first = simulate(sc, seed=7)
    assert simulate(sc, seed=7) == first
    assert simulate(sc, seed=7).as_dict() == first.as_dict()
    assert simulate(sc, seed=8).as_dict() != first.as_dict()


def test_the_report_has_the_promised_shape() -> None:
    data: Any = simulate(load_scenario(SCENARIOS / "single_queue.yaml"), seed=3).as_dict()
    assert data["scenario"] == "single_queue"
    assert data["seed"] == 3
    kpis = data["kpis"]
    for key in (
        "offered", "answered", "abandoned", "short_abandoned", "overflowed", "blocked",
        "service_level", "asa_seconds", "avg_abandon_seconds", "aht_seconds", "occupancy",
    ):  # fmt: skip
        assert key in kpis
    assert set(data["ewt_mae_seconds"]) >= {"acd", "asterisk", "announcements"}
    assert set(data["per_queue"]) == {"service"}


def test_the_text_report_has_a_row_per_queue_and_the_estimate_errors() -> None:
    text = simulate(load_scenario(SCENARIOS / "multi_skill.yaml"), seed=2).format_text()
    for queue in ("billing", "tech", "sales", "billing_fr", "tech_es", "all"):
        assert f"\n{queue} " in text
    assert "asterisk" in text


# == small exact cases ==================================================================


def test_talk_hold_and_wrap_up_come_out_exactly_as_scheduled() -> None:
    report = run(
        scenario(
            max_calls=1,
            queues=[{"id": "q", "wrap_up_seconds": 60, "announce_every_seconds": None}],
            agents=[{"prefix": "a", "count": 1, "queues": ["q"], "answer_delay": {"constant": 3}}],
            traffic=[
                {
                    "queue": "q",
                    "calls_per_interval": 100,
                    "talk": {"constant": 100},
                    "hold": {"share": 1, "duration": {"constant": 20}},
                    "wrap_up": {"constant": 10},
                }
            ],
        )
    )
    k = report.kpis.overall
    assert (k.offered, k.answered, report.unfinished) == (1, 1, 0)
    assert k.asa_seconds == pytest.approx(3)
    assert k.avg_ring_seconds == pytest.approx(3)
    assert k.avg_talk_seconds == pytest.approx(100)
    assert k.avg_hold_seconds == pytest.approx(20)
    assert k.avg_acw_seconds == pytest.approx(10)
    assert k.aht_seconds == pytest.approx(130)


def test_without_a_wrap_up_distribution_the_queue_timer_ends_wrap_up() -> None:
    report = run(
        scenario(
            max_calls=3,
            queues=[{"id": "q", "wrap_up_seconds": 25, "announce_every_seconds": None}],
        )
    )
    assert report.kpis.overall.avg_acw_seconds == pytest.approx(25)


def test_callers_hang_up_when_their_patience_runs_out() -> None:
    report = run(
        scenario(
            max_calls=2,
            queues=[{"id": "q", "short_abandon_seconds": 30}],
            agents=[{"prefix": "a", "count": 1, "queues": ["q"], "shift_start_hours": 0.5}],
            traffic=[
                {
                    "queue": "q",
                    "calls_per_interval": 1000,
                    "talk": {"constant": 100},
                    "patience": {"constant": 60},
                }
            ],
        )
    )
    k = report.kpis.overall
    assert (k.abandoned, k.answered) == (2, 0)
    assert k.avg_abandon_seconds == pytest.approx(60)


def test_an_agent_who_never_answers_is_rung_out_and_the_caller_gives_up() -> None:
    report = run(
        scenario(
            max_calls=5,
            agents=[{"prefix": "a", "count": 1, "queues": ["q"], "miss_probability": 1}],
            traffic=[
                {
                    "queue": "q",
                    "calls_per_interval": 50,
                    "talk": {"constant": 100},
                    "patience": {"constant": 200},
                }
            ],
        )
    )
    k = report.kpis.overall
    assert (k.offered, k.answered, k.abandoned, report.unfinished) == (5, 0, 5, 0)


def test_callers_offered_a_callback_may_take_it() -> None:
    report = run(
        scenario(
            duration_hours=2,
            queues=[{"id": "q", "callback_offer_over_seconds": 60, "announce_every_seconds": 30}],
            traffic=[
                {
                    "queue": "q",
                    "calls_per_interval": 30,
                    "talk": {"exponential": 100},
                    "callback_accept_share": 0.5,
                }
            ],
        )
    )
    assert report.callbacks_offered > 0
    assert report.kpis.overall.self_served == report.callbacks_taken > 0
    assert_adds_up(report)


def test_a_call_nobody_can_take_ends_the_run_as_unfinished() -> None:
    report = run(
        scenario(
            max_calls=2,
            queues=[{"id": "q", "language": "en"}],
            agents=[{"prefix": "a", "count": 1, "queues": ["q"], "languages": {"en": 5}}],
            traffic=[
                {
                    "queue": "q",
                    "language": "fi",
                    "calls_per_interval": 20,
                    "talk": {"constant": 60},
                },
            ],
        )
    )
    assert (report.calls, report.unfinished, report.kpis.in_progress) == (2, 2, 2)
    assert report.simulated_seconds < 3600  # it stopped soon after nothing could happen
    assert_adds_up(report)


def test_agents_with_a_shift_end_log_out_and_the_rest_serve_the_last_callers() -> None:
    report = run(
        scenario(
            duration_hours=2,
            agents=[
                {"prefix": "early", "count": 1, "queues": ["q"], "shift_end_hours": 1},
                {"prefix": "late", "count": 1, "queues": ["q"], "shift_start_hours": 1},
            ],
        )
    )
    per_agent: Any = report.kpis.per_agent
    assert report.unfinished == 0
    assert per_agent["early001"].handled > 0
    assert per_agent["late001"].handled > 0


@settings(max_examples=50, deadline=None)
@given(
    agents=st.integers(1, 4),
    calls=st.integers(5, 60),
    miss=st.sampled_from([0.0, 0.3]),
    patience=st.sampled_from([None, {"exponential": 60}]),
    wrap_up=st.sampled_from([0, 20]),
    max_size=st.sampled_from([None, 2]),
    seed=st.integers(0, 10_000),
)
def test_any_small_centre_runs_to_the_end_with_kpis_that_add_up(
    agents: int,
    calls: int,
    miss: float,
    patience: dict[str, float] | None,
    wrap_up: float,
    max_size: int | None,
    seed: int,
) -> None:
    queue: dict[str, Any] = {
        "id": "q",
        "wrap_up_seconds": wrap_up,
        "max_size": max_size,
        "overflow": [{"when": "wait_over", "seconds": 90, "target": {"site": "sip:b@example.net"}}],
        "callback_offer_over_seconds": 30,
    }
    report = run(
        scenario(
            queues=[queue],
            agents=[
                {
                    "prefix": "a",
                    "count": agents,
                    "queues": ["q"],
                    "answer_delay": {"uniform": [0, 20]},  # sometimes past the ring timeout
                    "miss_probability": miss,
                    "ready_again_after_seconds": 10,
                }
            ],
            traffic=[
                {
                    "queue": "q",
                    "calls_per_interval": calls,
                    "talk": {"exponential": 120},
                    "hold": {"share": 0.3, "duration": {"uniform": [5, 30]}},
                    "wrap_up": {"uniform": [0, 40]},
                    "patience": patience,
                    "callback_accept_share": 0.2,
                }
            ],
        ),
        seed,
    )
    assert report.unfinished == 0
    assert_adds_up(report)


# == bad scenarios ======================================================================


def _with(path: str, value: Any) -> dict[str, Any]:
    """The small scenario with one field, given by a dotted path, replaced or added."""
    data = copy.deepcopy(scenario())
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("duration_hours", -1, "duration_hours"),
        ("interval_minutes", 7, "duration_hours"),  # 60 min is not whole 7-min intervals
        ("colour", "blue", "colour: unknown field"),
        ("queues.0.strategy", "fastest", "queues[0].strategy"),
        ("queues.0.ring_timeout_seconds", 0, "queues[0].ring_timeout_seconds"),
        ("queues.0.when_full", {"site": "backup.example.net"}, "queues[0].when_full.site"),
        (
            "queues.0.overflow",
            [{"when": "wait", "seconds": 1, "target": {"site": "sip:x@y"}}],
            "queues[0].overflow[0].when",
        ),
        (
            "queues.0.relaxation",
            [{"after_seconds": 60}, {"after_seconds": 30}],
            "queues[0]: relaxation",
        ),
        ("agents.0.count", 0, "agents[0].count"),
        ("agents.0.queues", ["nowhere"], "agents[0].queues"),
        ("agents.0.skills", {"billing": 11}, "agents[0].skills.billing"),
        ("agents.0.miss_probability", 1.5, "agents[0].miss_probability"),
        ("traffic.0.queue", "nowhere", "traffic[0].queue"),
        ("traffic.0.calls_per_interval", [1, 2, 3], "traffic[0].calls_per_interval"),
        ("traffic.0.talk", {"gaussian": 3}, "traffic[0].talk"),
        ("traffic.0.talk", {"uniform": [5, 1]}, "traffic[0].talk.uniform"),
        ("traffic.0.patience", {"lognormal": {"mean": 60}}, "traffic[0].patience.lognormal.sd"),
    ],
)
def test_a_bad_scenario_is_a_value_error_naming_the_field(
    path: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(_with(path, value))


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    data = scenario()
    del data["traffic"][0]["talk"]
    with pytest.raises(ValueError, match=r"traffic\[0\]\.talk: missing"):
        parse_scenario(data)


def test_a_bad_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nduration_hours: 1\nqueues: [{id: q}]\n"
        "agents: [{prefix: a, count: two, queues: [q]}]\n"
        "traffic: [{queue: q, calls_per_interval: 1, talk: {constant: 1}}]\n"
    )
    with pytest.raises(ValueError, match=r"bad\.yaml: agents\[0\]\.count: expected a number"):
        load_scenario(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_scenario(path)
