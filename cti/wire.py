"""The JSON shape of the core's events, shared by the event log, the WebSocket and replay.

One event becomes one message ``{"seq", "type", "at", "data"}``: ``type`` names
the entity and the change (``call.state_changed``), ``at`` is an ISO 8601 UTC
time with milliseconds, and ``data`` holds every other field of the event with
enums as their values. The event log stores ``data`` as it is, so a replayed
message is byte-for-byte the one first sent.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from acd.events import AgentStateChanged, CallStateChanged, Event, ReservationStateChanged
from acd.ids import AgentId, CallId, QueueId, ReservationId
from acd.states import AgentState, AgentStatus, CallState, Outcome, ReservationState

E = TypeVar("E", bound=Enum)

EVENT_TYPES: dict[type, str] = {
    CallStateChanged: "call.state_changed",
    AgentStateChanged: "agent.state_changed",
    ReservationStateChanged: "reservation.state_changed",
}

ENTITIES: dict[type, str] = {
    CallStateChanged: "call",
    AgentStateChanged: "agent",
    ReservationStateChanged: "reservation",
}


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def iso(at: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds: ``2026-12-01T21:30:00.123Z``.

    Every event is formatted once or twice, mostly within the same second as the
    last one: the date and time are formatted once per second, only the
    milliseconds each time (rounded to the microsecond then truncated, exactly
    as ``datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")``).
    """
    whole = int(at // 1)
    micros = round((at - whole) * 1e6)  # as datetime does: to the microsecond, half even
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    millis = micros // 1000
    if _second[0] != whole:
        _second[0] = whole
        _second[1] = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second[1]}.{millis:03d}Z"


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    return value


_DATA_FIELDS: dict[type, tuple[str, ...]] = {
    kind: tuple(f.name for f in dataclasses.fields(kind) if f.name not in ("seq", "at"))
    for kind in EVENT_TYPES
}  # ``dataclasses.fields`` per event would cost more than the rest of the message


def event_data(event: Event) -> dict[str, Any]:
    """Every field of the event but ``seq`` and ``at``, JSON-ready."""
    data = {}
    for name in _DATA_FIELDS[type(event)]:
        value = getattr(event, name)
        data[name] = value.value if isinstance(value, Enum) else value
    return data


def entity_id(event: Event) -> str:
    if isinstance(event, CallStateChanged):
        return event.call_id
    if isinstance(event, AgentStateChanged):
        return event.agent_id
    return event.reservation_id


def event_message(event: Event) -> dict[str, Any]:
    """The message a subscriber receives for ``event``."""
    return {
        "seq": event.seq,
        "type": EVENT_TYPES[type(event)],
        "at": iso(event.at),
        "data": event_data(event),
    }


def stored_message(seq: int, type_: str, at: float, data: dict[str, Any]) -> dict[str, Any]:
    """The same message rebuilt from a row of the event log."""
    return {"seq": seq, "type": type_, "at": iso(at), "data": data}


_VIEW_FIELDS: dict[type, tuple[str, ...]] = {}


def view_data(view: Any) -> dict[str, Any] | None:
    """A read-only view of the engine (``acd.views``) as JSON-ready data."""
    if view is None:
        return None
    kind = type(view)
    names = _VIEW_FIELDS.get(kind)
    if names is None:
        names = _VIEW_FIELDS[kind] = tuple(f.name for f in dataclasses.fields(view))
    return {name: _plain(getattr(view, name)) for name in names}


def stored_event(seq: int, type_: str, at: float, data: dict[str, Any]) -> Event:
    """The core's event back from a row of the event log (``event_data``'s inverse).

    Fields a row lacks (written before the field existed) take their defaults.
    """

    def enum(kind: type[E], name: str) -> Any:
        value = data.get(name)
        return None if value is None else kind(value)

    if type_ == "call.state_changed":
        return CallStateChanged(
            seq=seq,
            at=at,
            call_id=CallId(data["call_id"]),
            queue_id=QueueId(data["queue_id"]),
            from_state=enum(CallState, "from_state"),
            to_state=CallState(data["to_state"]),
            outcome=enum(Outcome, "outcome"),
            agent_id=data.get("agent_id"),
            reason=data.get("reason"),
            customer_id=data.get("customer_id"),
        )
    if type_ == "agent.state_changed":
        return AgentStateChanged(
            seq=seq,
            at=at,
            agent_id=AgentId(data["agent_id"]),
            from_status=enum(AgentStatus, "from_status"),
            to_status=AgentStatus(data["to_status"]),
            from_state=enum(AgentState, "from_state"),
            to_state=AgentState(data["to_state"]),
            reason=data.get("reason"),
            call_id=data.get("call_id"),
            disposition=data.get("disposition"),
            resolved=data.get("resolved"),
        )
    if type_ == "reservation.state_changed":
        return ReservationStateChanged(
            seq=seq,
            at=at,
            reservation_id=ReservationId(data["reservation_id"]),
            call_id=CallId(data["call_id"]),
            agent_id=AgentId(data["agent_id"]),
            from_state=enum(ReservationState, "from_state"),
            to_state=ReservationState(data["to_state"]),
        )
    raise ValueError(f"no event type {type_!r}")
