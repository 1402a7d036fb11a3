"""Callers' messages: one row per message left in the IVR, the audio in a file beside.

Module functions over a ``Database``, each one transaction, in the manner of
``directory``: records are JSON-ready dicts (``Voicemail``), None means
nothing by that id. The row holds the WAV file's path relative to the
voicemail directory (``Settings.voicemail_directory``); reading and removing
the file is the caller's business, after the row (a row whose file is gone
says so; a file without a row is only disk space).

Filing is idempotent on the path: the server retries a message whose commit
it could not confirm, and the second insert finds the first. Ids grow with
each message, so "newest first" is the primary key backwards, and a page
goes on from the last id seen (``before``); the ``(mailbox, id)`` index
serves a mailbox's list.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TypedDict, cast

from sqlalchemy import delete, func, select, update
from sqlalchemy.sql.elements import ColumnElement

from api.store.database import Database
from api.store.schema import voicemails

MESSAGE_FIELDS = frozenset(
    {"mailbox", "call_id", "ani", "dnis", "language", "data", "path", "seconds"}
)


class Voicemail(TypedDict):
    """A message a caller left: whose, for which mailbox, how long, where its audio is."""

    id: int
    mailbox: str
    call_id: str
    ani: str  # the caller's number, as their INVITE gave it
    dnis: str
    language: str | None
    data: dict[str, str]  # what the IVR collected before the message
    path: str  # the WAV file, relative to the voicemail directory
    seconds: float
    created_at: float
    heard_at: float | None


async def file_message(
    database: Database, message: Mapping[str, Any], *, at: float | None = None
) -> Voicemail:
    """Keep a message from ``{"mailbox", "call_id", "ani", "dnis", "language", "data",
    "path", "seconds"}``; the one already filed with that path, if any."""
    unknown = set(message) - MESSAGE_FIELDS
    missing = {"mailbox", "call_id", "path", "seconds"} - set(message)
    if unknown or missing:
        raise ValueError(f"message fields: unknown {sorted(unknown)}, missing {sorted(missing)}")
    row = {
        "mailbox": message["mailbox"],
        "call_id": message["call_id"],
        "ani": message.get("ani") or "",
        "dnis": message.get("dnis") or "",
        "language": message.get("language"),
        "data": dict(message.get("data") or {}),
        "path": message["path"],
        "seconds": float(message["seconds"]),
        "created_at": time.time() if at is None else at,
    }
    insert = database.insert(voicemails).values(row).on_conflict_do_nothing(index_elements=["path"])
    async with database.engine.begin() as conn:
        await conn.execute(insert)
        found = (
            await conn.execute(select(voicemails).where(voicemails.c.path == row["path"]))
        ).one()
    return _voicemail(found._mapping)


async def get_voicemail(database: Database, voicemail_id: int) -> Voicemail | None:
    async with database.engine.connect() as conn:
        query = select(voicemails).where(voicemails.c.id == voicemail_id)
        row = (await conn.execute(query)).first()
    return None if row is None else _voicemail(row._mapping)


async def list_voicemails(
    database: Database,
    *,
    mailbox: str | None = None,
    heard: bool | None = None,
    before: int | None = None,
    limit: int | None = None,
) -> list[Voicemail]:
    """Messages, newest first; page with ``limit`` and the last id seen as ``before``."""
    where: list[ColumnElement[bool]] = []
    if mailbox is not None:
        where.append(voicemails.c.mailbox == mailbox)
    if heard is not None:
        heard_at = voicemails.c.heard_at
        where.append(heard_at.is_not(None) if heard else heard_at.is_(None))
    if before is not None:
        where.append(voicemails.c.id < before)
    query = select(voicemails).where(*where).order_by(voicemails.c.id.desc()).limit(limit)
    async with database.engine.connect() as conn:
        return [_voicemail(row._mapping) for row in await conn.execute(query)]


async def mark_heard(
    database: Database, voicemail_id: int, heard: bool, *, at: float | None = None
) -> Voicemail | None:
    """Mark a message heard (now, unless it was already) or not heard; None: no such message."""
    now = time.time() if at is None else at
    value = func.coalesce(voicemails.c.heard_at, now) if heard else None
    stmt = (
        update(voicemails)
        .where(voicemails.c.id == voicemail_id)
        .values(heard_at=value)
        .returning(*voicemails.c)
    )
    async with database.engine.begin() as conn:
        row = (await conn.execute(stmt)).first()
    return None if row is None else _voicemail(row._mapping)


async def delete_voicemail(database: Database, voicemail_id: int) -> Voicemail | None:
    """Forget a message; the row it had (its file is the caller's to remove), or None."""
    stmt = delete(voicemails).where(voicemails.c.id == voicemail_id).returning(*voicemails.c)
    async with database.engine.begin() as conn:
        row = (await conn.execute(stmt)).first()
    return None if row is None else _voicemail(row._mapping)


def _voicemail(row: Mapping[Any, Any]) -> Voicemail:
    found = {name: row[name] for name in Voicemail.__annotations__}
    found["data"] = dict(found["data"])
    return cast(Voicemail, found)
