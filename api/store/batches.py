"""Writing one batch of journal records in one transaction, idempotently.

Group commit: the rows of a whole batch go in a handful of executemany
statements (events, new legs, leg updates grouped by the columns they set,
wrap-ups), whatever the batch size. Every statement may be replayed: events
and legs are inserted with ON CONFLICT DO NOTHING, and updates set absolute
values keyed by (call_id, leg). Replaying a spool whose start is in the
database already therefore ends in the same rows, because the spool is always
a suffix of the stream and is replayed from its start in order.

On PostgreSQL the same statements run inside one function, ``acd_write_batch``
(migration 0002), called straight through asyncpg (``write_records_pg``): a
batch is then one round trip and one statement, atomic without BEGIN and
COMMIT. The journal writes every event of the centre, and the round trips of
the portable writer cost more CPU than the rest of the server's work on them.
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


# == PostgreSQL: the whole batch in one call =============================================

# The columns a leg's changes may set: acd_write_batch (migration 0002) knows these.
CHANGE_COLUMNS = frozenset(
    {
        "customer_id",
        "queue_id",
        "enqueued_at",
        "answered_at",
        "agent_id",
        "ended_at",
        "outcome",
        "ended_reason",
    }
)
_WRITE_BATCH = "SELECT acd_write_batch($1::json, $2::json, $3::json, $4::json)"


async def write_records_pg(conn: Any, records: Sequence[Record]) -> None:
    """Apply ``records`` on an asyncpg connection in one statement (the same rows as above)."""
    event_rows: list[list[Any]] = []
    legs: list[list[Any]] = []
    updates: dict[tuple[str, int], dict[str, Value]] = {}
    wraps: dict[tuple[str, str, int | None], dict[str, Any]] = {}  # later ones win
    for record in records:
        row = record.event
        if row is not None:
            event_rows.append(
                [
                    row["seq"],
                    row["at"],
                    row["type"],
                    row["entity"],
                    row["entity_id"],
                    row["from_state"],
                    row["to_state"],
                    row["data"],
                ]
            )
        for change in record.changes:
            if isinstance(change, LegStarted):
                leg = _leg_row(change)
                legs.append([leg[c] for c in _LEG_COLUMNS])
            elif isinstance(change, LegChanged):
                unknown = change.values.keys() - CHANGE_COLUMNS
                if unknown:  # the names come from the contact fold, never from outside
                    raise ValueError(f"acd_write_batch sets no columns {sorted(unknown)}")
                updates.setdefault((change.call_id, change.leg), {}).update(change.values)
            else:
                key = (change.call_id, change.agent_id, change.leg)
                wraps.pop(key, None)  # keep the order of the last one
                wraps[key] = {
                    "c": change.call_id,
                    "a": change.agent_id,
                    "l": change.leg,
                    "d": change.disposition,
                    "r": change.resolved,
                    "t": change.at,
                }
    changes = [{"c": c, "l": leg, "v": v} for (c, leg), v in updates.items()]
    dumps = json.dumps
    await conn.execute(
        _WRITE_BATCH,
        dumps(event_rows),
        dumps(legs),
        dumps(changes),
        dumps(list(wraps.values())),
    )


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
