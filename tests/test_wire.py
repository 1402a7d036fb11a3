"""The events' JSON form: times as ISO 8601 UTC with milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from cti.wire import iso


@given(st.floats(min_value=0, max_value=4e9))
@example(0.9999996)  # rounds up to the next second at the microsecond
@example(1764000000.0005)
def test_iso_is_what_datetime_writes(at: float) -> None:
    expected = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    assert iso(at) == expected.replace("+00:00", "Z")


def test_iso_reads_like_a_utc_timestamp() -> None:
    assert iso(1_764_000_000.25) == "2025-11-24T16:00:00.250Z"
