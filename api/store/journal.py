"""The event journal: every event durable, in order, without routing ever waiting for a disk.

Routing calls ``append`` (synchronous, no I/O): the items join an in-memory
buffer. One writer task (``run``) takes everything buffered, up to
``batch_max``, derives the contact changes and writes the batch in one
transaction (group commit: the more arrives while a commit is in flight, the
bigger the next batch). Once committed the batch is *durable*:
``durable_seq`` moves, ``on_durable`` hears of it (the WebSocket fan-out
sends only durable events, so nothing a desktop saw can be lost), and
``wait_durable`` callers wake.

When the database fails (refused, timed out, any error), the same batch is
appended to the spool file and fsynced: durable too. From then on every batch
goes to the spool, keeping the order, and every ``retry_seconds`` the writer
drains the spool into the database, chunk by chunk, and empties it once all
of it is in. The records in the spool are replayable (see ``batches``), so a
drain that fails half-way, or a process killed in the middle of one, only
repeats work. ``recover`` finishes what a previous process left in the spool.

A transaction has a fixed CPU cost (on PostgreSQL about as much as writing
a hundred more rows in it), so under load ``commit_interval`` spaces commits
out (a few milliseconds): a batch that is not full waits until that long after the
previous commit began, and the next commit carries everything that came in
between. Durability then costs at most that much latency, and the number of
transactions per second stays bounded however busy the centre is.

The buffer is unbounded on purpose: routing must never block, and whatever
it has been told is either in memory waiting for the writer or durable.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select

from acd.events import Event
from acd.ids import AgentId, CallId, CustomerId, QueueId
from api.store.batches import write_records, write_records_pg
from api.store.contacts import Legs, LiveLeg
from api.store.database import Database
from api.store.schema import contacts, events
from api.store.spool import Record, Spool, record
from cti.context import CallOpened

log = logging.getLogger(__name__)

Item = Event | CallOpened


class JournalClosed(RuntimeError):
    """The journal was closed: nothing more is appended, waits for unwritten seqs end."""


class SequenceUnknown(RuntimeError):
    """Neither the database nor a spool can tell the last seq, so the sequence cannot go on."""


class EventJournal:
    """Group-committing writer of the event stream to the database, spooling through outages."""

    def __init__(
        self,
        database: Database,
        spool_path: Path,
        on_durable: Callable[[list[Item]], None],
        *,
        batch_max: int = 1000,
        retry_seconds: float = 1.0,
        write_timeout: float = 2.0,
        commit_interval: float = 0.0,
    ) -> None:
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        self._database = database
        self._spool = Spool(spool_path)
        self._on_durable = on_durable
        self._batch_max = batch_max
        self._retry_seconds = retry_seconds
        self._write_timeout = write_timeout
        self._commit_interval = commit_interval
        self._legs = Legs()
        self._buffer: deque[Item] = deque()
        self._taken: list[tuple[Item, Record]] = []  # derived once, written and not yet durable
        self._last_appended = 0
        self.durable_seq = 0
        self.database_up = False  # until a write or recover() has reached it
        self._failing = False  # in a streak of failed attempts (logged once)
        self._spooled = self._spool.size() > 0  # while True, batches go to the spool
        self._spool_offset = 0  # bytes of the spool already in the database
        self._next_retry = 0.0
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._writing = asyncio.Lock()  # one writer at a time: run(), or close()/wait_durable()
        self._closing = False
        self._closed = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._abandoned: asyncio.Task[None] | None = None  # a write given up on, unwinding
        self._order = itertools.count()
        self.batches_written = 0  # database or spool
        self.items_written = 0

    # == the routing side: never blocks ===============================================

    def append(self, items: Sequence[Item]) -> None:
        """Buffer ``items`` for the writer; events must come with increasing seq."""
        if self._closing:
            raise JournalClosed("the journal is closed")
        last = self._last_appended
        for item in items:
            if not isinstance(item, CallOpened):
                if item.seq <= last:
                    raise ValueError(f"event seq {item.seq} does not follow {last}")
                last = item.seq
        self._last_appended = last
        self._buffer.extend(items)
        self._wake.set()

    @property
    def spooled(self) -> bool:
        """Whether batches are going to the spool file (the database is being waited for)."""
        return self._spooled

    @property
    def backlog(self) -> int:
        """Items appended and not yet durable."""
        return len(self._buffer) + len(self._taken)

    async def wait_durable(self, seq: int) -> None:
        """Return once every event up to ``seq`` is in the database or the fsynced spool.

        With no writer running (before ``run``, at start-up), the caller writes
        the backlog itself rather than wait for a writer that may never come.
        """
        if seq <= self.durable_seq:
            return
        if self._closed:  # everything appended is durable by now: this seq never came
            raise JournalClosed(f"seq {seq} was never appended")
        if not self._running and not self._writing.locked():
            async with self._writing:
                while self._buffer or self._taken:
                    await self._write_batch()
            if seq <= self.durable_seq:
                return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (seq, next(self._order), future))
        await future

    # == the writer ====================================================================

    async def run(self) -> None:
        """Write batches until cancelled or closed."""
        if self._running:
            raise RuntimeError("the journal's writer is already running")
        self._running = True
        self._stopped.clear()
        loop = asyncio.get_running_loop()
        try:
            async with self._writing:
                if self._spooled:
                    await asyncio.to_thread(self._spool.repair)
                started = float("-inf")
                while True:
                    self._wake.clear()
                    if self._spooled and loop.time() >= self._next_retry:
                        await self._drain()
                    if self._buffer or self._taken:
                        wait = started + self._commit_interval - loop.time()
                        if wait > 0 and len(self._buffer) < self._batch_max and not self._closing:
                            await asyncio.sleep(wait)  # let the batch fill: see commit_interval
                        started = loop.time()
                        await self._write_batch()
                        continue
                    if self._closing:
                        return
                    timeout = max(0.0, self._next_retry - loop.time()) if self._spooled else None
                    try:
                        async with asyncio.timeout(timeout):
                            await self._wake.wait()
                    except TimeoutError:
                        pass
        finally:
            self._running = False
            self._stopped.set()

    async def close(self) -> None:
        """Make everything appended durable (database or spool), then stop the writer."""
        self._closing = True
        self._wake.set()
        if self._running:
            await self._stopped.wait()
        async with self._writing:
            while self._buffer or self._taken:
                await self._write_batch()
        if self._abandoned is not None:
            await asyncio.wait({self._abandoned})
            _settle(self._abandoned)
            self._abandoned = None
        for _, _, future in self._waiters:
            if not future.done():
                future.set_exception(JournalClosed("the journal closed before this seq came"))
        self._waiters.clear()
        self._closed = True

    async def _write_batch(self) -> None:
        """Take up to ``batch_max`` items, write them to the database or the spool, mark durable."""
        while len(self._taken) < self._batch_max and self._buffer:
            item = self._buffer.popleft()
            self._taken.append((item, record(item, self._legs)))
        records = [record for _, record in self._taken]
        if self._spooled or not await self._try_database(records):
            await asyncio.to_thread(self._spool.append, records)
        batch = [item for item, _ in self._taken]
        self._taken = []
        self.batches_written += 1
        self.items_written += len(batch)
        self._made_durable(batch)

    async def _try_database(self, records: Sequence[Record]) -> bool:
        """Write ``records`` in one transaction within ``write_timeout``; False if that failed.

        The attempt runs in a task of its own because on a hung server the
        driver's clean-up (rollback, close) can outlast any timeout put around
        it. An attempt given up on is kept, not forgotten: the next attempt
        waits until it is over, and ``close`` awaits it. It may even have
        committed; the spool's replay is idempotent, so that costs nothing.
        """
        if self._abandoned is not None:
            if not self._abandoned.done():
                self._database_failed(TimeoutError("the last write is still unwinding"))
                return False
            _settle(self._abandoned)
            self._abandoned = None
        attempt = asyncio.create_task(self._write(records))
        try:
            done, _ = await asyncio.wait({attempt}, timeout=self._write_timeout)
        except asyncio.CancelledError:
            attempt.cancel()
            raise
        if not done:
            attempt.cancel()
            self._abandoned = attempt
            self._database_failed(TimeoutError(f"no commit within {self._write_timeout} s"))
            return False
        exc = attempt.exception()
        if exc is not None:  # an outage or not, the spool keeps the batch safe
            self._database_failed(exc)
            return False
        self.database_up = True
        self._failing = False
        return True

    async def _write(self, records: Sequence[Record]) -> None:
        if self._database.dialect == "postgresql":
            async with self._database.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                try:
                    await write_records_pg(raw.driver_connection, records)
                except BaseException:  # SQLAlchemy did not see it fail: drop the connection
                    await conn.invalidate()
                    raise
            return
        async with self._database.engine.begin() as conn:
            await write_records(conn, self._database, records)

    def _database_failed(self, exc: BaseException) -> None:
        """Go on with the spool; say so once per outage (an error that is no outage: loudly)."""
        if not self._failing:
            self._failing = True
            if _is_outage(exc):
                log.warning("database unreachable, spooling to %s: %r", self._spool.path, exc)
            else:
                log.error("database write failed, spooling to %s", self._spool.path, exc_info=exc)
        else:
            log.debug("database still failing: %r", exc)
        self.database_up = False
        self._spooled = True
        self._next_retry = asyncio.get_running_loop().time() + self._retry_seconds

    async def _drain(self) -> bool:
        """Move the spool into the database; whatever comes meanwhile joins the spool first."""
        while True:
            records, end = await asyncio.to_thread(
                self._spool.read, self._spool_offset, self._batch_max
            )
            if not records:
                break
            if not await self._try_database(records):
                return False
            self._spool_offset = end
            while self._buffer or self._taken:  # keep new items' wait short during a long drain
                await self._write_batch()
        await asyncio.to_thread(self._spool.clear)
        self._spool_offset = 0
        self._spooled = False
        log.info("spool drained into the database")
        return True

    def _made_durable(self, batch: list[Item]) -> None:
        for item in reversed(batch):
            if not isinstance(item, CallOpened):
                self.durable_seq = item.seq
                break
        while self._waiters and self._waiters[0][0] <= self.durable_seq:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
        self._on_durable(batch)

    # == start-up and queries ==========================================================

    async def recover(self) -> int:
        """Drain a spool left by a previous process and return the last seq of the stream.

        Call once, before ``run``. With the database unreachable the spool stays
        for ``run`` to drain; with no spool either, ``SequenceUnknown``.
        """
        await asyncio.to_thread(self._spool.repair)
        spool_last = await asyncio.to_thread(self._spool.last_seq)
        database_last: int | None = None
        self._spooled = self._spool.size() > 0
        if not self._spooled or await self._drain():
            try:
                async with self._database.engine.connect() as conn:
                    database_last = (await conn.execute(select(func.max(events.c.seq)))).scalar()
                self._legs.resume(await self.live_legs())
                self.database_up = True
            except Exception as exc:
                self._database_failed(exc)
                if spool_last is None:
                    raise SequenceUnknown("the database is unreachable, no spool") from exc
        elif spool_last is None:
            raise SequenceUnknown("the database is unreachable and the spool holds no event")
        last = max(database_last or 0, spool_last or 0)
        self.durable_seq = max(self.durable_seq, last)
        self._last_appended = max(self._last_appended, last)
        return last

    async def recent_events(self, limit: int) -> list[tuple[int, str, float, dict[str, Any]]]:
        """The last ``limit`` events of the log, oldest first: (seq, type, at, data)."""
        query = (
            select(events.c.seq, events.c.type, events.c.at, events.c.data)
            .order_by(events.c.seq.desc())
            .limit(limit)
        )
        async with self._database.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(r.seq, r.type, r.at, dict(r.data)) for r in reversed(rows)]

    async def live_legs(self) -> list[LiveLeg]:
        """Legs not ended, with the state their call's latest event left it in."""
        state = (
            select(events.c.to_state)
            .where(events.c.entity == "call", events.c.entity_id == contacts.c.call_id)
            .order_by(events.c.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = (
            select(
                contacts.c.call_id,
                contacts.c.leg,
                contacts.c.queue_id,
                contacts.c.agent_id,
                contacts.c.customer_id,
                contacts.c.ani,
                contacts.c.dnis,
                contacts.c.data,
                contacts.c.enqueued_at,
                state.label("state"),
            )
            .where(contacts.c.ended_at.is_(None))
            .order_by(contacts.c.id)
        )
        async with self._database.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            LiveLeg(
                call_id=CallId(r.call_id),
                leg=r.leg,
                queue_id=QueueId(r.queue_id),
                agent_id=None if r.agent_id is None else AgentId(r.agent_id),
                customer_id=None if r.customer_id is None else CustomerId(r.customer_id),
                ani=r.ani,
                dnis=r.dnis,
                data=dict(r.data),
                state=r.state,
                enqueued_at=r.enqueued_at,
            )
            for r in rows
        ]

    async def callback_numbers(self, call_ids: list[CallId]) -> dict[CallId, str]:
        """The number each of these calls asked to be called back at, if one did."""
        if not call_ids:
            return {}
        query = (
            select(events.c.entity_id, events.c.data)
            .where(
                events.c.entity == "call",
                events.c.to_state == "callback_queued",
                events.c.entity_id.in_(call_ids),
            )
            .order_by(events.c.seq)
        )
        async with self._database.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {
            CallId(r.entity_id): r.data["callback_number"]
            for r in rows
            if r.data.get("callback_number")
        }

    async def last_agents(self) -> dict[CustomerId, AgentId]:
        """For each customer, the agent of their most recently answered leg."""
        rank = (
            func.row_number()
            .over(
                partition_by=contacts.c.customer_id,
                order_by=(contacts.c.answered_at.desc(), contacts.c.id.desc()),
            )
            .label("rank")
        )
        ranked = (
            select(contacts.c.customer_id, contacts.c.agent_id, rank)
            .where(
                contacts.c.customer_id.is_not(None),
                contacts.c.answered_at.is_not(None),
                contacts.c.agent_id.is_not(None),
            )
            .subquery()
        )
        query = select(ranked.c.customer_id, ranked.c.agent_id).where(ranked.c.rank == 1)
        async with self._database.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {CustomerId(r.customer_id): AgentId(r.agent_id) for r in rows}


def _is_outage(exc: BaseException) -> bool:
    """A database away or too slow, as opposed to a statement it refused (a bug)."""
    if isinstance(exc, OSError | TimeoutError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return False


def _settle(task: asyncio.Task[None]) -> None:
    """Collect the outcome of a finished task nobody awaits any more (so it is not logged)."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("an abandoned write ended with %r", task.exception())
