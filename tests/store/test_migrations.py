"""Migrations on fresh SQLite and PostgreSQL databases (api.store.migrate)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from api.store.database import Database
from api.store.migrate import upgrade
from api.store.schema import metadata

TABLES = {
    "events",
    "contacts",
    "queues",
    "agents",
    "settings",
    "customers",
    "phone_numbers",
    "cases",
    "voicemails",
    "alembic_version",
}


async def _inspect(url: str, look: Any) -> Any:
    db = Database(url)
    await db.open()
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(look)
    finally:
        await db.close()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _version(conn: Connection) -> list[str]:
    return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]


def _differences(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


async def test_upgrade_creates_every_table_on_a_fresh_database(database_url: str) -> None:
    await upgrade(database_url)
    assert await _inspect(database_url, _tables) == TABLES
    assert await _inspect(database_url, _version) == ["0005_events_at"]


async def test_a_second_upgrade_changes_nothing(database_url: str) -> None:
    await upgrade(database_url)
    db = Database(database_url)
    await db.open()
    async with db.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO settings (key, value) VALUES ('disaster', '{\"active\": true}')")
        )
    await db.close()
    await upgrade(database_url)
    assert await _inspect(database_url, _version) == ["0005_events_at"]
    rows = await _inspect(database_url, lambda c: c.execute(text("SELECT key FROM settings")).all())
    assert [r[0] for r in rows] == ["disaster"]


async def test_the_migrated_database_matches_the_schema_module(database_url: str) -> None:
    await upgrade(database_url)
    assert await _inspect(database_url, _differences) == []
