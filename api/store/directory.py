"""Customers, their phone numbers and cases, and the screen pop built from them.

Module functions over a ``Database``, each one transaction. Records come
and go as plain JSON-ready dicts (typed as ``Customer`` and ``Case``), since
they go to the API and to the desktop as they are; None means there is
nothing by that id. Misuse raises: ``Conflict`` for an id or a number already
taken, ``NotFound`` for a missing customer an operation needs, ``ValueError``
for an unknown field or case status. Phone numbers are stored exactly as
given: normalising them (E.164) is the caller's business, before saving and
before looking up.

Every query of the screen pop is an indexed look-up: contacts by
(customer_id, arrived_at), cases by (customer_id, updated_at).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict, cast

from sqlalchemy import ColumnElement, case, delete, distinct, func, insert, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store.database import Database
from api.store.schema import CASE_STATUSES, cases, contacts, customers, phone_numbers

SCREEN_POP_CASES = 5
CUSTOMER_FIELDS = frozenset({"name", "email", "attributes", "dedicated_agent_id", "numbers"})
CASE_FIELDS = frozenset({"subject", "status", "notes"})


class NotFound(LookupError):
    """No customer by that id."""


class Conflict(ValueError):
    """The id or phone number is taken already."""


class Customer(TypedDict):
    """A known customer and the numbers they call from."""

    id: str
    name: str
    email: str | None
    attributes: dict[str, Any]
    dedicated_agent_id: str | None
    created_at: float
    numbers: list[str]


class Case(TypedDict):
    """One matter of a customer's: a subject, a status, free-text notes."""

    id: str
    customer_id: str
    subject: str
    status: str  # "open", "pending" or "closed"
    notes: str
    created_at: float
    updated_at: float


# == customers =========================================================================


async def create_customer(
    database: Database, customer: Mapping[str, Any], *, at: float | None = None
) -> Customer:
    """Create a customer from ``{"id", "name", "email", "attributes", "dedicated_agent_id",
    "numbers"}`` (all but ``id`` optional)."""
    _check_fields(customer, CUSTOMER_FIELDS | {"id"}, "customer")
    numbers = list(customer.get("numbers") or [])
    row = {
        "id": customer["id"],
        "name": customer.get("name") or "",
        "email": customer.get("email"),
        "attributes": dict(customer.get("attributes") or {}),
        "dedicated_agent_id": customer.get("dedicated_agent_id"),
        "created_at": _now(at),
    }
    try:
        async with database.engine.begin() as conn:
            await conn.execute(insert(customers), row)
            await _insert_numbers(conn, row["id"], numbers)
    except IntegrityError as exc:
        raise Conflict(f"customer {row['id']} or one of the numbers {numbers} exists") from exc
    return _customer(row, numbers)


async def get_customer(database: Database, customer_id: str) -> Customer | None:
    async with database.engine.connect() as conn:
        found = await _customers(conn, customers.c.id == customer_id)
    return found[0] if found else None


async def list_customers(
    database: Database, *, after: str | None = None, limit: int | None = None
) -> list[Customer]:
    """Customers by id; page with ``limit`` and the last id seen as ``after``."""
    where = true() if after is None else customers.c.id > after
    async with database.engine.connect() as conn:
        return await _customers(conn, where, limit=limit)


async def update_customer(
    database: Database, customer_id: str, changes: Mapping[str, Any]
) -> Customer | None:
    """Set the fields in ``changes`` (``numbers`` replaces them all); None: no such customer."""
    _check_fields(changes, CUSTOMER_FIELDS, "customer")
    values = {k: v for k, v in changes.items() if k != "numbers"}
    if "attributes" in values:
        values["attributes"] = dict(values["attributes"] or {})
    try:
        async with database.engine.begin() as conn:
            if not await _exists(conn, customer_id):
                return None
            if values:
                stmt = update(customers).where(customers.c.id == customer_id).values(values)
                await conn.execute(stmt)
            if "numbers" in changes:
                mine = phone_numbers.c.customer_id == customer_id
                await conn.execute(delete(phone_numbers).where(mine))
                await _insert_numbers(conn, customer_id, changes["numbers"] or [])
            found = await _customers(conn, customers.c.id == customer_id)
    except IntegrityError as exc:
        raise Conflict(f"a number of {changes.get('numbers')} has another customer") from exc
    return found[0]


