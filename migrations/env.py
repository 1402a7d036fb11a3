"""Alembic environment for async URLs.

Two ways in. ``api.store.migrate.upgrade`` (the server at start) opens the
connection itself and passes it in ``config.attributes["connection"]``; this
file then runs the migrations on it, inside the caller's event loop. The
``alembic`` command line (``alembic -c <ini> ...``, with ``sqlalchemy.url`` or
the ``ACD_DATABASE_URL`` environment variable) gets an async engine of its
own, run with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from api.store.database import DEFAULT_URL
from api.store.schema import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or os.environ.get(
        "ACD_DATABASE_URL", DEFAULT_URL
    )


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite's ALTER TABLE is limited
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
    else:
        asyncio.run(_run_async())
