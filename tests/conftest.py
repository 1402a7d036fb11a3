"""Shared fixtures: one real database per test, SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from databases import DIALECTS, PrivatePostgres, fresh_database, postgres_unavailable


@pytest.fixture(params=DIALECTS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new empty database: a SQLite file, or a fresh PostgreSQL database."""
    async with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running PostgreSQL server that the test may stop and start."""
    try:
        server = PrivatePostgres()
    except (FileNotFoundError, KeyError) as exc:  # no binaries, or no postgres user
        postgres_unavailable(f"cannot run a private server: {exc!r}")
        raise
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
