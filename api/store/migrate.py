"""Bring a database to the newest schema, from the server's own event loop.

Alembic's commands are synchronous and its usual async ``env.py`` calls
``asyncio.run``, which cannot run inside the server's loop. So ``upgrade``
opens an async connection here and lends it to Alembic through
``run_sync``; ``migrations/env.py`` picks it up from ``config.attributes``.
On PostgreSQL a transaction-scoped advisory lock serialises nodes starting
at once; the whole upgrade is one transaction there (DDL is transactional).
Run by hand: ``python -m api.store.migrate [URL]``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from api.store.database import DEFAULT_URL, Database

# ``migrations/`` sits beside ``api/``, in the repository and in an installed tree alike.
SCRIPT_LOCATION = Path(__file__).resolve().parents[2] / "migrations"
_LOCK_KEY = 0x0ACD_0001  # pg_advisory_xact_lock key: "acd migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str) -> None:
    """Migrate the database at ``url`` to head; a database already there is left alone."""
    database = Database(url, command_timeout=60.0)
    await database.open()
    try:
        async with database.engine.begin() as conn:
            if database.dialect == "postgresql":
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"))
            await conn.run_sync(_upgrade, alembic_config(url))
    finally:
        await database.close()


def _upgrade(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


if __name__ == "__main__":
    asyncio.run(upgrade(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_URL))
