"""One async engine per database URL, tuned so that durability and outages are explicit.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL``: a
committed transaction is in the log on disk, so it survives ``kill -9`` and a
power cut, and readers never block the writer. PostgreSQL gets a small pool
and short connect and statement timeouts, so that an outage shows up as an
error within about a second instead of a task hanging on a dead socket; the
journal then spools and retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.store import configuration

DEFAULT_URL = "sqlite+aiosqlite:///./acd.db"

log = logging.getLogger(__name__)


class Database:
    """An async SQLAlchemy engine for ``url``, opened and closed by its owner."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        connect_timeout: float = 1.0,
        command_timeout: float = 2.0,
        busy_timeout_ms: int = 5000,
        pool_size: int = 4,
        pre_ping: bool = True,
    ) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()  # "sqlite" or "postgresql"
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {self.dialect!r} in {url!r}")
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._busy_timeout_ms = busy_timeout_ms
        self._pool_size = pool_size
        self._pre_ping = pre_ping
        self._engine: AsyncEngine | None = None
        self._probe: asyncio.Task[None] | None = None  # the ping in flight

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the database is not open")
        return self._engine

    async def open(self) -> None:
        """Create the engine; connections come on first use, so an outage is no error here."""
        if self._engine is not None:
            return
        if self.dialect == "sqlite":
            self._engine = self._sqlite_engine()
        else:
            self._engine = self._postgresql_engine()

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.wait({self._probe})
            self._probe = None
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    def insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT with this dialect's ON CONFLICT clauses (the same for both databases)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def ping(self) -> bool:
        """Whether ``SELECT 1`` answers within the connect timeout (for /readyz).

        At most one probe is in flight: callers share it, and a probe still
        stuck on a hung server makes the next callers answer False at once
        instead of piling up more connections.
        """
        probe = self._probe
        if probe is None or probe.done():  # a finished probe nobody collected is stale
            if probe is not None and not probe.cancelled():
                probe.exception()
            probe = self._probe = asyncio.create_task(self._select_one())
        done, _ = await asyncio.wait({probe}, timeout=self.connect_timeout)
        if not done:
            return False
        if self._probe is probe:
            self._probe = None
        if probe.cancelled() or probe.exception() is not None:
            log.debug("database ping failed: %r", None if probe.cancelled() else probe.exception())
            return False
        return True

    async def _select_one(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    # == the saved configuration (api.store.configuration), as methods ================

    async def save_queue(self, queue_id: str, config: Mapping[str, Any]) -> None:
        await configuration.save_queue(self, queue_id, config)

    async def load_queues(self) -> list[dict[str, Any]]:
        return await configuration.load_queues(self)

    async def delete_queue(self, queue_id: str) -> bool:
        return await configuration.delete_queue(self, queue_id)

    async def save_agent(self, agent_id: str, config: Mapping[str, Any], name: str) -> None:
        await configuration.save_agent(self, agent_id, config, name)

    async def load_agents(self) -> list[tuple[str, dict[str, Any], str]]:
        return await configuration.load_agents(self)

    async def delete_agent(self, agent_id: str) -> bool:
        return await configuration.delete_agent(self, agent_id)

    async def save_agent_sip(self, agent_id: str, username: str, ha1: Mapping[str, str]) -> bool:
        return await configuration.save_agent_sip(self, agent_id, username, ha1)

    async def delete_agent_sip(self, agent_id: str) -> bool:
        return await configuration.delete_agent_sip(self, agent_id)

    async def agent_sip(self, agent_id: str) -> tuple[str, dict[str, str]] | None:
        return await configuration.agent_sip(self, agent_id)

    async def sip_accounts(self) -> list[tuple[str, str, dict[str, str]]]:
        return await configuration.sip_accounts(self)

    async def save_setting(self, key: str, value: Any) -> None:
        await configuration.save_setting(self, key, value)

    async def load_settings(self) -> dict[str, Any]:
        return await configuration.load_settings(self)

    # == engines =======================================================================

    def _sqlite_engine(self) -> AsyncEngine:
        engine = create_async_engine(
            self.url, connect_args={"timeout": self._busy_timeout_ms / 1000}
        )
        busy_timeout_ms = self._busy_timeout_ms

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL is a property of the file: the first connection sets it for good.
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every commit, so a committed batch survives
            # a crash or power loss (NORMAL would only protect against the process dying).
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.close()

        return engine

    def _postgresql_engine(self) -> AsyncEngine:
        return create_async_engine(
            self.url,
            pool_size=self._pool_size,
            max_overflow=self._pool_size,
            pool_timeout=self.connect_timeout,
            # A connection that died with the server is replaced on check-out
            # instead of failing the first statement after a restart (unless the
            # owner invalidates a connection itself when it fails, as the journal does).
            pool_pre_ping=self._pre_ping,
            connect_args={
                "timeout": self.connect_timeout,  # asyncpg: the connect timeout
                "command_timeout": self.command_timeout,
            },
        )
