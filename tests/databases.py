"""Real databases for tests: a SQLite file, a fresh PostgreSQL database, a private PostgreSQL.

``fresh_database`` makes a database nobody else uses and removes it after:
for SQLite a file in the test's tmp dir; for PostgreSQL a uniquely named
database on the server at ``ACD_TEST_POSTGRES_URL`` (default
``postgresql+asyncpg://postgres@127.0.0.1:5432/test``), created and dropped
from the server's ``postgres`` database. With PostgreSQL unreachable the test
is skipped, or fails when ``CI=true``: CI must not go green on SQLite alone.

``PrivatePostgres`` runs a throwaway server of our own (initdb and pg_ctl,
in a temporary directory, on a free loopback port) so that a test can stop
and start it: a real database outage.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DIALECTS = ("sqlite", "postgresql")


def postgres_url() -> str:
    return os.environ.get("ACD_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def postgres_unavailable(message: str) -> None:
    """Skip the test, or fail it in CI, where PostgreSQL must be there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


async def _admin(url: str) -> asyncpg.Connection:
    u = make_url(url)
    return await asyncpg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password,
        database="postgres",
        timeout=3,
    )


@asynccontextmanager
async def fresh_postgres(url: str | None = None) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database on the server of ``url``; dropped afterwards."""
    base = make_url(url or postgres_url())
    try:
        admin = await _admin(base.render_as_string(hide_password=False))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        postgres_unavailable(f"PostgreSQL is not reachable at {base!r}: {exc!r}")
        raise  # unreachable: skip and fail raise
    name = f"acd_test_{uuid.uuid4().hex[:16]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_database(dialect: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of ``dialect`` ("sqlite" or "postgresql")."""
    if dialect == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'acd.db'}"
    elif dialect == "postgresql":
        async with fresh_postgres() as url:
            yield url
    else:
        raise ValueError(f"no such test database {dialect!r}")


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path is None:
        raise FileNotFoundError("no pg_ctl in /usr/lib/postgresql/*/bin or on PATH")
    return Path(on_path).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivatePostgres:
    """A PostgreSQL server of our own that a test may stop and start.

    PostgreSQL refuses to run as root, so as root the server runs as the
    ``postgres`` system user (``runuser``), in a directory it owns. Durability
    settings are off (``fsync=off``): the server's own crash safety is not what
    these tests look at, and start-up is faster.
    """

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None  # KeyError: no such user
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="acd-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as: list[str] = []
        if owner is not None:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", owner.pw_name, "--"]
        self._initialised = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {result.stderr}{result.stdout}\n{log}")

    def start(self) -> None:
        """Start the server (initialising it the first time) and wait until it accepts."""
        if not self._initialised:
            self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
            self._initialised = True
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self) -> None:
        """Fast shutdown: sessions are cut at once, like a database going away."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def freeze(self) -> None:
        """Stop the server's processes where they are (SIGSTOP): a hung database, not a gone one."""
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            os.kill(pid, signal.SIGCONT)

    def _pids(self) -> list[int]:
        """The postmaster and its children (the backends and background workers)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
        return [postmaster, *map(int, children)]

    def running(self) -> bool:
        pid = self.data / "postmaster.pid"
        return pid.exists()

    def cleanup(self) -> None:
        """Stop the server if it runs and remove its files."""
        if self._initialised and self.running():
            with contextlib.suppress(RuntimeError):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
