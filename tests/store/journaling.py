"""Running a journal in a test, and reading back what it stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select

from acd.events import Event
from api.store.database import Database
from api.store.journal import EventJournal
from api.store.schema import contacts, events
from cti.context import CallOpened
from cti.wire import ENTITIES, EVENT_TYPES, entity_id, event_data

Item = Event | CallOpened


class Durable:
    """What ``on_durable`` was told, batch by batch."""

    def __init__(self) -> None:
        self.batches: list[list[Item]] = []

    def __call__(self, batch: list[Item]) -> None:
        self.batches.append(list(batch))

    @property
    def items(self) -> list[Item]:
        return [item for batch in self.batches for item in batch]


@asynccontextmanager
async def running(journal: EventJournal) -> AsyncIterator[EventJournal]:
    """The journal's writer running in a task group for the block, then closed."""
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(journal.run())
        try:
            yield journal
        finally:
            await journal.close()


async def stored_events(db: Database) -> list[dict[str, Any]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(select(events).order_by(events.c.seq))
        return [dict(r._mapping) for r in rows]


async def stored_contacts(db: Database) -> dict[tuple[str, int], dict[str, Any]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(select(contacts).order_by(contacts.c.id))
        out = {}
        for row in rows:
            values = dict(row._mapping)
            del values["id"]
            out[(values["call_id"], values["leg"])] = values
        return out


def expected_row(event: Event) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at,
        "type": EVENT_TYPES[type(event)],
        "entity": ENTITIES[type(event)],
        "entity_id": entity_id(event),
        "from_state": None if event.from_state is None else event.from_state.value,
        "to_state": event.to_state.value,
        "data": event_data(event),
    }
