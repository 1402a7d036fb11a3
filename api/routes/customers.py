"""Customers, their phone numbers and cases: what screen pops are made of."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from acd.errors import CommandRejected
from api import audit
from api.deps import PrincipalDep, ServerDep, StaffDep
from api.errors import ERROR_RESPONSES
from api.logs import mask_number
from api.schemas import CaseBody, CasePatch, CustomerBody, CustomerPatch, NumberBody, dump
from api.server import Server, Unavailable
from api.store import directory

router = APIRouter(tags=["customers"], responses=ERROR_RESPONSES)


async def _db(server: Server, work: Any) -> Any:
    """Run a directory call; the database being down is a 503, not a 500."""
    try:
        return await work
    except (CommandRejected, Unavailable):
        raise
    except directory.Conflict as error:
        raise CommandRejected("conflict", str(error)) from None
    except Exception as error:
        if not await server.database.ping():
            raise Unavailable("database_unavailable", "the database is unreachable") from None
        raise error


def _missing(what: str, key: str) -> CommandRejected:
    return CommandRejected(f"unknown_{what}", f"no {what} {key}")


@router.post("/v1/customers", status_code=201, summary="Create a customer with their numbers")
async def create_customer(
    body: CustomerBody, server: ServerDep, principal: StaffDep
) -> dict[str, Any]:
    if await _db(server, directory.get_customer(server.database, body.id)) is not None:
        raise CommandRejected("customer_exists", f"customer {body.id} exists")
    async with server.numbers_changing:
        server.known_numbers.add(*body.numbers)
        created = await _db(server, directory.create_customer(server.database, dump(body)))
    audit.changed(principal, audit.Action.CREATE, "customer", body.id, numbers=body.numbers)
    return dict(created)


@router.get("/v1/customers", summary="List customers")
async def list_customers(server: ServerDep, _: StaffDep) -> list[dict[str, Any]]:
    return list(await _db(server, directory.list_customers(server.database)))


@router.get("/v1/customers/{customer_id}", summary="A customer, their history and cases")
async def get_customer(customer_id: str, server: ServerDep, _: PrincipalDep) -> dict[str, Any]:
    if await _db(server, directory.get_customer(server.database, customer_id)) is None:
        raise _missing("customer", customer_id)
    return dict(await _db(server, directory.screen_pop(server.database, customer_id)))


@router.patch("/v1/customers/{customer_id}", summary="Change a customer")
async def patch_customer(
    customer_id: str, patch: CustomerPatch, server: ServerDep, principal: StaffDep
) -> dict[str, Any]:
    changes = patch.model_dump(mode="json", exclude_none=True)
    # No "numbers" here: they change one by one (below), which keeps the caller filter exact.
    found = await _db(server, directory.update_customer(server.database, customer_id, changes))
    if found is None:
        raise _missing("customer", customer_id)
    audit.changed(principal, audit.Action.UPDATE, "customer", customer_id, fields=changes)
    return dict(found)


@router.post("/v1/customers/{customer_id}/numbers", status_code=201, summary="Add a phone number")
async def add_number(
    customer_id: str, body: NumberBody, server: ServerDep, principal: StaffDep
) -> dict[str, Any]:
    if await _db(server, directory.get_customer(server.database, customer_id)) is None:
        raise _missing("customer", customer_id)
    async with server.numbers_changing:
        server.known_numbers.add(body.number)
        await _db(server, directory.add_number(server.database, customer_id, body.number))
    audit.changed(
        principal, audit.Action.CREATE, "number", mask_number(body.number), customer=customer_id
    )
    return {"customer_id": customer_id, "number": body.number}


@router.delete("/v1/numbers/{number}", status_code=204, summary="Remove a phone number")
async def remove_number(number: str, server: ServerDep, principal: StaffDep) -> None:
    async with server.numbers_changing:
        removed = await _db(server, directory.remove_number(server.database, number))
        server.known_numbers.discard(number)
    if removed:
        audit.changed(principal, audit.Action.DELETE, "number", mask_number(number))


@router.post("/v1/customers/{customer_id}/cases", status_code=201, summary="Open a case")
async def create_case(
    customer_id: str, body: CaseBody, server: ServerDep, _: PrincipalDep
) -> dict[str, Any]:
    if await _db(server, directory.get_customer(server.database, customer_id)) is None:
        raise _missing("customer", customer_id)
    if await _db(server, directory.get_case(server.database, body.id)) is not None:
        raise CommandRejected("case_exists", f"case {body.id} exists")
    return dict(await _db(server, directory.create_case(server.database, customer_id, dump(body))))


@router.get("/v1/customers/{customer_id}/cases", summary="A customer's cases, last updated first")
async def list_cases(customer_id: str, server: ServerDep, _: PrincipalDep) -> list[dict[str, Any]]:
    if await _db(server, directory.get_customer(server.database, customer_id)) is None:
        raise _missing("customer", customer_id)
    return list(await _db(server, directory.list_cases(server.database, customer_id)))


@router.patch("/v1/cases/{case_id}", summary="Update a case (notes, status)")
async def patch_case(
    case_id: str, patch: CasePatch, server: ServerDep, _: PrincipalDep
) -> dict[str, Any]:
    changes = patch.model_dump(mode="json", exclude_none=True)
    found = await _db(server, directory.update_case(server.database, case_id, changes))
    if found is None:
        raise _missing("case", case_id)
    return dict(found)
