"""The event journal on real databases: group commit, durability, derived contacts, recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from databases import free_port

from acd.states import AgentState, CallState, Outcome
from api.store.batches import write_records
from api.store.contacts import Legs, project
from api.store.database import Database
from api.store.journal import EventJournal, JournalClosed, SequenceUnknown
from api.store.spool import Spool, record

from .journaling import Durable, expected_row, running, stored_contacts, stored_events
from .streams import Stream

C = CallState
A = AgentState


def a_day(calls: int = 5) -> Stream:
    """Several answered calls, one transferred, one abandoned."""
    s = Stream()
    for n in range(calls):
        s.answered_call(f"c{n}", 100.0 * n, f"a{n % 2}", customer=f"cust{n % 3}")
    s.opened("t1", 1000.0, "sales")
    s.call("t1", 1000.0, None, C.ARRIVED, queue="sales")
    s.call("t1", 1000.0, C.ARRIVED, C.QUEUED, queue="sales")
    s.call("t1", 1001.0, C.QUEUED, C.OFFERED, queue="sales", agent="a1")
    s.call("t1", 1002.0, C.OFFERED, C.CONNECTED, queue="sales", agent="a1")
    s.call("t1", 1030.0, C.CONNECTED, C.QUEUED, queue="billing", reason="blind_transfer")
    s.call(
        "t1",
        1031.0,
        C.QUEUED,
        C.ENDED,
        queue="billing",
        outcome=Outcome.ABANDONED,
        reason="caller_hung_up",
    )
    return s


def journal_for(db: Database, tmp_path: Path, durable: Durable, **options: Any) -> EventJournal:
    return EventJournal(db, tmp_path / "journal.spool", durable, **options)


async def test_every_event_is_stored_exactly_once_and_in_order(
    database: Database, tmp_path: Path
) -> None:
    stream, durable = a_day(), Durable()
    journal = journal_for(database, tmp_path, durable)
    async with running(journal):
        for start in range(0, len(stream.items), 7):
            journal.append(stream.items[start : start + 7])
            await asyncio.sleep(0)
        await journal.wait_durable(stream.events[-1].seq)
    assert await stored_events(database) == [expected_row(e) for e in stream.events]
    assert durable.items == stream.items
    assert journal.database_up and not journal.spooled
    assert not (tmp_path / "journal.spool").exists()


async def test_a_commit_interval_gathers_what_comes_in_meanwhile_into_one_batch(
    database: Database, tmp_path: Path
) -> None:
    stream, durable = a_day(2), Durable()
    journal = journal_for(database, tmp_path, durable, commit_interval=0.5)
    first, rest = stream.items[:1], stream.items[1:]
    async with running(journal):
        journal.append(first)
        while not durable.batches:  # the first commit goes at once
            await asyncio.sleep(0.001)
        for item in rest:  # one at a time, each a chance for the writer to start a commit
            journal.append([item])
            await asyncio.sleep(0)
        await journal.wait_durable(stream.events[-1].seq)
    assert durable.batches == [first, rest]
    assert await stored_events(database) == [expected_row(e) for e in stream.events]


async def test_appends_made_while_the_writer_is_away_are_one_batch(
    database: Database, tmp_path: Path
) -> None:
    stream, durable = a_day(2), Durable()
    journal = journal_for(database, tmp_path, durable)
    third = len(stream.items) // 3
    journal.append(stream.items[:third])
    journal.append(stream.items[third : 2 * third])
    journal.append(stream.items[2 * third :])
    async with running(journal):
        await journal.wait_durable(stream.events[-1].seq)
    assert durable.batches == [stream.items]
    assert len(await stored_events(database)) == len(stream.events)


async def test_a_batch_is_at_most_batch_max_items(database: Database, tmp_path: Path) -> None:
    stream, durable = a_day(1), Durable()  # 10 items of one call, then 7 of the transfer
    journal = journal_for(database, tmp_path, durable, batch_max=4)
    journal.append(stream.items)
    async with running(journal):
        await journal.wait_durable(stream.events[-1].seq)
    assert [len(b) for b in durable.batches] == [4, 4, 4, 4, 1]
    assert durable.items == stream.items


async def test_wait_durable_returns_once_the_event_is_written(
    database: Database, tmp_path: Path
) -> None:
    stream, durable = a_day(1), Durable()
    journal = journal_for(database, tmp_path, durable)
    async with running(journal):
        last = stream.events[-1].seq
        waiting = asyncio.create_task(journal.wait_durable(last))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # nothing appended yet
        journal.append(stream.items)
        await asyncio.wait_for(waiting, 5)
        assert journal.durable_seq == last
        assert [r["seq"] for r in await stored_events(database)][-1] == last
        await journal.wait_durable(1)  # long durable: returns at once
    with pytest.raises(JournalClosed):
        await journal.wait_durable(last + 1)


async def test_wait_durable_without_a_writer_writes_the_backlog_itself(
    database: Database, tmp_path: Path
) -> None:
    stream, durable = a_day(1), Durable()
    journal = journal_for(database, tmp_path, durable)
    journal.append(stream.items)
    await asyncio.wait_for(journal.wait_durable(stream.events[2].seq), 5)  # before run()
    assert durable.items == stream.items
    assert len(await stored_events(database)) == len(stream.events)
    async with running(journal):
        more = Stream(first_seq=stream.events[-1].seq + 1)
        more.answered_call("c9", 900.0, "a1")
        journal.append(more.items)
        await journal.wait_durable(more.events[-1].seq)
    assert durable.items == stream.items + more.items


async def test_close_writes_out_what_is_still_buffered(database: Database, tmp_path: Path) -> None:
    stream, durable = a_day(1), Durable()
    journal = journal_for(database, tmp_path, durable)
    journal.append(stream.items)
    await journal.close()  # the writer never ran
    assert len(await stored_events(database)) == len(stream.events)
    with pytest.raises(JournalClosed):
        journal.append([])


async def test_events_must_come_with_increasing_seq(database: Database, tmp_path: Path) -> None:
    stream = a_day(1)
    journal = journal_for(database, tmp_path, Durable())
    journal.append(stream.events[:3])
    with pytest.raises(ValueError, match="does not follow"):
        journal.append([stream.events[2]])


async def test_contact_rows_are_the_derivation_of_the_stream(
    database: Database, tmp_path: Path
) -> None:
    stream = a_day()
    journal = journal_for(database, tmp_path, Durable(), batch_max=3)  # legs span batches
    async with running(journal):
        journal.append(stream.items)
        await journal.wait_durable(stream.events[-1].seq)
    assert await stored_contacts(database) == project(Legs().derive_all(stream.items))
    rows = await stored_contacts(database)
    assert rows[("t1", 1)]["outcome"] == "transferred"
    assert (rows[("t1", 2)]["queue_id"], rows[("t1", 2)]["outcome"]) == ("billing", "abandoned")
    assert rows[("c3", 1)]["disposition"] == "sale"


async def test_live_legs_and_last_agents_come_from_contacts_and_events(
    database: Database, tmp_path: Path
) -> None:
    s = Stream()
    s.answered_call("c1", 0.0, "a1", customer="cust1")
    s.answered_call("c2", 100.0, "a2", customer="cust1")
    s.answered_call("c3", 200.0, "a1", customer="cust2")
    s.opened("live", 300.0, customer="cust3")
    s.call("live", 300.0, None, C.ARRIVED)
    s.call("live", 300.0, C.ARRIVED, C.QUEUED)
    s.call("live", 302.0, C.QUEUED, C.OFFERED, agent="a3")
    s.call("live", 303.0, C.OFFERED, C.CONNECTED, agent="a3")
    s.opened("waiting", 310.0, customer="cust4")
    s.call("waiting", 310.0, None, C.ARRIVED)
    s.call("waiting", 310.0, C.ARRIVED, C.QUEUED)
    journal = journal_for(database, tmp_path, Durable())
    async with running(journal):
        journal.append(s.items)
        await journal.wait_durable(s.events[-1].seq)
        live = await journal.live_legs()
        assert [(x.call_id, x.leg, x.queue_id, x.agent_id, x.state) for x in live] == [
            ("live", 1, "q1", "a3", "connected"),
            ("waiting", 1, "q1", None, "queued"),
        ]
        assert live[0].customer_id == "cust3"
        assert await journal.last_agents() == {"cust1": "a2", "cust2": "a1", "cust3": "a3"}


async def test_recover_on_a_fresh_database_starts_the_sequence_at_zero(
    database: Database, tmp_path: Path
) -> None:
    journal = journal_for(database, tmp_path, Durable())
    assert await journal.recover() == 0
    assert journal.database_up


async def test_recover_after_a_crash_replays_the_spool_exactly_once(
    database: Database, tmp_path: Path
) -> None:
    """A process spooled seq 4.. while the database was away, committed 1..6 and died."""
    stream = a_day(2)
    legs = Legs()
    records = [record(item, legs) for item in stream.items]
    spooled_from = next(i for i, r in enumerate(records) if r.seq == 4)
    committed_to = next(i for i, r in enumerate(records) if r.seq == 6) + 1
    async with database.engine.begin() as conn:
        await write_records(conn, database, records[:committed_to])
    spool = Spool(tmp_path / "journal.spool")
    spool.append(records[spooled_from:])
    with spool.path.open("ab") as f:
        f.write(b'{"e":{"seq":999,"at"')  # torn by the crash: never acknowledged

    durable = Durable()
    journal = journal_for(database, tmp_path, durable)
    assert journal.spooled
    last = await journal.recover()

    assert last == stream.events[-1].seq
    assert await stored_events(database) == [expected_row(e) for e in stream.events]
    assert await stored_contacts(database) == project(Legs().derive_all(stream.items))
    assert spool.size() == 0 and not journal.spooled
    assert journal.durable_seq == last and durable.batches == []
    # and the sequence goes on from there
    more = Stream(first_seq=last + 1)
    more.answered_call("c9", 5000.0, "a1")
    async with running(journal):
        journal.append(more.items)
        await journal.wait_durable(more.events[-1].seq)
    assert len(await stored_events(database)) == len(stream.events) + len(more.events)


async def test_recover_resumes_the_legs_left_live(database: Database, tmp_path: Path) -> None:
    s = Stream()
    s.opened("c1", 0.0, customer="cust1")
    s.call("c1", 0.0, None, C.ARRIVED)
    s.call("c1", 0.0, C.ARRIVED, C.QUEUED)
    s.call("c1", 1.0, C.QUEUED, C.OFFERED, agent="a1")
    s.call("c1", 2.0, C.OFFERED, C.CONNECTED, agent="a1")
    s.call("c1", 9.0, C.CONNECTED, C.QUEUED, queue="q2", reason="blind_transfer")
    first = journal_for(database, tmp_path, Durable())
    async with running(first):
        first.append(s.items)
    # a new process closes the call it finds live at leg 2
    second = journal_for(database, tmp_path, Durable())
    last = await second.recover()
    end = Stream(first_seq=last + 1)
    end.call(
        "c1", 20.0, C.QUEUED, C.ENDED, queue="q2", outcome=Outcome.ABANDONED, reason="interrupted"
    )
    async with running(second):
        second.append(end.items)
    rows = await stored_contacts(database)
    assert sorted(rows) == [("c1", 1), ("c1", 2)]
    assert (rows[("c1", 2)]["ended_at"], rows[("c1", 2)]["ended_reason"]) == (20.0, "interrupted")
    assert (rows[("c1", 2)]["customer_id"], rows[("c1", 2)]["queue_id"]) == ("cust1", "q2")
    assert await second.live_legs() == []


def unreachable_postgres() -> Database:
    return Database(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing")


async def test_recover_without_the_database_continues_from_the_spool(tmp_path: Path) -> None:
    stream = a_day(1)
    legs = Legs()
    Spool(tmp_path / "journal.spool").append([record(item, legs) for item in stream.items])
    db = unreachable_postgres()
    await db.open()
    journal = journal_for(db, tmp_path, Durable())
    try:
        assert await journal.recover() == stream.events[-1].seq
        assert not journal.database_up and journal.spooled
        assert Spool(tmp_path / "journal.spool").size() > 0
    finally:
        await db.close()


async def test_recover_without_the_database_or_a_spool_refuses_to_guess(tmp_path: Path) -> None:
    db = unreachable_postgres()
    await db.open()
    journal = journal_for(db, tmp_path, Durable())
    try:
        with pytest.raises(SequenceUnknown):
            await journal.recover()
    finally:
        await db.close()


async def test_with_the_database_away_batches_are_spooled_and_durable(tmp_path: Path) -> None:
    stream, durable = a_day(1), Durable()
    db = unreachable_postgres()
    await db.open()
    journal = journal_for(db, tmp_path, durable, retry_seconds=0.05)
    try:
        async with running(journal):
            journal.append(stream.items)
            await asyncio.wait_for(journal.wait_durable(stream.events[-1].seq), 5)
            assert not journal.database_up and journal.spooled
            await asyncio.sleep(0.2)  # a few failed drains change nothing
        assert durable.items == stream.items
        spooled, _ = Spool(tmp_path / "journal.spool").read(0, 1000)
        assert [r.seq for r in spooled if r.seq is not None] == [e.seq for e in stream.events]
    finally:
        await db.close()