async def add_number(database: Database, customer_id: str, number: str) -> None:
    """Give the customer one more number (``NotFound``, or ``Conflict`` if it is taken)."""
    try:
        async with database.engine.begin() as conn:
            if not await _exists(conn, customer_id):
                raise NotFound(f"no customer {customer_id}")
            await _insert_numbers(conn, customer_id, [number])
    except IntegrityError as exc:
        raise Conflict(f"number {number} belongs to a customer already") from exc


async def remove_number(database: Database, number: str) -> bool:
    """Forget a number; False if nobody had it."""
    async with database.engine.begin() as conn:
        result = await conn.execute(delete(phone_numbers).where(phone_numbers.c.number == number))
        return result.rowcount > 0


async def customer_id_by_number(database: Database, number: str) -> str | None:
    """The id of the customer who calls from ``number`` (the ANI), if any: one indexed look-up."""
    query = select(phone_numbers.c.customer_id).where(phone_numbers.c.number == number)
    async with database.engine.connect() as conn:
        found: str | None = (await conn.execute(query)).scalar()
    return found


async def all_numbers(database: Database) -> list[str]:
    """Every phone number in the directory (to build the server's filter at start)."""
    async with database.engine.connect() as conn:
        return list((await conn.execute(select(phone_numbers.c.number))).scalars())


async def customer_by_number(database: Database, number: str) -> Customer | None:
    """The customer who calls from ``number`` (the ANI), if any."""
    owner = select(phone_numbers.c.customer_id).where(phone_numbers.c.number == number)
    async with database.engine.connect() as conn:
        found = await _customers(conn, customers.c.id == owner.scalar_subquery())
    return found[0] if found else None


# == cases =============================================================================


async def create_case(
    database: Database, customer_id: str, case_: Mapping[str, Any], *, at: float | None = None
) -> Case:
    """Open a case from ``{"id", "subject", "status", "notes"}``, all optional."""
    _check_fields(case_, CASE_FIELDS | {"id"}, "case")
    status = case_.get("status") or "open"
    _check_status(status)
    now = _now(at)
    row = {
        "id": case_.get("id") or uuid.uuid4().hex,
        "customer_id": customer_id,
        "subject": case_.get("subject") or "",
        "status": status,
        "notes": case_.get("notes") or "",
        "created_at": now,
        "updated_at": now,
    }
    try:
        async with database.engine.begin() as conn:
            if not await _exists(conn, customer_id):
                raise NotFound(f"no customer {customer_id}")
            await conn.execute(insert(cases), row)
    except IntegrityError as exc:
        raise Conflict(f"case {row['id']} exists") from exc
    return _case(row)


async def get_case(database: Database, case_id: str) -> Case | None:
    async with database.engine.connect() as conn:
        row = (await conn.execute(select(cases).where(cases.c.id == case_id))).first()
    return None if row is None else _case(row._mapping)


async def update_case(
    database: Database, case_id: str, changes: Mapping[str, Any], *, at: float | None = None
) -> Case | None:
    """Set the fields in ``changes`` and mark the case updated now. None: no such case."""
    _check_fields(changes, CASE_FIELDS, "case")
    if "status" in changes:
        _check_status(changes["status"])
    values = {**changes, "updated_at": _now(at)}
    stmt = update(cases).where(cases.c.id == case_id).values(values).returning(*cases.c)
    async with database.engine.begin() as conn:
        row = (await conn.execute(stmt)).first()
    return None if row is None else _case(row._mapping)


async def list_cases(
    database: Database, customer_id: str, *, limit: int | None = None
) -> list[Case]:
    """The customer's cases, most recently updated first."""
    async with database.engine.connect() as conn:
        return await _cases(conn, customer_id, limit)


# == screen pop ========================================================================


