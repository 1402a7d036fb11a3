"""Callers' messages on real databases (api.store.voicemails)."""

from __future__ import annotations

from typing import Any

import pytest

from api.store import voicemails
from api.store.database import Database


def message(n: int, mailbox: str = "general", **more: Any) -> dict[str, Any]:
    return {
        "mailbox": mailbox,
        "call_id": f"call-{n}",
        "ani": f"555000{n}",
        "dnis": "100",
        "language": "en",
        "data": {"account": "123456"},
        "path": f"2026-12-02/call-{n}.wav",
        "seconds": 1.5 + n,
        **more,
    }


async def test_a_filed_message_is_read_back_as_filed(database: Database) -> None:
    filed = await voicemails.file_message(database, message(1), at=100.0)
    assert filed == {
        "id": filed["id"],
        "mailbox": "general",
        "call_id": "call-1",
        "ani": "5550001",
        "dnis": "100",
        "language": "en",
        "data": {"account": "123456"},
        "path": "2026-12-02/call-1.wav",
        "seconds": 2.5,
        "created_at": 100.0,
        "heard_at": None,
    }
    assert await voicemails.get_voicemail(database, filed["id"]) == filed
    assert await voicemails.get_voicemail(database, filed["id"] + 1) is None


async def test_filing_the_same_file_twice_keeps_one_message(database: Database) -> None:
    first = await voicemails.file_message(database, message(1), at=100.0)
    again = await voicemails.file_message(database, message(1), at=200.0)
    assert again == first
    assert await voicemails.list_voicemails(database) == [first]


async def test_a_message_with_unknown_or_missing_fields_is_refused(database: Database) -> None:
    with pytest.raises(ValueError, match="unknown \\['colour'\\]"):
        await voicemails.file_message(database, message(1, colour="red"))
    incomplete = {k: v for k, v in message(1).items() if k != "path"}
    with pytest.raises(ValueError, match="missing \\['path'\\]"):
        await voicemails.file_message(database, incomplete)


async def test_messages_are_listed_newest_first_by_mailbox_and_page_by_page(
    database: Database,
) -> None:
    filed = [
        await voicemails.file_message(database, message(n, "sales" if n % 2 else "general"))
        for n in range(1, 6)
    ]
    ids = [m["id"] for m in filed]
    newest_first = list(reversed(ids))
    assert [m["id"] for m in await voicemails.list_voicemails(database)] == newest_first
    sales = await voicemails.list_voicemails(database, mailbox="sales")
    assert [m["call_id"] for m in sales] == ["call-5", "call-3", "call-1"]
    page = await voicemails.list_voicemails(database, limit=2)
    assert [m["id"] for m in page] == newest_first[:2]
    rest = await voicemails.list_voicemails(database, before=page[-1]["id"], limit=10)
    assert [m["id"] for m in rest] == newest_first[2:]
    assert await voicemails.list_voicemails(database, mailbox="nobody") == []


async def test_a_message_heard_keeps_when_it_was_first_heard_until_marked_unheard(
    database: Database,
) -> None:
    filed = await voicemails.file_message(database, message(1))
    heard = await voicemails.mark_heard(database, filed["id"], True, at=500.0)
    assert heard is not None and heard["heard_at"] == 500.0
    again = await voicemails.mark_heard(database, filed["id"], True, at=900.0)
    assert again is not None and again["heard_at"] == 500.0
    assert await voicemails.list_voicemails(database, heard=False) == []
    assert [m["id"] for m in await voicemails.list_voicemails(database, heard=True)] == [
        filed["id"]
    ]
    unheard = await voicemails.mark_heard(database, filed["id"], False)
    assert unheard is not None and unheard["heard_at"] is None
    assert await voicemails.mark_heard(database, filed["id"] + 1, True) is None


async def test_a_deleted_message_is_gone_and_its_row_is_returned_once(database: Database) -> None:
    kept = await voicemails.file_message(database, message(1))
    doomed = await voicemails.file_message(database, message(2))
    assert await voicemails.delete_voicemail(database, doomed["id"]) == doomed
    assert await voicemails.delete_voicemail(database, doomed["id"]) is None
    assert await voicemails.get_voicemail(database, doomed["id"]) is None
    assert await voicemails.list_voicemails(database) == [kept]
