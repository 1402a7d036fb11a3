"""Contact legs derived from the event stream: events in, row changes out, no I/O.

A *leg* is one stretch of a call in one queue or with one agent; a call has
leg 1 from its arrival and one more per transfer. ``Legs`` folds the ordered
stream (``CallOpened`` notes and core events) and says, for each item, what
changes in the ``contacts`` table:

- ``CallOpened`` starts leg 1 with the call's context (numbers, customer, data).
- ``call.state_changed``:
  - to ``queued`` from nothing or ``arrived``: the leg is enqueued;
  - to ``queued`` from ``connected``/``held`` (a blind transfer): the leg ends
    as ``transferred`` and leg N+1 starts, enqueued in the event's queue;
  - ``queued`` to ``queued`` (overflow, requeue): the leg's queue changes;
  - to ``callback_queued`` from ``arrived`` (a callback booked in the IVR): the
    leg is enqueued; from ``queued``/``offered`` (a caller asked for a callback)
    nothing changes: it is the same contact, in the same place;
  - to ``connected`` from ``offered``, or to ``dialing`` (an agent took a
    callback task): answered by the event's agent;
  - to ``connected`` with reason ``consult_transfer``/``conference_transfer``:
    the leg ends as ``transferred`` and leg N+1 starts, answered by the
    event's agent at once;
  - to ``ended``: the leg ends with the event's outcome and reason.
- ``agent.state_changed`` that finishes wrap-up (a disposition, a resolved
  flag, or leaving ``wrap_up``) records them on the agent's latest leg of
  that call.

Every change is idempotent on its own (a start is an insert that does
nothing if the leg exists, an update sets absolute values), so replaying a
spool that is partly in the database already gives the same rows.

Reasons are compared by name, up to a first ``:`` (``overflow:q1``), and
outcomes by their string value, so new ones added to the core need no change
here until they need a new rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from acd.events import AgentStateChanged, CallStateChanged, Event
from acd.ids import AgentId, CallId, CustomerId, QueueId
from cti.context import CallOpened

TRANSFERRED = "transferred"
INTERRUPTED = "interrupted"
CONNECTED_TRANSFERS = frozenset({"consult_transfer", "conference_transfer"})

Value = str | float | bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LegStarted:
    """A new leg of a call: insert it unless it is there already."""

    call_id: str
    leg: int
    queue_id: str
    customer_id: str | None
    ani: str
    dnis: str
    data: dict[str, str]
    arrived_at: float
    enqueued_at: float | None = None
    answered_at: float | None = None
    agent_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LegChanged:
    """Columns of one leg set to new values."""

    call_id: str
    leg: int
    values: dict[str, Value]


@dataclass(frozen=True, slots=True, kw_only=True)
class WrapUpRecorded:
    """An agent finished after-call work on a call; ``leg`` None: their latest leg of it."""

    call_id: str
    agent_id: str
    leg: int | None
    disposition: str | None
    resolved: bool | None
    at: float


Change = LegStarted | LegChanged | WrapUpRecorded


@dataclass(slots=True)
class _Call:
    """What the fold remembers of a live call: its current leg and its context."""

    leg: int
    queue_id: str
    customer_id: str | None
    ani: str
    dnis: str
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveLeg:
    """A leg with no end yet, as the database has it (for recovery after a crash)."""

    call_id: CallId
    leg: int
    queue_id: QueueId
    agent_id: AgentId | None
    customer_id: CustomerId | None
    ani: str
    dnis: str
    data: dict[str, str]
    state: str | None  # to_state of the call's latest event; None if no event was stored
    enqueued_at: float | None = None


class Legs:
    """The fold from the ordered stream to contact changes (state: the live calls)."""

    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}
        # (call, agent) -> the agent's latest leg of the call, until their wrap-up is done
        self._handled: dict[tuple[str, str], int] = {}

    def resume(self, live: Iterable[LiveLeg]) -> None:
        """Continue from legs left live by a previous process."""
        for leg in live:
            self._calls[leg.call_id] = _Call(
                leg.leg, leg.queue_id, leg.customer_id, leg.ani, leg.dnis, dict(leg.data)
            )
            if leg.agent_id is not None:
                self._handled[(leg.call_id, leg.agent_id)] = leg.leg

    @property
    def live_calls(self) -> int:
        return len(self._calls)

    def derive(self, item: Event | CallOpened) -> list[Change]:
        """The contact changes ``item`` makes, in order; advances the fold."""
        if isinstance(item, CallStateChanged):
            return self._call_changed(item)
        if isinstance(item, AgentStateChanged):
            return self._agent_changed(item)
        if isinstance(item, CallOpened):
            return [self._open(item)]
        return []  # reservations leave the contact rows alone

    def derive_all(self, items: Iterable[Event | CallOpened]) -> list[Change]:
        return [change for item in items for change in self.derive(item)]

    def _open(self, note: CallOpened) -> LegStarted:
        call = _Call(1, note.queue_id, note.customer_id, note.ani, note.dnis, dict(note.data))
        self._calls[note.call_id] = call
        return self._start(note.call_id, call, arrived_at=note.at)

    def _start(self, call_id: str, call: _Call, *, arrived_at: float, **later: Any) -> LegStarted:
        return LegStarted(
            call_id=call_id,
            leg=call.leg,
            queue_id=call.queue_id,
            customer_id=call.customer_id,
            ani=call.ani,
            dnis=call.dnis,
            data=dict(call.data),
            arrived_at=arrived_at,
            **later,
        )

    def _call_changed(self, ev: CallStateChanged) -> list[Change]:
        changes: list[Change] = []
        call = self._calls.get(ev.call_id)
        customer: str | None = getattr(ev, "customer_id", None)  # on a call's first event
        if call is None:
            # No CallOpened was recorded (a call made without one, or live across a
            # restart the fold was not resumed for): the leg starts from this event.
            call = _Call(1, ev.queue_id, customer, "", "")
            self._calls[ev.call_id] = call
            changes.append(self._start(ev.call_id, call, arrived_at=ev.at))
        elif customer is not None and call.customer_id is None:
            call.customer_id = customer  # the core knew the customer when the note did not
            changes.append(self._set(ev.call_id, call, customer_id=customer))
        old, new = _plain(ev.from_state), _plain(ev.to_state)
        reason = _reason_name(ev.reason)
        if new in ("queued", "callback_queued"):
            if old in (None, "arrived"):
                call.queue_id = ev.queue_id  # admission may have sent it on to another queue
                changes.append(self._set(ev.call_id, call, enqueued_at=ev.at, queue_id=ev.queue_id))
            elif old in ("connected", "held"):  # a blind transfer back into a queue
                changes.append(self._end_leg(ev, call, TRANSFERRED))
                call.leg += 1
                call.queue_id = ev.queue_id
                changes.append(self._start(ev.call_id, call, arrived_at=ev.at, enqueued_at=ev.at))
            elif old == "queued":  # overflow or requeue to another queue
                call.queue_id = ev.queue_id
                changes.append(self._set(ev.call_id, call, queue_id=ev.queue_id))
        elif new == "connected":
            if reason in CONNECTED_TRANSFERS and old in ("connected", "held"):
                changes.append(self._end_leg(ev, call, TRANSFERRED))
                call.leg += 1
                call.queue_id = ev.queue_id
                agent: str | None = ev.agent_id
                changes.append(
                    self._start(
                        ev.call_id, call, arrived_at=ev.at, answered_at=ev.at, agent_id=agent
                    )
                )
                if agent is not None:
                    self._handled[(ev.call_id, agent)] = call.leg
            elif old == "offered":
                agent = ev.agent_id
                changes.append(self._set(ev.call_id, call, answered_at=ev.at, agent_id=agent))
                if agent is not None:
                    self._handled[(ev.call_id, agent)] = call.leg
        elif new == "dialing":
            agent = ev.agent_id
            changes.append(self._set(ev.call_id, call, answered_at=ev.at, agent_id=agent))
            if agent is not None:
                self._handled[(ev.call_id, agent)] = call.leg
        elif new == "ended":
            changes.append(self._end_leg(ev, call, _plain(ev.outcome)))
            del self._calls[ev.call_id]
        return changes

    def _agent_changed(self, ev: AgentStateChanged) -> list[Change]:
        if ev.call_id is None:
            return []
        old, new = _plain(ev.from_state), _plain(ev.to_state)
        finished = ev.disposition is not None or ev.resolved is not None
        finished = finished or (old == "wrap_up" and new != "wrap_up")
        key: tuple[str, str] = (ev.call_id, ev.agent_id)
        if finished:
            leg = self._handled.pop(key, None)
            return [
                WrapUpRecorded(
                    call_id=key[0],
                    agent_id=key[1],
                    leg=leg,
                    disposition=ev.disposition,
                    resolved=ev.resolved,
                    at=ev.at,
                )
            ]
        if old in ("talking", "held") and new not in ("talking", "held", "wrap_up"):
            self._handled.pop(key, None)  # the call ended with no wrap-up to come
        return []

    def _set(self, call_id: str, call: _Call, **values: Value) -> LegChanged:
        return LegChanged(call_id=call_id, leg=call.leg, values=values)

    def _end_leg(self, ev: CallStateChanged, call: _Call, outcome: str | None) -> LegChanged:
        return self._set(ev.call_id, call, ended_at=ev.at, outcome=outcome, ended_reason=ev.reason)


def _plain(value: Enum | str | None) -> str | None:
    if isinstance(value, Enum):
        return str(value.value)
    return value


def _reason_name(reason: str | None) -> str | None:
    return None if reason is None else reason.split(":", 1)[0]


def project(
    changes: Iterable[Change], rows: Mapping[tuple[str, int], dict[str, Any]] | None = None
) -> dict[tuple[str, int], dict[str, Any]]:
    """Apply ``changes`` to rows held in memory, keyed by (call_id, leg).

    The same meaning the database writer gives them; tests compare the two.
    """
    out = {key: dict(row) for key, row in (rows or {}).items()}
    for change in changes:
        if isinstance(change, LegStarted):
            out.setdefault((change.call_id, change.leg), _empty_row(change))
        elif isinstance(change, LegChanged):
            out[(change.call_id, change.leg)].update(change.values)
        else:
            leg = change.leg
            if leg is None:
                legs = [
                    k[1]
                    for k, row in out.items()
                    if k[0] == change.call_id and row["agent_id"] == change.agent_id
                ]
                leg = max(legs, default=None)
            if leg is not None and out[(change.call_id, leg)]["agent_id"] == change.agent_id:
                out[(change.call_id, leg)].update(
                    disposition=change.disposition,
                    resolved=change.resolved,
                    wrap_up_ended_at=change.at,
                )
    return out


def _empty_row(start: LegStarted) -> dict[str, Any]:
    return {
        "call_id": start.call_id,
        "leg": start.leg,
        "queue_id": start.queue_id,
        "customer_id": start.customer_id,
        "ani": start.ani,
        "dnis": start.dnis,
        "data": dict(start.data),
        "arrived_at": start.arrived_at,
        "enqueued_at": start.enqueued_at,
        "answered_at": start.answered_at,
        "agent_id": start.agent_id,
        "ended_at": None,
        "outcome": None,
        "ended_reason": None,
        "disposition": None,
        "resolved": None,
        "wrap_up_ended_at": None,
    }
