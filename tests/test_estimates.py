"""The wait estimators, ours and Asterisk's, on numbers worked by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acd.estimates import (
    AsteriskEstimate,
    HandleTimes,
    Reneging,
    ServiceRate,
    estimate_from_releases,
    estimate_wait,
)


def test_without_reneging_each_call_ahead_costs_one_service_gap() -> None:
    assert estimate_wait(0, rate=0.1, reneging=0.0) == pytest.approx(10.0)
    assert estimate_wait(4, rate=0.1, reneging=0.0) == pytest.approx(50.0)


def test_callers_ahead_giving_up_shorten_the_wait() -> None:
    # 1/r + 1/(r + θ) + 1/(r + 2θ) with r = 0.1, θ = 0.01
    expected = 10.0 + 1 / 0.11 + 1 / 0.12
    assert estimate_wait(2, rate=0.1, reneging=0.01) == pytest.approx(expected)


@given(st.integers(min_value=0, max_value=2000), st.floats(0.001, 1.0), st.floats(0.0, 0.05))
def test_the_estimate_grows_with_the_calls_ahead(ahead: int, rate: float, reneging: float) -> None:
    assert estimate_wait(ahead + 1, rate, reneging) > estimate_wait(ahead, rate, reneging)


def test_far_back_in_a_long_queue_the_tail_of_the_sum_is_its_integral() -> None:
    exact = 1 / 0.1 + sum(1 / (0.1 + j * 0.01) for j in range(1, 201))
    assert estimate_wait(200, rate=0.1, reneging=0.01) == pytest.approx(exact, rel=0.01)


def test_agents_freeing_up_at_their_average_give_the_plain_rate() -> None:
    # Five agents each expected to free up in one AHT: (k + 1) * AHT / n.
    assert estimate_from_releases(3, [300.0] * 5, aht=300.0, reneging=0.0) == pytest.approx(240.0)


def test_an_agent_about_to_finish_brings_the_next_caller_s_wait_down() -> None:
    everyone_fresh = estimate_from_releases(0, [300.0, 300.0], aht=300.0, reneging=0.0)
    one_finishing = estimate_from_releases(0, [5.0, 300.0], aht=300.0, reneging=0.0)
    assert one_finishing < 5.0 < everyone_fresh


def test_what_is_left_of_a_call_is_read_off_the_calls_that_lasted_longer() -> None:
    times = HandleTimes()
    for value in (100.0, 200.0, 300.0):
        times.add(value)
    assert times.mean == pytest.approx(200.0)
    assert times.remaining(150.0) == pytest.approx(100.0)  # (200 + 300) / 2 - 150
    assert times.remaining(0.0) == pytest.approx(200.0)
    assert times.remaining(400.0) == pytest.approx(50.0)  # past every sample: a quarter AHT


def test_handle_times_keep_a_rolling_window() -> None:
    times = HandleTimes(size=2)
    for value in (1000.0, 100.0, 300.0):
        times.add(value)
    assert times.count == 2
    assert times.mean == pytest.approx(200.0)
    assert times.remaining(200.0) == pytest.approx(100.0)


def test_no_handled_call_means_no_estimate_of_what_is_left() -> None:
    assert HandleTimes().remaining(10.0) is None


def test_reneging_is_departures_without_an_agent_per_second_waited() -> None:
    reneging = Reneging()
    reneging.left_queue(30.0, gave_up=False)
    reneging.left_queue(60.0, gave_up=True)
    reneging.left_queue(10.0, gave_up=False)
    assert reneging.per_second == pytest.approx(1 / 100)
    assert Reneging().per_second == 0.0


def test_the_service_rate_counts_only_time_when_calls_were_waiting() -> None:
    rate = ServiceRate()
    assert rate.per_second is None  # too few gaps to say
    now = 0.0
    for _ in range(ServiceRate.MIN_GAPS):
        rate.started_waiting(now)
        rate.took(now + 20.0)  # a call waited 20 s, then the list was empty
        now += 1000.0
    assert rate.per_second == pytest.approx(1 / 20)


def test_asterisk_smooths_answered_waits_three_to_one() -> None:
    baseline = AsteriskEstimate()
    baseline.record_answered(40.0)
    assert baseline.holdtime == pytest.approx(10.0)
    baseline.record_answered(50.0)
    assert baseline.holdtime == pytest.approx(20.0)  # (3 * 10 + 50) / 4


def test_asterisk_ignores_position_and_announces_whole_minutes() -> None:
    baseline = AsteriskEstimate()
    baseline.holdtime = 200.0
    assert baseline.estimate(50.0) == pytest.approx(150.0)
    assert baseline.estimate(260.0) == pytest.approx(60.0)  # |H - waited|
    assert baseline.announced_minutes(50.0) == math.floor(180 / 60)
