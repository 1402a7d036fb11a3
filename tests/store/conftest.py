"""Fixtures of the store tests: a migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.store.database import Database
from api.store.migrate import upgrade


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """An open ``Database`` on a fresh database brought to the newest schema."""
    await upgrade(database_url)
    db = Database(database_url)
    await db.open()
    yield db
    await db.close()
