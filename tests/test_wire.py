"""The events' JSON form: times as ISO 8601 UTC with milliseconds; rows back into events."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st
from reportday import fixture_day

from acd.events import ReservationStateChanged
from acd.ids import AgentId, CallId, ReservationId
from acd.states import ReservationState
from cti.wire import event_data, event_message, iso, stored_event


@given(st.floats(min_value=0, max_value=4e9))
@example(0.9999996)  # rounds up to the next second at the microsecond
@example(1764000000.0005)
def test_iso_is_what_datetime_writes(at: float) -> None:
    expected = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    assert iso(at) == expected.replace("+00:00", "Z")


def test_iso_reads_like_a_utc_timestamp() -> None:
    assert iso(1_764_000_000.25) == "2025-11-24T16:00:00.250Z"


def test_every_event_comes_back_from_its_stored_row_as_it_was() -> None:
    reservation = ReservationStateChanged(
        seq=99,
        at=1.5,
        reservation_id=ReservationId("r1"),
        call_id=CallId("c1"),
        agent_id=AgentId("a1"),
        from_state=ReservationState.PENDING,
        to_state=ReservationState.ACCEPTED,
    )
    for event in [*fixture_day(), reservation]:
        data = json.loads(json.dumps(event_data(event)))  # as the JSON column gives it back
        message = event_message(event)
        assert stored_event(event.seq, message["type"], event.at, data) == event
