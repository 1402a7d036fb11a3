"""Writing one batch of journal records in one transaction, idempotently.

Group commit: the rows of a whole batch go in a handful of executemany
statements (events, new legs, leg updates grouped by the columns they set,
wrap-ups), whatever the batch size. Every statement may be replayed: events
and legs are inserted with ON CONFLICT DO NOTHING, and updates set absolute
values keyed by (call_id, leg). Replaying a spool whose start is in the
database already therefore ends in the same rows, because the spool is always
a suffix of the stream and is replayed from its start in order.

On PostgreSQL the same statements go straight to asyncpg (``write_records_pg``):
the journal writes every event of the centre, and SQLAlchemy's per-row
parameter handling cost more CPU than the rest of the server's work on an
event. The SQL is fixed text over the schema's own column names, and asyncpg
prepares each statement once per connection.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.contacts import LegChanged, LegStarted, Value, WrapUpRecorded
from api.store.database import Database
from api.store.schema import contacts, events
from api.store.spool import Record


async def write_records(
    conn: AsyncConnection, database: Database, records: Sequence[Record]
) -> None:
    """Apply ``records`` inside the caller's transaction."""
    event_rows = [r.event for r in records if r.event is not None]
    starts: list[dict[str, Any]] = []
    # one merged update per leg, in first-touched order: later values win
    updates: dict[tuple[str, int], dict[str, Value]] = {}
    wraps: list[WrapUpRecorded] = []
    for record in records:
        for change in record.changes:
            if isinstance(change, LegStarted):
                starts.append(_leg_row(change))
            elif isinstance(change, LegChanged):
                updates.setdefault((change.call_id, change.leg), {}).update(change.values)
            else:
                wraps.append(change)
    if event_rows:
        stmt = database.insert(events).on_conflict_do_nothing(index_elements=["seq"])
        await conn.execute(stmt, event_rows)
    if starts:
        stmt = database.insert(contacts).on_conflict_do_nothing(index_elements=["call_id", "leg"])
        await conn.execute(stmt, starts)
    await _update_legs(conn, updates)
    await _record_wrap_ups(conn, wraps)


def _leg_row(start: LegStarted) -> dict[str, Any]:
    return {
        "call_id": start.call_id,
        "leg": start.leg,
        "queue_id": start.queue_id,
        "customer_id": start.customer_id,
        "ani": start.ani,
        "dnis": start.dnis,
        "data": start.data,
        "arrived_at": start.arrived_at,
        "enqueued_at": start.enqueued_at,
        "answered_at": start.answered_at,
        "agent_id": start.agent_id,
    }


async def _update_legs(
    conn: AsyncConnection, updates: dict[tuple[str, int], dict[str, Value]]
) -> None:
    groups: dict[tuple[str, ...], list[dict[str, Value]]] = {}
    for (call_id, leg), values in updates.items():
        params: dict[str, Value] = {"w_call_id": call_id, "w_leg": leg, **values}
        groups.setdefault(tuple(sorted(values)), []).append(params)
    for rows in groups.values():
        stmt = update(contacts).where(
            contacts.c.call_id == bindparam("w_call_id"), contacts.c.leg == bindparam("w_leg")
        )
        await conn.execute(stmt, rows)  # SET: the other keys of the parameters


async def _record_wrap_ups(conn: AsyncConnection, wraps: list[WrapUpRecorded]) -> None:
    known = [_wrap_params(w) | {"w_leg": w.leg} for w in wraps if w.leg is not None]
    latest = [_wrap_params(w) for w in wraps if w.leg is None]
    base = update(contacts).where(
        contacts.c.call_id == bindparam("w_call_id"),
        contacts.c.agent_id == bindparam("w_agent_id"),
    )
    if known:
        await conn.execute(base.where(contacts.c.leg == bindparam("w_leg")), known)
    if latest:
        # the fold did not see the answer (a restart between the two): the agent's latest leg
        other = contacts.alias("other")
        newest = (
            select(func.max(other.c.leg))
            .where(
                other.c.call_id == bindparam("w_call_id"),
                other.c.agent_id == bindparam("w_agent_id"),
            )
            .scalar_subquery()
        )
        await conn.execute(base.where(contacts.c.leg == newest), latest)


