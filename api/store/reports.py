"""What a KPI report over a time range needs from the database, read with indexed queries.

``report`` reads, then hands everything to the pure ``acd.reports.build_report``:

- the events of the range, calls' and agents' (``ix_events_at``);
- the later events of the calls that arrived in the range, until they end
  (by call, on ``ix_events_entity_entity_id_seq``), and the agents' events
  until an hour after the last of them ended (their wrap-ups);
- each agent's last event before the range: their state when it began (one
  step back down the same index per agent);
- the first legs of the calls from the start of the range to the end of the
  first-call-resolution window after it (``ix_contacts_arrived_at``): who
  called (customer id, else the calling number), to spot repeat calls;
- the configuration: queues with their service-level thresholds, agents
  with their teams.

Both the REST API and ``acd report`` use it, so they give the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from acd.events import Event
from acd.ids import AgentId, CallId, QueueId
from acd.intervals import Intervals
from acd.reports import CallerCall, Dimension, ReportRow, ReportSpec, build_report
from api.store.database import Database
from api.store.schema import contacts, events
from cti.wire import stored_event

_CHUNK = 500  # ids per IN (...): well under every driver's limit on parameters
_ENTITIES = ("call", "agent")
WRAP_UP_HORIZON = 3600.0  # seconds after a call's end within which its wrap-up is looked for


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """The report's own settings (``ACD_SHORT_ABANDON_SECONDS``, ``ACD_FCR_WINDOW_HOURS``)."""

    short_abandon_seconds: float
    fcr_window_seconds: float


async def report(
    database: Database,
    *,
    since: float,
    until: float,
    intervals: Intervals,
    thresholds: Thresholds,
    now: float,
) -> dict[Dimension, list[ReportRow]]:
    """The report's rows for every dimension, from what the database holds."""
    queues = {q["id"]: float(q.get("sl_seconds", 20.0)) for q in await database.load_queues()}
    agents = {
        AgentId(agent_id): frozenset(config.get("teams") or ())
        for agent_id, config, _ in await database.load_agents()
    }
    async with database.engine.connect() as conn:
        found = await _events(conn, since, until, agents)
        callers = await _callers(conn, since, until + thresholds.fcr_window_seconds)
    spec = ReportSpec(
        since=since,
        until=until,
        intervals=intervals,
        now=now,
        sl_seconds={QueueId(q): x for q, x in queues.items()},
        short_abandon_seconds=thresholds.short_abandon_seconds,
        fcr_window_seconds=thresholds.fcr_window_seconds,
        queues=[QueueId(q) for q in queues],
        agents=agents,
    )
    return build_report(
        spec,
        found,
        callers={c.call_id: c.caller for c in callers},
        caller_calls=callers,
    )


async def _events(
    conn: AsyncConnection, since: float, until: float, agents: Iterable[AgentId]
) -> list[Event]:
    columns = (events.c.seq, events.c.type, events.c.at, events.c.data)
    rows: dict[int, Any] = {}
    in_range = select(*columns, events.c.entity, events.c.entity_id, events.c.from_state).where(
        events.c.at >= since, events.c.at < until, events.c.entity.in_(_ENTITIES)
    )
    arrived: list[str] = []
    seen_agents = set(agents)
    for row in await conn.execute(in_range):
        rows[row.seq] = row
        if row.entity == "call" and row.from_state is None:
            arrived.append(row.entity_id)
        elif row.entity == "agent":
            seen_agents.add(AgentId(row.entity_id))
    last = until
    for chunk in _chunks(arrived):  # the rest of their lives, after the range
        later = select(*columns).where(
            events.c.entity == "call", events.c.entity_id.in_(chunk), events.c.at >= until
        )
        for row in await conn.execute(later):
            rows[row.seq] = row
            last = max(last, row.at)
    # The agents' events after the range, until the wrap-ups of those calls are over:
    # after-call work belongs to the call, whenever it was done.
    wrap_ups = select(*columns).where(
        events.c.at >= until, events.c.at < last + WRAP_UP_HORIZON, events.c.entity == "agent"
    )
    for row in await conn.execute(wrap_ups):
        rows[row.seq] = row
    for agent_id in sorted(seen_agents):
        before = (
            select(*columns)
            .where(events.c.entity == "agent", events.c.entity_id == agent_id, events.c.at < since)
            .order_by(events.c.seq.desc())
            .limit(1)
        )
        for row in await conn.execute(before):
            rows[row.seq] = row
    return [stored_event(r.seq, r.type, r.at, dict(r.data)) for _, r in sorted(rows.items())]


async def _callers(conn: AsyncConnection, since: float, until: float) -> list[CallerCall]:
    query = select(
        contacts.c.call_id, contacts.c.customer_id, contacts.c.ani, contacts.c.arrived_at
    ).where(contacts.c.leg == 1, contacts.c.arrived_at >= since, contacts.c.arrived_at <= until)
    out = []
    for row in await conn.execute(query):
        if row.customer_id is not None:
            caller = f"customer:{row.customer_id}"
        elif row.ani:
            caller = f"number:{row.ani}"
        else:
            continue  # nobody to recognise calling again
        out.append(
            CallerCall(call_id=CallId(row.call_id), caller=caller, arrived_at=row.arrived_at)
        )
    return out


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
