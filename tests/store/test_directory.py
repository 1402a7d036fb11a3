"""Customers, numbers, cases and the screen pop on real databases (api.store.directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from acd.states import CallState, Outcome
from api.store import directory
from api.store.database import Database
from api.store.directory import Conflict, NotFound
from api.store.journal import EventJournal

from .streams import Stream

C = CallState


async def test_a_customer_is_found_by_any_of_their_numbers(database: Database) -> None:
    created = await directory.create_customer(
        database,
        {
            "id": "cust1",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "attributes": {"tier": "gold"},
            "numbers": ["+441234", "+449999"],
        },
        at=10.0,
    )
    assert created == {
        "id": "cust1",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "attributes": {"tier": "gold"},
        "dedicated_agent_id": None,
        "created_at": 10.0,
        "numbers": ["+441234", "+449999"],
    }
    assert await directory.customer_by_number(database, "+449999") == created
    assert await directory.customer_by_number(database, "+10000") is None
    assert await directory.get_customer(database, "cust1") == created
    assert await directory.get_customer(database, "nobody") is None


async def test_numbers_are_added_removed_and_never_shared(database: Database) -> None:
    await directory.create_customer(database, {"id": "cust1", "name": "Ada", "numbers": ["+1"]})
    await directory.create_customer(database, {"id": "cust2", "name": "Bob"})
    with pytest.raises(Conflict):
        await directory.add_number(database, "cust2", "+1")
    with pytest.raises(Conflict):
        await directory.create_customer(database, {"id": "cust1"})
    with pytest.raises(Conflict):
        await directory.create_customer(database, {"id": "cust3", "numbers": ["+1"]})
    assert await directory.get_customer(database, "cust3") is None  # all or nothing
    with pytest.raises(NotFound):
        await directory.add_number(database, "nobody", "+3")
    with pytest.raises(ValueError, match="unknown customer fields"):
        await directory.create_customer(database, {"id": "cust4", "phone": "+4"})
    await directory.add_number(database, "cust2", "+2")
    assert await directory.remove_number(database, "+1")
    assert not await directory.remove_number(database, "+1")
    assert await directory.customer_by_number(database, "+1") is None
    bob = await directory.customer_by_number(database, "+2")
    assert bob is not None and bob["id"] == "cust2"


async def test_update_changes_only_the_fields_given(database: Database) -> None:
    await directory.create_customer(
        database, {"id": "cust1", "name": "Ada", "email": "a@x", "numbers": ["+1", "+2"]}
    )
    updated = await directory.update_customer(
        database, "cust1", {"email": None, "dedicated_agent_id": "a7", "numbers": ["+3"]}
    )
    assert updated is not None
    assert (updated["name"], updated["email"], updated["dedicated_agent_id"]) == ("Ada", None, "a7")
    assert updated["numbers"] == ["+3"]
    assert await directory.customer_by_number(database, "+1") is None
    assert await directory.update_customer(database, "nobody", {"name": "X"}) is None


async def test_customers_are_listed_by_id_a_page_at_a_time(database: Database) -> None:
    for n in (3, 1, 2, 4):
        await directory.create_customer(database, {"id": f"cust{n}", "numbers": [f"+{n}"]})
    assert [c["id"] for c in await directory.list_customers(database)] == [
        "cust1",
        "cust2",
        "cust3",
        "cust4",
    ]
    first = await directory.list_customers(database, limit=2)
    rest = await directory.list_customers(database, after=first[-1]["id"], limit=10)
    assert [c["id"] for c in first + rest] == ["cust1", "cust2", "cust3", "cust4"]
    assert rest[0]["numbers"] == ["+3"]


async def test_cases_are_kept_per_customer_latest_update_first(database: Database) -> None:
    await directory.create_customer(database, {"id": "cust1", "name": "Ada"})
    old = await directory.create_case(database, "cust1", {"subject": "Broken router"}, at=1.0)
    new = await directory.create_case(
        database, "cust1", {"id": "k2", "subject": "Invoice", "status": "pending"}, at=2.0
    )
    assert new["id"] == "k2" and old["status"] == "open" and len(old["id"]) == 32
    assert [c["id"] for c in await directory.list_cases(database, "cust1")] == ["k2", old["id"]]
    touched = await directory.update_case(
        database, old["id"], {"notes": "replaced it", "status": "closed"}, at=3.0
    )
    assert touched == {**old, "notes": "replaced it", "status": "closed", "updated_at": 3.0}
    assert [c["id"] for c in await directory.list_cases(database, "cust1")] == [old["id"], "k2"]
    assert await directory.get_case(database, old["id"]) == touched
    with pytest.raises(ValueError, match="status"):
        await directory.update_case(database, old["id"], {"status": "lost"})
    with pytest.raises(Conflict):
        await directory.create_case(database, "cust1", {"id": "k2"})
    with pytest.raises(NotFound):
        await directory.create_case(database, "nobody", {"subject": "x"})
    assert await directory.update_case(database, "no-such-case", {"notes": "x"}) is None


async def test_the_screen_pop_shows_the_customer_their_history_and_last_case_first(
    database: Database, tmp_path: Path
) -> None:
    await directory.create_customer(
        database, {"id": "cust1", "name": "Ada", "numbers": ["+1555"]}, at=0.0
    )
    for n in range(7):
        await directory.create_case(
            database, "cust1", {"id": f"k{n}", "subject": f"case {n}"}, at=float(n)
        )
    await directory.update_case(database, "k2", {"notes": "called back"}, at=100.0)
    s = Stream()
    s.answered_call("c1", 10.0, "a1", customer="cust1")
    s.answered_call("c2", 200.0, "a2", customer="cust1")
    s.opened("c3", 300.0, customer="cust1")  # gave up waiting
    s.call("c3", 300.0, None, C.ARRIVED)
    s.call("c3", 300.0, C.ARRIVED, C.QUEUED)
    s.call("c3", 340.0, C.QUEUED, C.ENDED, outcome=Outcome.ABANDONED, reason="caller_hung_up")
    s.opened("now", 400.0, customer="cust1")  # the call being offered
    s.call("now", 400.0, None, C.ARRIVED)
    s.answered_call("other", 500.0, "a3", customer="cust2")
    journal = EventJournal(database, tmp_path / "spool", lambda batch: None)
    journal.append(s.items)
    await journal.close()

    pop = await directory.screen_pop(database, "cust1", exclude_call_id="now")
    assert pop is not None
    assert pop["customer"] == await directory.get_customer(database, "cust1")
    assert pop["history"] == {
        "contacts": 3,
        "answered": 2,
        "last_contact_at": 300.0,
        "last_outcome": "abandoned",
        "last_agent_id": "a2",
    }
    assert [c["id"] for c in pop["cases"]] == ["k2", "k6", "k5", "k4", "k3"]
    assert pop["cases"][0]["notes"] == "called back"
    with_current = await directory.screen_pop(database, "cust1")
    assert with_current is not None and with_current["history"]["contacts"] == 4
    assert await directory.screen_pop(database, "nobody") is None


async def test_a_new_customer_has_an_empty_history(database: Database) -> None:
    await directory.create_customer(database, {"id": "cust1", "name": "Ada"})
    pop = await directory.screen_pop(database, "cust1")
    assert pop is not None
    assert pop["history"] == {
        "contacts": 0,
        "answered": 0,
        "last_contact_at": None,
        "last_outcome": None,
        "last_agent_id": None,
    }
    assert pop["cases"] == []
