"""Settings that are derived from others (api.settings)."""

from __future__ import annotations

from pathlib import Path

from api.settings import Settings


def test_messages_are_kept_beside_the_sqlite_file_unless_a_directory_is_given() -> None:
    beside = Settings(database_url="sqlite+aiosqlite:///data/acd.db")
    assert beside.voicemail_directory() == Path("data/voicemail")
    default = Settings(database_url="sqlite+aiosqlite:///./acd.db")
    assert default.voicemail_directory() == Path("voicemail")
    given = Settings(database_url="sqlite+aiosqlite:///data/acd.db", voicemail_dir=Path("/srv/vm"))
    assert given.voicemail_directory() == Path("/srv/vm")


def test_messages_of_a_postgresql_or_in_memory_server_go_under_var() -> None:
    for url in ("postgresql+asyncpg://postgres@127.0.0.1/test", "sqlite+aiosqlite://"):
        assert Settings(database_url=url).voicemail_directory() == Path("var/voicemail")