def _wrap_params(wrap: WrapUpRecorded) -> dict[str, Any]:
    return {
        "w_call_id": wrap.call_id,
        "w_agent_id": wrap.agent_id,
        "disposition": wrap.disposition,
        "resolved": wrap.resolved,
        "wrap_up_ended_at": wrap.at,
    }


# == PostgreSQL, through asyncpg itself ================================================

_EVENT_COLUMNS = ("seq", "at", "type", "entity", "entity_id", "from_state", "to_state", "data")
_LEG_COLUMNS = (
    "call_id",
    "leg",
    "queue_id",
    "customer_id",
    "ani",
    "dnis",
    "data",
    "arrived_at",
    "enqueued_at",
    "answered_at",
    "agent_id",
)
_CONTACT_COLUMNS = frozenset(contacts.c.keys())


def _insert_sql(table: str, columns: Sequence[str], conflict: str) -> str:
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) "
        f"ON CONFLICT ({conflict}) DO NOTHING"
    )


_INSERT_EVENTS = _insert_sql("events", _EVENT_COLUMNS, "seq")
_INSERT_LEGS = _insert_sql("contacts", _LEG_COLUMNS, "call_id, leg")
_WRAP_SET = "disposition = $3, resolved = $4, wrap_up_ended_at = $5"
_WRAP_KNOWN_LEG = (
    f"UPDATE contacts SET {_WRAP_SET} WHERE call_id = $1 AND agent_id = $2 AND leg = $6"
)
_WRAP_LATEST_LEG = (
    f"UPDATE contacts SET {_WRAP_SET} WHERE call_id = $1 AND agent_id = $2 AND leg = "
    "(SELECT max(o.leg) FROM contacts o WHERE o.call_id = $1 AND o.agent_id = $2)"
)


async def write_records_pg(conn: Any, records: Sequence[Record]) -> None:
    """Apply ``records`` in one transaction on an asyncpg connection (the same rows as above)."""
    dumps = json.dumps
    event_rows = []
    starts: list[tuple[Any, ...]] = []
    updates: dict[tuple[str, int], dict[str, Value]] = {}
    wraps: list[WrapUpRecorded] = []
    for record in records:
        row = record.event
        if row is not None:
            event_rows.append(
                (
                    row["seq"],
                    row["at"],
                    row["type"],
                    row["entity"],
                    row["entity_id"],
                    row["from_state"],
                    row["to_state"],
                    dumps(row["data"]),
                )
            )
        for change in record.changes:
            if isinstance(change, LegStarted):
                leg = _leg_row(change)
                leg["data"] = dumps(leg["data"])
                starts.append(tuple(leg[c] for c in _LEG_COLUMNS))
            elif isinstance(change, LegChanged):
                updates.setdefault((change.call_id, change.leg), {}).update(change.values)
            else:
                wraps.append(change)
    async with conn.transaction():
        if event_rows:
            await conn.executemany(_INSERT_EVENTS, event_rows)
        if starts:
            await conn.executemany(_INSERT_LEGS, starts)
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for (call_id, leg_no), values in updates.items():
            columns = tuple(sorted(values))
            groups.setdefault(columns, []).append((call_id, leg_no, *(values[c] for c in columns)))
        for columns, rows in groups.items():
            unknown = set(columns) - _CONTACT_COLUMNS
            if unknown:  # the names come from the contact fold, never from outside
                raise ValueError(f"no contacts columns {sorted(unknown)}")
            sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=3))
            await conn.executemany(
                f"UPDATE contacts SET {sets} WHERE call_id = $1 AND leg = $2", rows
            )
        known = [(*_wrap_tuple(w), w.leg) for w in wraps if w.leg is not None]
        latest = [_wrap_tuple(w) for w in wraps if w.leg is None]
        if known:
            await conn.executemany(_WRAP_KNOWN_LEG, known)
        if latest:
            await conn.executemany(_WRAP_LATEST_LEG, latest)


def _wrap_tuple(wrap: WrapUpRecorded) -> tuple[Any, ...]:
    return (wrap.call_id, wrap.agent_id, wrap.disposition, wrap.resolved, wrap.at)
