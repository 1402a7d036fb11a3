"""Calls: injected by integrations, hung up by the caller, and the agents' call controls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header

from acd.commands import CallArrived, CallbackRequested, CallerHungUp
from acd.errors import CommandRejected
from acd.ids import AgentId, CallId, CustomerId, Language, QueueId, Skill
from api import softphone
from api.auth import Principal
from api.deps import PrincipalDep, ServerDep, StaffDep
from api.errors import ERROR_RESPONSES
from api.schemas import CallbackBody, CallCreate, OfferBody, TransferBody, WrapUpBody
from api.server import Server, Unavailable
from cti.context import CallOpened
from cti.wire import view_data

router = APIRouter(prefix="/v1/calls", tags=["calls"], responses=ERROR_RESPONSES)
IdempotencyKey = Annotated[str | None, Header(max_length=200, description="repeat-safe id")]


def _call_public(server: Server, call_id: CallId) -> dict[str, Any] | None:
    view = view_data(server.engine.call(call_id))
    if view is None:
        return None
    context = server.pops.context(call_id)
    if context is not None:
        view.update(ani=context.ani, dnis=context.dnis, customer_id=context.customer_id)
        view["data"] = dict(context.data)
    return view


@router.post("", status_code=201, summary="Inject a call (for integrations that are not SIP)")
async def create_call(body: CallCreate, server: ServerDep, _: StaffDep) -> dict[str, Any]:
    if server.draining:
        raise Unavailable("draining", "the server is draining and takes no new calls")
    call_id = server.new_call_id()
    found = await server.find_customer(body.customer_id, body.ani)
    customer_id = body.customer_id
    dedicated = None
    if found is not None and found.get("customer"):
        customer_id = customer_id or found["customer"]["id"]
        dedicated = found["customer"].get("dedicated_agent_id")
    context = CallOpened(
        call_id=call_id,
        queue_id=QueueId(body.queue),
        at=server.runtime.clock.now(),
        ani=body.ani,
        dnis=body.dnis,
        customer_id=None if customer_id is None else CustomerId(customer_id),
        data=dict(body.data),
    )
    command = CallArrived(
        call_id=call_id,
        queue_id=QueueId(body.queue),
        ani=body.ani,
        dnis=body.dnis,
        language=None if body.language is None else Language(body.language),
        skills={Skill(k): v for k, v in body.skills.items()},
        priority=body.priority,
        customer_id=context.customer_id,
        dedicated_agent=None if dedicated is None else AgentId(dedicated),
        data=dict(body.data),
        callback_number=body.callback_number,
    )
    server.pops.open(context, found)
    server.note_arrival(call_id)
    try:
        applied = await server.execute(
            command, notes=[context], then=lambda engine: _call_public(server, call_id)
        )
    except BaseException:
        server.pops.forget(call_id)
        raise
    state = applied.view or {"id": call_id, "state": "ended"}
    return {"id": call_id, "seq": applied.seq, **state}


@router.get("", summary="Live calls")
async def list_calls(server: ServerDep, _: StaffDep) -> list[dict[str, Any]]:
    return [c for i in server.engine.call_ids() if (c := _call_public(server, i)) is not None]


@router.get("/{call_id}", summary="One live call")
async def get_call(call_id: str, server: ServerDep, principal: PrincipalDep) -> dict[str, Any]:
    view = _call_public(server, CallId(call_id))
    if view is None or not _may_see(principal, view):
        raise CommandRejected("unknown_call", f"no call {call_id} in the centre")
    return view


def _may_see(principal: Principal, view: dict[str, Any]) -> bool:
    if principal.privileged:
        return True
    return principal.agent_id in (view.get("agent_id"), view.get("offered_to"))


@router.delete("/{call_id}", summary="The caller hung up")
async def caller_hung_up(call_id: str, server: ServerDep, _: StaffDep) -> dict[str, Any]:
    applied = await server.execute(CallerHungUp(call_id=CallId(call_id)))
    return {"id": call_id, "seq": applied.seq, "state": "ended"}


@router.post("/{call_id}/callback", summary="A waiting caller asks to be called back")
async def callback_requested(
    call_id: str, body: CallbackBody, server: ServerDep, _: StaffDep
) -> dict[str, Any]:
    """The caller leaves the line; a callback task keeps their place in the queue."""
    command = CallbackRequested(call_id=CallId(call_id), number=body.number)
    applied = await server.execute(
        command, then=lambda engine: _call_public(server, command.call_id)
    )
    return {"id": call_id, "seq": applied.seq, **(applied.view or {"state": "ended"})}


async def _control(
    server: Server,
    principal: Principal,
    name: str,
    call_id: str,
    args: dict[str, Any],
    key: str | None,
) -> dict[str, Any]:
    clean = {k: v for k, v in args.items() if v is not None}
    return await softphone.run(server, principal, name, {**clean, "call_id": call_id}, key)


@router.post("/{call_id}/accept", tags=["softphone"], summary="Answer the call offered to you")
async def accept(
    call_id: str,
    server: ServerDep,
    principal: PrincipalDep,
    body: Annotated[OfferBody | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    args = (body or OfferBody()).model_dump()
    return await _control(server, principal, "accept", call_id, args, idempotency_key)


@router.post("/{call_id}/reject", tags=["softphone"], summary="Decline the call offered to you")
async def reject(
    call_id: str,
    server: ServerDep,
    principal: PrincipalDep,
    body: Annotated[OfferBody | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    args = (body or OfferBody()).model_dump()
    return await _control(server, principal, "reject", call_id, args, idempotency_key)


@router.post(
    "/{call_id}/transfer",
    tags=["softphone"],
    summary="Transfer to a queue or an agent, blind or consultative",
)
async def transfer(
    call_id: str,
    body: TransferBody,
    server: ServerDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    args = body.model_dump(mode="json")
    return await _control(server, principal, "transfer", call_id, args, idempotency_key)


@router.post("/{call_id}/wrap-up", tags=["softphone"], summary="Finish after-call work")
async def wrap_up(
    call_id: str,
    server: ServerDep,
    principal: PrincipalDep,
    body: Annotated[WrapUpBody | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    args = (body or WrapUpBody()).model_dump()
    return await _control(server, principal, "wrap_up", call_id, args, idempotency_key)


PLAIN_CONTROLS = {
    "hold": "Put the caller on hold (the call's main agent)",
    "unhold": "Take the caller off hold",
    "hangup": "End the connected call",
    "complete_transfer": "Hand the caller over to the consulted agent",
    "cancel_consult": "End the consultation and go back to the caller",
    "conference": "Join the caller and the consulted agent",
    "callback_reached": "The customer answered the call back you dialled yourself",
    "callback_failed": "The call back you dialled yourself did not reach the customer",
}
"""Call controls without a body: ``POST /v1/calls/{id}/<name with dashes>``."""


def _plain_control(name: str) -> Any:
    async def control(
        call_id: str,
        server: ServerDep,
        principal: PrincipalDep,
        idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        return await _control(server, principal, name, call_id, {}, idempotency_key)

    control.__name__ = name
    return control


for _name, _summary in PLAIN_CONTROLS.items():
    router.add_api_route(
        f"/{{call_id}}/{_name.replace('_', '-')}",
        _plain_control(_name),
        methods=["POST"],
        tags=["softphone"],
        summary=_summary,
        responses=ERROR_RESPONSES,
    )
