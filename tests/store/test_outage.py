"""A real PostgreSQL outage: the journal spools, stays durable, and drains when it is back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from databases import PrivatePostgres

from api.store.contacts import Legs, project
from api.store.database import Database
from api.store.journal import EventJournal
from api.store.migrate import upgrade
from api.store.spool import Spool

from .journaling import Durable, expected_row, running, stored_contacts, stored_events
from .streams import Stream


async def eventually(condition: object, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def ping_within(db: Database, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await db.ping():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_database_outage_loses_and_duplicates_nothing(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    await upgrade(private_postgres.url)
    db = Database(private_postgres.url)
    await db.open()
    stream, durable = Stream(), Durable()
    spool = Spool(tmp_path / "journal.spool")
    journal = EventJournal(db, spool.path, durable, retry_seconds=0.2)
    try:
        async with running(journal):
            stream.answered_call("before", 0.0, "a1", customer="cust1")
            journal.append(stream.items)
            await journal.wait_durable(stream.events[-1].seq)
            assert journal.database_up and spool.size() == 0

            await asyncio.to_thread(private_postgres.stop)
            mark = len(stream.items)
            stream.answered_call("during", 100.0, "a2", customer="cust1")
            journal.append(stream.items[mark:])
            await asyncio.wait_for(journal.wait_durable(stream.events[-1].seq), 5)
            assert not journal.database_up and journal.spooled and spool.size() > 0
            assert durable.items == stream.items  # the spool made them durable

            mark = len(stream.items)
            stream.answered_call("still_down", 200.0, "a1")
            journal.append(stream.items[mark:])
            await asyncio.wait_for(journal.wait_durable(stream.events[-1].seq), 5)
            assert not await db.ping()

            await asyncio.to_thread(private_postgres.start)
            await eventually(lambda: not journal.spooled)
            assert journal.database_up and spool.size() == 0

            mark = len(stream.items)
            stream.answered_call("after", 300.0, "a2")
            journal.append(stream.items[mark:])
            await journal.wait_durable(stream.events[-1].seq)
        assert await stored_events(db) == [expected_row(e) for e in stream.events]
        assert await stored_contacts(db) == project(Legs().derive_all(stream.items))
        assert durable.items == stream.items
        assert spool.size() == 0
    finally:
        await db.close()


async def test_a_hung_database_is_given_up_on_within_the_write_timeout(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    await upgrade(private_postgres.url)
    db = Database(private_postgres.url, connect_timeout=0.5, command_timeout=1.0)
    await db.open()
    stream, durable = Stream(), Durable()
    journal = EventJournal(
        db, tmp_path / "journal.spool", durable, retry_seconds=0.2, write_timeout=1.0
    )
    try:
        async with running(journal):
            stream.answered_call("before", 0.0, "a1")
            journal.append(stream.items)
            await journal.wait_durable(stream.events[-1].seq)

            private_postgres.freeze()
            try:
                mark = len(stream.items)
                stream.answered_call("hung", 100.0, "a2")
                started = time.monotonic()
                journal.append(stream.items[mark:])
                await asyncio.wait_for(journal.wait_durable(stream.events[-1].seq), 5)
                assert time.monotonic() - started < 1.5  # write_timeout 1 s
                assert journal.spooled and not journal.database_up
            finally:
                private_postgres.thaw()
            await eventually(lambda: not journal.spooled)
        assert await stored_events(db) == [expected_row(e) for e in stream.events]
        assert await stored_contacts(db) == project(Legs().derive_all(stream.items))
    finally:
        await db.close()


async def test_ping_answers_within_the_connect_timeout_even_when_the_server_hangs(
    private_postgres: PrivatePostgres,
) -> None:
    db = Database(private_postgres.url, connect_timeout=0.5, command_timeout=2.0)
    await db.open()
    try:
        assert await db.ping()
        private_postgres.freeze()
        try:
            started = time.monotonic()
            assert list(await asyncio.gather(db.ping(), db.ping())) == [False, False]
            assert not await db.ping()  # the stuck probe is shared, not repeated
            assert time.monotonic() - started < 1.5
        finally:
            private_postgres.thaw()
        assert await ping_within(db, 5.0)  # thawed, the stuck probe answers, then fresh ones
        await asyncio.to_thread(private_postgres.stop)
        assert not await db.ping()
    finally:
        await db.close()
