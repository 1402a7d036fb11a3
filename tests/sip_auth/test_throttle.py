"""The brute-force throttle: bans after too many failures, per source, in bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.sip.throttle import Admission, FailureThrottle, source_key

ADMIT, REFUSE = Admission.ADMIT, Admission.REFUSE


def fail(throttle: FailureThrottle, source: str, times: int, at: float = 0.0) -> Admission:
    result = ADMIT
    for _ in range(times):
        result = throttle.record_failure(source, at)
    return result


def test_the_failure_that_reaches_the_limit_bans_the_source() -> None:
    throttle = FailureThrottle(max_failures=5, window=60)
    for t in range(4):
        assert throttle.record_failure("203.0.113.9", float(t)) is ADMIT
        assert throttle.check("203.0.113.9", float(t)) is ADMIT
    assert throttle.record_failure("203.0.113.9", 4.0) is REFUSE
    assert throttle.check("203.0.113.9", 5.0) is REFUSE


def test_a_ban_lasts_its_time_then_the_source_starts_again_from_zero() -> None:
    throttle = FailureThrottle(max_failures=3, window=60, ban=600)
    assert fail(throttle, "203.0.113.9", 3, at=100.0) is REFUSE
    assert throttle.banned_until("203.0.113.9", 101.0) == 700.0
    assert throttle.check("203.0.113.9", 699.9) is REFUSE
    assert throttle.check("203.0.113.9", 700.0) is ADMIT
    assert throttle.banned_until("203.0.113.9", 700.0) is None
    assert fail(throttle, "203.0.113.9", 2, at=701.0) is ADMIT


def test_the_ban_lasts_one_window_unless_configured() -> None:
    throttle = FailureThrottle(max_failures=2, window=30)
    fail(throttle, "198.51.100.1", 2, at=10.0)
    assert throttle.check("198.51.100.1", 39.0) is REFUSE
    assert throttle.check("198.51.100.1", 40.0) is ADMIT


def test_failures_spread_wider_than_the_window_never_ban() -> None:
    throttle = FailureThrottle(max_failures=3, window=60)
    for t in range(0, 3000, 30):
        assert throttle.record_failure("203.0.113.9", float(t)) is ADMIT
    assert throttle.check("203.0.113.9", 3000.0) is ADMIT


def test_other_sources_are_unaffected_by_a_ban() -> None:
    throttle = FailureThrottle(max_failures=3, window=60)
    fail(throttle, "203.0.113.9", 3)
    assert throttle.check("203.0.113.9", 1.0) is REFUSE
    assert throttle.check("203.0.113.10", 1.0) is ADMIT
    assert throttle.check("2001:db8::1", 1.0) is ADMIT
    assert throttle.record_failure("203.0.113.10", 1.0) is ADMIT


def test_failures_during_a_ban_are_refused_and_do_not_extend_it() -> None:
    throttle = FailureThrottle(max_failures=2, window=60, ban=100)
    fail(throttle, "203.0.113.9", 2, at=0.0)
    assert throttle.record_failure("203.0.113.9", 50.0) is REFUSE
    assert throttle.banned_until("203.0.113.9", 50.0) == 100.0


def test_addresses_in_one_ipv6_slash_64_share_a_count() -> None:
    throttle = FailureThrottle(max_failures=3, window=60)
    throttle.record_failure("2001:db8:1:2::1", 0.0)
    throttle.record_failure("[2001:db8:1:2:aaaa::9]", 0.0)
    assert throttle.record_failure("2001:db8:1:2:ffff:ffff:ffff:ffff", 0.0) is REFUSE
    assert throttle.check("2001:db8:1:2::77", 1.0) is REFUSE
    assert throttle.check("2001:db8:1:3::1", 1.0) is ADMIT


def test_source_keys_group_ipv6_by_prefix_and_unmap_ipv4() -> None:
    assert source_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:2:3:4:5:6", ipv6_prefix=48) == "2001:db8:1::/48"
    assert source_key("fe80::1%eth0") == "fe80::/64"
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_key(" 192.0.2.7 ") == "192.0.2.7"
    assert source_key("not-an-address") == "not-an-address"


def test_an_ipv4_mapped_address_counts_with_its_ipv4_address() -> None:
    throttle = FailureThrottle(max_failures=2, window=60)
    throttle.record_failure("::ffff:192.0.2.7", 0.0)
    assert throttle.record_failure("192.0.2.7", 0.0) is REFUSE


def test_an_exempt_network_is_never_banned() -> None:
    throttle = FailureThrottle(max_failures=2, window=60, exempt=["10.1.0.0/16", "2001:db8::/32"])
    assert fail(throttle, "10.1.2.3", 50) is ADMIT
    assert fail(throttle, "2001:db8::5", 50) is ADMIT
    assert throttle.check("10.1.2.3", 1.0) is ADMIT
    assert throttle.tracked_sources == 0
    assert fail(throttle, "10.2.0.1", 2) is REFUSE


def test_a_pardon_lifts_the_ban_and_forgets_the_failures() -> None:
    throttle = FailureThrottle(max_failures=2, window=60)
    fail(throttle, "203.0.113.9", 2)
    throttle.pardon("203.0.113.9")
    assert throttle.check("203.0.113.9", 1.0) is ADMIT
    assert throttle.record_failure("203.0.113.9", 1.0) is ADMIT


def test_memory_is_bounded_and_the_least_recent_sources_are_forgotten() -> None:
    throttle = FailureThrottle(max_failures=3, window=60, max_sources=10)
    for i in range(1000):
        throttle.record_failure(f"192.0.2.{i % 250}-{i}", 0.0)
    assert throttle.tracked_sources <= 10


def test_a_flood_of_one_off_failures_does_not_push_a_ban_out() -> None:
    throttle = FailureThrottle(max_failures=3, window=60, max_sources=10)
    fail(throttle, "203.0.113.9", 3)
    for i in range(500):
        throttle.record_failure(f"198.51.{i // 250}.{i % 250}", 1.0)
    assert throttle.check("203.0.113.9", 2.0) is REFUSE


def test_old_sources_are_forgotten_as_time_passes() -> None:
    throttle = FailureThrottle(max_failures=3, window=60, ban=60)
    fail(throttle, "203.0.113.9", 3)
    throttle.record_failure("203.0.113.10", 0.0)
    throttle.record_failure("192.0.2.1", 500.0)
    assert throttle.tracked_sources == 1


@pytest.mark.parametrize(
    "options",
    [
        {"max_failures": 0},
        {"window": 0},
        {"window": float("inf")},
        {"ban": 0},
        {"max_sources": 0},
        {"ipv6_prefix": 0},
        {"ipv6_prefix": 129},
    ],
)
def test_a_misconfigured_throttle_fails_at_construction(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FailureThrottle(**options)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2", "x"]),
            st.floats(min_value=0, max_value=50),
        ),
        max_size=60,
    )
)
def test_a_source_is_banned_exactly_when_it_fails_too_often_within_the_window(
    events: list[tuple[str, float]],
) -> None:
    """Against a model: a sliding-window count per key, reset by each ban (no eviction here)."""
    max_failures, window, ban = 3, 10.0, 20.0
    throttle = FailureThrottle(max_failures=max_failures, window=window, ban=ban, max_sources=8)
    recent: dict[str, list[float]] = {}
    banned: dict[str, float] = {}
    now = 0.0
    for source, step in events:
        now += step
        key = source_key(source)
        expected_banned = key in banned and now < banned[key]
        assert throttle.check(source, now) is (REFUSE if expected_banned else ADMIT)
        if expected_banned:
            continue
        result = throttle.record_failure(source, now)
        times = [t for t in recent.get(key, []) if now - t < window] + [now]
        if len(times) >= max_failures:
            banned[key] = now + ban
            recent[key] = []
            assert result is REFUSE
        else:
            recent[key] = times
            assert result is ADMIT
        assert throttle.tracked_sources <= len(recent)
