"""Saved queues, agents and settings on real databases (api.store.configuration)."""

from __future__ import annotations

import pytest

from api.store import configuration
from api.store.database import Database


async def test_queues_are_saved_replaced_and_loaded(database: Database) -> None:
    await database.save_queue("sales", {"id": "sales", "skills": {"sales": 3}})
    await database.save_queue("billing", {"id": "billing"})
    await database.save_queue("sales", {"id": "sales", "priority": 2, "when_full": {"queue": "b"}})
    assert await database.load_queues() == [
        {"id": "billing"},
        {"id": "sales", "priority": 2, "when_full": {"queue": "b"}},
    ]
    assert await database.delete_queue("billing")
    assert not await database.delete_queue("billing")


async def test_agents_keep_their_sip_credentials_across_saves(database: Database) -> None:
    await database.save_agent("a1", {"id": "a1", "queues": ["sales"]}, "Ada")
    assert await database.save_agent_sip("a1", "ada", {"SHA-256": "5e2f", "MD5": "9a0b"})
    assert not await database.save_agent_sip("nobody", "x", {})
    await database.save_agent("a1", {"id": "a1", "queues": ["sales", "billing"]}, "Ada L.")
    await configuration.save_agent(database, "a2", {"id": "a2"}, "Bob", at=5.0)
    assert await database.load_agents() == [
        ("a1", {"id": "a1", "queues": ["sales", "billing"]}, "Ada L."),
        ("a2", {"id": "a2"}, "Bob"),
    ]
    assert await database.agent_sip("a1") == ("ada", {"SHA-256": "5e2f", "MD5": "9a0b"})
    assert await database.agent_sip("a2") is None
    assert await database.sip_accounts() == [("a1", "ada", {"SHA-256": "5e2f", "MD5": "9a0b"})]
    with pytest.raises(configuration.UsernameTaken):
        await database.save_agent_sip("a2", "ada", {"MD5": "0"})
    assert await database.delete_agent_sip("a1")
    assert not await database.delete_agent_sip("a1")
    assert await database.agent_sip("a1") is None
    assert await database.delete_agent("a1")
    assert not await database.delete_agent("a1")
    assert [a[0] for a in await database.load_agents()] == ["a2"]


async def test_settings_hold_any_json_value(database: Database) -> None:
    assert await database.load_settings() == {}
    await database.save_setting("disaster", {"active": True, "site": "sip:backup@dr"})
    await database.save_setting("disaster", {"active": False, "site": None})
    await database.save_setting("motd", "hello")
    assert await database.load_settings() == {
        "disaster": {"active": False, "site": None},
        "motd": "hello",
    }