async def screen_pop(
    database: Database, customer_id: str, *, exclude_call_id: str | None = None
) -> dict[str, Any] | None:
    """What the desktop shows for a customer: who, their contact history, their latest cases.

    ``{"customer": Customer, "history": {"contacts", "answered", "last_contact_at",
    "last_outcome", "last_agent_id"}, "cases": [Case, ...]}``. History counts
    calls (a transferred call is one contact), ``answered`` those answered on
    any leg; the last contact is the newest leg (its start and outcome, None
    while live) and the last agent the one of the newest answered leg. Pass
    the call being offered as ``exclude_call_id`` so that the history is the
    one before it. ``cases``: at most five, most recently updated first. None
    for an unknown customer.
    """
    mine = [contacts.c.customer_id == customer_id]
    if exclude_call_id is not None:
        mine.append(contacts.c.call_id != exclude_call_id)
    answered_call = case((contacts.c.answered_at.is_not(None), contacts.c.call_id))
    counts = select(
        func.count(distinct(contacts.c.call_id)), func.count(distinct(answered_call))
    ).where(*mine)
    last = (
        select(contacts.c.arrived_at, contacts.c.outcome)
        .where(*mine)
        .order_by(contacts.c.arrived_at.desc(), contacts.c.id.desc())
        .limit(1)
    )
    last_answered = (
        select(contacts.c.agent_id)
        .where(*mine, contacts.c.answered_at.is_not(None))
        .order_by(contacts.c.answered_at.desc(), contacts.c.id.desc())
        .limit(1)
    )
    async with database.engine.connect() as conn:
        found = await _customers(conn, customers.c.id == customer_id)
        if not found:
            return None
        n_calls, n_answered = (await conn.execute(counts)).one()
        latest = (await conn.execute(last)).first()
        agent = (await conn.execute(last_answered)).scalar()
        recent = await _cases(conn, customer_id, SCREEN_POP_CASES)
    return {
        "customer": found[0],
        "history": {
            "contacts": n_calls,
            "answered": n_answered,
            "last_contact_at": None if latest is None else latest.arrived_at,
            "last_outcome": None if latest is None else latest.outcome,
            "last_agent_id": agent,
        },
        "cases": recent,
    }


# == rows ==============================================================================


async def _exists(conn: AsyncConnection, customer_id: str) -> bool:
    query = select(customers.c.id).where(customers.c.id == customer_id)
    return (await conn.execute(query)).first() is not None


async def _insert_numbers(conn: AsyncConnection, customer_id: str, numbers: Iterable[str]) -> None:
    rows = [{"number": n, "customer_id": customer_id} for n in numbers]
    if rows:
        await conn.execute(insert(phone_numbers), rows)


async def _customers(
    conn: AsyncConnection, where: ColumnElement[bool], *, limit: int | None = None
) -> list[Customer]:
    query = select(customers).where(where).order_by(customers.c.id).limit(limit)
    rows = [row._mapping for row in await conn.execute(query)]
    if not rows:
        return []
    numbers: dict[str, list[str]] = {}
    owned = (
        select(phone_numbers.c.customer_id, phone_numbers.c.number)
        .where(phone_numbers.c.customer_id.in_([r["id"] for r in rows]))
        .order_by(phone_numbers.c.number)
    )
    for row in await conn.execute(owned):
        numbers.setdefault(row.customer_id, []).append(row.number)
    return [_customer(r, numbers.get(r["id"], [])) for r in rows]


async def _cases(conn: AsyncConnection, customer_id: str, limit: int | None) -> list[Case]:
    query = (
        select(cases)
        .where(cases.c.customer_id == customer_id)
        .order_by(cases.c.updated_at.desc(), cases.c.id.desc())
        .limit(limit)
    )
    return [_case(row._mapping) for row in await conn.execute(query)]


def _customer(row: Mapping[Any, Any], numbers: list[str]) -> Customer:
    return Customer(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        attributes=dict(row["attributes"]),
        dedicated_agent_id=row["dedicated_agent_id"],
        created_at=row["created_at"],
        numbers=list(numbers),
    )


def _case(row: Mapping[Any, Any]) -> Case:
    return cast(Case, {name: row[name] for name in Case.__annotations__})


def _check_fields(given: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = set(given) - allowed
    if unknown:
        raise ValueError(f"unknown {what} fields {sorted(unknown)}")


def _check_status(status: Any) -> None:
    if status not in CASE_STATUSES:
        raise ValueError(f"case status {status!r} is not one of {', '.join(CASE_STATUSES)}")


def _now(at: float | None) -> float:
    return time.time() if at is None else at
