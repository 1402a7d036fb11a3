"""Erlang C staffing calculator: figures, staffing search, stability and input checks."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from acd.erlang import Staffing, agents_needed, erlang_c, evaluate, traffic_erlangs

# Independent reference: the textbook Erlang C as a factorial sum, in exact arithmetic.


def exact_erlang_c(traffic: Fraction, agents: int) -> Fraction:
    """P(wait) = (A^N/N! · N/(N−A)) / (Σ_{k<N} A^k/k! + A^N/N! · N/(N−A)), exactly."""
    assert agents > traffic > 0
    terms = [traffic**k / math.factorial(k) for k in range(agents)]
    top = traffic**agents / math.factorial(agents) * Fraction(agents) / (agents - traffic)
    return top / (sum(terms) + top)


def exact_erlang_c_integer_traffic(traffic: int, agents: int) -> Fraction:
    """The same sum multiplied through by N!, in big integers: fast enough for N in the 1000s."""
    assert agents > traffic > 0
    # N!/k! for k = N-1 .. 0, built downwards so there is no division.
    total = 0
    ratio = 1  # N!/k!
    for k in range(agents - 1, -1, -1):
        ratio *= k + 1
        total += traffic**k * ratio
    top = Fraction(traffic**agents * agents, agents - traffic)
    return top / (total + top)


def reference(
    traffic: Fraction, agents: int, aht: float, sl_seconds: float
) -> tuple[float, float, float]:
    c = exact_erlang_c(traffic, agents)
    spare = agents - traffic
    asa = float(c * Fraction(aht) / spare)
    sl = 1.0 - float(c) * math.exp(-float(spare) * sl_seconds / aht)
    return float(c), asa, sl


# The classic worked example: 360 calls in half an hour at 4 minutes each.


def test_360_calls_of_240_s_in_half_an_hour_is_48_erlangs() -> None:
    assert traffic_erlangs(360, 1800, 240) == 48.0


def test_48_erlangs_on_55_agents_waits_23_9_percent() -> None:
    s = evaluate(calls=360, interval_seconds=1800, aht_seconds=240, sl_seconds=15, agents=55)
    p_wait, asa, sl = reference(Fraction(48), 55, 240, 15)

    assert s.agents == 55
    assert s.traffic_erlangs == 48.0
    assert s.p_wait == pytest.approx(p_wait, abs=5e-4)
    assert s.asa_seconds == pytest.approx(asa, abs=5e-4)
    assert s.service_level == pytest.approx(sl, abs=5e-4)
    assert s.occupancy == pytest.approx(48 / 55)
    # ... and the well-known rounded figures.
    assert round(s.p_wait, 3) == 0.239
    assert round(s.asa_seconds, 1) == 8.2
    assert round(s.service_level, 3) == 0.846


def test_recurrence_matches_the_factorial_sum_to_rounding() -> None:
    for traffic, agents in [(1, 2), (2, 3), (5, 6), (10, 12), (48, 55), (48, 49), (100, 130)]:
        exact = float(exact_erlang_c(Fraction(traffic), agents))
        assert erlang_c(traffic, agents) == pytest.approx(exact, rel=1e-12)


def test_80_20_for_48_erlangs_needs_54_agents_and_53_are_not_enough() -> None:
    kwargs = dict(calls=360, interval_seconds=1800, aht_seconds=240, sl_seconds=20)
    s = agents_needed(**kwargs, sl_target=0.8)

    assert s.agents == 54
    assert s.service_level >= 0.8
    assert evaluate(**kwargs, agents=53).service_level < 0.8
    assert s == evaluate(**kwargs, agents=54)


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_agents_needed_is_the_smallest_staffing_meeting_the_target(target: float) -> None:
    kwargs = dict(calls=1200, interval_seconds=3600, aht_seconds=300, sl_seconds=30)
    s = agents_needed(**kwargs, sl_target=target)

    assert s.agents > s.traffic_erlangs
    assert s.service_level >= target
    assert evaluate(**kwargs, agents=s.agents - 1).service_level < target


def test_a_higher_target_never_needs_fewer_agents() -> None:
    kwargs = dict(calls=500, interval_seconds=900, aht_seconds=200, sl_seconds=20)
    needed = [agents_needed(**kwargs, sl_target=t).agents for t in (0.6, 0.7, 0.8, 0.9, 0.99)]
    assert needed == sorted(needed)


def test_agents_needed_gives_up_past_max_agents() -> None:
    kwargs = dict(calls=360, interval_seconds=1800, aht_seconds=240, sl_seconds=20)
    with pytest.raises(ValueError, match="max_agents=53"):
        agents_needed(**kwargs, sl_target=0.8, max_agents=53)
    assert agents_needed(**kwargs, sl_target=0.8, max_agents=54).agents == 54


# Unstable and empty queues.


@pytest.mark.parametrize("agents", [0, 1, 47, 48])
def test_no_more_agents_than_erlangs_is_an_unstable_queue(agents: int) -> None:
    s = evaluate(calls=360, interval_seconds=1800, aht_seconds=240, sl_seconds=20, agents=agents)

    assert s.p_wait == 1.0
    assert s.asa_seconds == math.inf
    assert s.service_level == 0.0
    assert s.occupancy == 1.0
    assert erlang_c(48.0, agents) == 1.0


def test_one_agent_more_than_the_traffic_is_stable_but_slow() -> None:
    s = evaluate(calls=360, interval_seconds=1800, aht_seconds=240, sl_seconds=20, agents=49)
    assert 0.0 < s.p_wait < 1.0
    assert math.isfinite(s.asa_seconds)
    assert s.asa_seconds > 100


def test_no_calls_needs_no_agents_and_nobody_waits() -> None:
    s = agents_needed(calls=0, interval_seconds=1800, aht_seconds=240, sl_seconds=20, sl_target=0.8)
    assert s == Staffing(
        agents=0,
        traffic_erlangs=0.0,
        p_wait=0.0,
        asa_seconds=0.0,
        service_level=1.0,
        occupancy=0.0,
    )


@pytest.mark.parametrize("agents", [0, 1, 10])
def test_no_calls_on_any_staffing_means_no_waiting(agents: int) -> None:
    s = evaluate(calls=0, interval_seconds=1800, aht_seconds=240, sl_seconds=20, agents=agents)
    assert (s.agents, s.p_wait, s.asa_seconds, s.service_level, s.occupancy) == (
        agents,
        0.0,
        0.0,
        1.0,
        0.0,
    )
    assert erlang_c(0.0, agents) == 0.0


# Large centres: no factorials, no overflow.


def test_2000_erlangs_is_staffed_exactly_and_finitely() -> None:
    kwargs = dict(calls=20_000, interval_seconds=1800, aht_seconds=180, sl_seconds=20)
    s = agents_needed(**kwargs, sl_target=0.8)

    assert s.traffic_erlangs == 2000.0
    assert 2000 < s.agents < 2100
    assert s.service_level >= 0.8
    assert evaluate(**kwargs, agents=s.agents - 1).service_level < 0.8
    assert all(math.isfinite(v) for v in s.as_dict().values())
    assert 0.95 < s.occupancy < 1.0
    exact = float(exact_erlang_c_integer_traffic(2000, s.agents))
    assert s.p_wait == pytest.approx(exact, rel=1e-9)


def test_large_centres_follow_economies_of_scale() -> None:
    # The same per-agent load needs relatively fewer spare agents as the centre grows.
    spare_fraction = []
    for calls in (100, 1_000, 10_000, 100_000):
        s = agents_needed(
            calls=calls, interval_seconds=3600, aht_seconds=180, sl_seconds=20, sl_target=0.8
        )
        spare_fraction.append((s.agents - s.traffic_erlangs) / s.agents)
    assert spare_fraction == sorted(spare_fraction, reverse=True)


@pytest.mark.parametrize(("traffic", "agents"), [(1000, 1010), (2000, 2050), (3000, 3060)])
def test_thousands_of_agents_match_exact_big_integer_arithmetic(traffic: int, agents: int) -> None:
    exact = float(exact_erlang_c_integer_traffic(traffic, agents))
    assert erlang_c(traffic, agents) == pytest.approx(exact, rel=1e-9)


def test_as_dict_has_every_figure() -> None:
    s = evaluate(calls=360, interval_seconds=1800, aht_seconds=240, sl_seconds=15, agents=55)
    assert s.as_dict() == {
        "agents": 55,
        "traffic_erlangs": 48.0,
        "p_wait": s.p_wait,
        "asa_seconds": s.asa_seconds,
        "service_level": s.service_level,
        "occupancy": s.occupancy,
    }


def test_staffing_is_immutable() -> None:
    s = evaluate(calls=360, interval_seconds=1800, aht_seconds=240, sl_seconds=15, agents=55)
    with pytest.raises(AttributeError):
        s.agents = 56  # type: ignore[misc]


# Invalid input.

GOOD = dict(calls=360, interval_seconds=1800, aht_seconds=240, sl_seconds=20)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"calls": -1}, "calls"),
        ({"interval_seconds": 0}, "interval_seconds"),
        ({"interval_seconds": -1800}, "interval_seconds"),
        ({"aht_seconds": 0}, "aht_seconds"),
        ({"aht_seconds": -240}, "aht_seconds"),
        ({"sl_seconds": -1}, "sl_seconds"),
        ({"calls": math.nan}, "calls"),
        ({"aht_seconds": math.inf}, "aht_seconds"),
    ],
)
def test_bad_interval_figures_are_rejected(change: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(**{**GOOD, **change}, agents=55)
    with pytest.raises(ValueError, match=message):
        agents_needed(**{**GOOD, **change}, sl_target=0.8)


def test_negative_agents_are_rejected() -> None:
    with pytest.raises(ValueError, match="agents"):
        evaluate(**GOOD, agents=-1)
    with pytest.raises(ValueError, match="agents"):
        erlang_c(48.0, -1)


@pytest.mark.parametrize("target", [0.0, 1.0, -0.1, 1.5, 80, math.nan])
def test_service_level_target_must_be_a_fraction_strictly_between_0_and_1(target: float) -> None:
    with pytest.raises(ValueError, match="sl_target"):
        agents_needed(**GOOD, sl_target=target)


def test_negative_traffic_is_rejected() -> None:
    with pytest.raises(ValueError, match="traffic"):
        erlang_c(-1.0, 5)


def test_traffic_that_overflows_is_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        traffic_erlangs(1e300, 1e-300, 1e10)


# Properties.

traffics = st.floats(min_value=0.01, max_value=300, allow_nan=False, allow_infinity=False)
ahts = st.floats(min_value=1, max_value=3600)
thresholds = st.floats(min_value=0, max_value=600)


@given(traffic=traffics, extra=st.integers(min_value=0, max_value=200))
def test_p_wait_falls_as_agents_are_added(traffic: float, extra: int) -> None:
    n = math.floor(traffic) + 1 + extra
    assert erlang_c(traffic, n + 1) <= erlang_c(traffic, n)


@given(traffic=traffics, extra=st.integers(min_value=0, max_value=200), aht=ahts, t=thresholds)
def test_service_level_and_asa_improve_as_agents_are_added(
    traffic: float, extra: int, aht: float, t: float
) -> None:
    n = math.floor(traffic) + 1 + extra
    interval = 3600.0
    calls = traffic * interval / aht
    kwargs = dict(calls=calls, interval_seconds=interval, aht_seconds=aht, sl_seconds=t)
    fewer = evaluate(**kwargs, agents=n)
    more = evaluate(**kwargs, agents=n + 1)
    assume(fewer.traffic_erlangs < n)  # traffic recomputed from calls may round upwards
    assert more.service_level >= fewer.service_level
    assert more.asa_seconds <= fewer.asa_seconds
    assert more.occupancy < fewer.occupancy


@given(
    calls=st.floats(min_value=0, max_value=1e5),
    interval=st.floats(min_value=60, max_value=86_400),
    aht=ahts,
    t=thresholds,
    agents=st.integers(min_value=0, max_value=3000),
)
def test_figures_stay_in_range(
    calls: float, interval: float, aht: float, t: float, agents: int
) -> None:
    s = evaluate(
        calls=calls, interval_seconds=interval, aht_seconds=aht, sl_seconds=t, agents=agents
    )
    assert 0.0 <= s.p_wait <= 1.0
    assert 0.0 <= s.service_level <= 1.0
    assert 0.0 <= s.occupancy <= 1.0
    assert s.asa_seconds >= 0.0
    if s.agents > s.traffic_erlangs:
        assert math.isfinite(s.asa_seconds)
        # Waiting longer than the threshold is never likelier than waiting at all.
        assert s.service_level >= 1.0 - s.p_wait - 1e-12


@given(
    traffic=st.fractions(min_value=Fraction(1, 100), max_value=40, max_denominator=100),
    extra=st.integers(min_value=1, max_value=30),
)
def test_p_wait_matches_the_exact_factorial_sum(traffic: Fraction, extra: int) -> None:
    n = math.floor(traffic) + extra
    assume(n > traffic)
    exact = float(exact_erlang_c(traffic, n))
    assert erlang_c(float(traffic), n) == pytest.approx(exact, rel=1e-10, abs=1e-300)


@given(
    calls=st.floats(min_value=0.1, max_value=5000),
    aht=st.floats(min_value=10, max_value=900),
    t=st.floats(min_value=0, max_value=120),
    target=st.floats(min_value=0.01, max_value=0.99),
)
def test_agents_needed_meets_the_target_with_no_agent_to_spare(
    calls: float, aht: float, t: float, target: float
) -> None:
    kwargs = dict(calls=calls, interval_seconds=1800.0, aht_seconds=aht, sl_seconds=t)
    s = agents_needed(**kwargs, sl_target=target)
    assert s.agents > s.traffic_erlangs
    assert s.service_level >= target
    assert s == evaluate(**kwargs, agents=s.agents)
    fewer = evaluate(**kwargs, agents=s.agents - 1)
    assert fewer.agents <= fewer.traffic_erlangs or fewer.service_level < target
