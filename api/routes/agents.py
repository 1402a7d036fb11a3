"""Agents: configuration (skills, languages, teams, queues) and their own softphone commands."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException

from acd.commands import AgentConfigured
from acd.errors import CommandRejected
from acd.ids import AgentId
from api import audit, softphone
from api.auth import Principal
from api.deps import AdminDep, PrincipalDep, ServerDep
from api.errors import ERROR_RESPONSES
from api.schemas import AgentBody, AgentPatch, NotReadyBody, SipCredentials, dump
from api.server import Server
from cti.wire import view_data
from ivr.sip.accounts import SipAccount

router = APIRouter(prefix="/v1/agents", tags=["agents"], responses=ERROR_RESPONSES)
IdempotencyKey = Annotated[str | None, Header(max_length=200, description="repeat-safe id")]


def _public(server: Server, body: AgentBody) -> dict[str, Any]:
    return {**dump(body), "live": view_data(server.engine.agent(AgentId(body.id)))}


def _may_see(principal: Principal, body: AgentBody) -> bool:
    if principal.privileged:
        return not principal.teams or bool(principal.teams & set(body.teams))
    return principal.agent_id == body.id


async def _configure(
    server: Server,
    body: AgentBody,
    principal: Principal,
    action: audit.Action,
    fields: Iterable[str] = (),
) -> dict[str, Any]:
    try:
        config = body.to_config()
    except ValueError as error:
        raise CommandRejected("invalid_config", str(error)) from None
    await server.execute(AgentConfigured(config=config))
    server.remember_agent(body)
    audit.changed(principal, action, "agent", body.id, fields=fields)  # in force from here
    await server.save_agent(body)
    return _public(server, body)


@router.post("", status_code=201, summary="Create an agent")
async def create_agent(body: AgentBody, server: ServerDep, principal: AdminDep) -> dict[str, Any]:
    if AgentId(body.id) in server.agents:
        raise CommandRejected("agent_exists", f"agent {body.id} exists: use PUT or PATCH")
    return await _configure(server, body, principal, audit.Action.CREATE)


@router.get("", summary="List agents with their live state")
async def list_agents(server: ServerDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    return [_public(server, b) for b in server.agents.values() if _may_see(principal, b)]


@router.get("/{agent_id}", summary="One agent with their live state")
async def get_agent(agent_id: str, server: ServerDep, principal: PrincipalDep) -> dict[str, Any]:
    body = server.agents.get(AgentId(agent_id))
    if body is None or not _may_see(principal, body):
        raise CommandRejected("unknown_agent", f"no agent {agent_id}")
    return _public(server, body)


@router.put("/{agent_id}", summary="Replace an agent's configuration")
async def put_agent(
    agent_id: str, body: AgentBody, server: ServerDep, principal: AdminDep
) -> dict[str, Any]:
    if body.id != agent_id:
        raise HTTPException(422, "the body's id differs from the path's")
    action = audit.Action.UPDATE if AgentId(agent_id) in server.agents else audit.Action.CREATE
    return await _configure(server, body, principal, action)


@router.patch("/{agent_id}", summary="Change an agent's skills, languages, teams or queues")
async def patch_agent(
    agent_id: str, patch: AgentPatch, server: ServerDep, principal: AdminDep
) -> dict[str, Any]:
    body = server.agents.get(AgentId(agent_id))
    if body is None:
        raise CommandRejected("unknown_agent", f"no agent {agent_id}")
    changes = patch.model_dump(exclude_none=True)
    changed = body.model_copy(update=changes)
    return await _configure(
        server,
        AgentBody.model_validate(dump(changed)),
        principal,
        audit.Action.UPDATE,
        fields=changes,
    )


@router.put("/{agent_id}/sip", summary="Set the agent's SIP phone credentials")
async def put_sip(
    agent_id: str, body: SipCredentials, server: ServerDep, principal: AdminDep
) -> dict[str, Any]:
    """Kept as digest hashes (SHA-256 and MD5) under the server's realm, never as the password."""
    if AgentId(agent_id) not in server.agents:
        raise CommandRejected("unknown_agent", f"no agent {agent_id}")
    had = server.sip_accounts.of_agent(AgentId(agent_id)) is not None
    account = await server.set_sip_account(AgentId(agent_id), body.username, body.password)
    action = audit.Action.UPDATE if had else audit.Action.CREATE
    audit.changed(principal, action, "sip_account", agent_id, username=account.username)
    return _sip_public(server, account)


@router.get("/{agent_id}/sip", summary="The agent's SIP username and where their phone is")
async def get_sip(agent_id: str, server: ServerDep, principal: PrincipalDep) -> dict[str, Any]:
    body = server.agents.get(AgentId(agent_id))
    if body is None or not _may_see(principal, body):
        raise CommandRejected("unknown_agent", f"no agent {agent_id}")
    account = server.sip_accounts.of_agent(AgentId(agent_id))
    if account is None:
        raise CommandRejected("no_sip_account", f"agent {agent_id} has no SIP credentials")
    return _sip_public(server, account)


@router.delete("/{agent_id}/sip", status_code=204, summary="Remove the agent's SIP credentials")
async def delete_sip(agent_id: str, server: ServerDep, principal: AdminDep) -> None:
    if not await server.remove_sip_account(AgentId(agent_id)):
        raise CommandRejected("no_sip_account", f"agent {agent_id} has no SIP credentials")
    audit.changed(principal, audit.Action.DELETE, "sip_account", agent_id)


def _sip_public(server: Server, account: SipAccount) -> dict[str, Any]:
    return {
        "agent_id": account.agent_id,
        "username": account.username,
        "realm": server.settings.sip_realm,
        "algorithms": sorted(a.value for a in account.ha1),
    }


async def _own(
    server: Server,
    principal: Principal,
    agent_id: str,
    name: str,
    args: dict[str, Any],
    key: str | None,
) -> dict[str, Any]:
    return await softphone.run(server, principal, name, {**args, "agent_id": agent_id}, key)


@router.post("/{agent_id}/not-ready", tags=["softphone"], summary="Not ready, with a reason code")
async def not_ready(
    agent_id: str,
    server: ServerDep,
    principal: PrincipalDep,
    body: Annotated[NotReadyBody | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    reason = (body or NotReadyBody()).reason
    return await _own(server, principal, agent_id, "not_ready", {"reason": reason}, idempotency_key)


PLAIN_COMMANDS = {
    "login": "Log in (not ready until ready)",
    "ready": "Ready for calls",
    "logout": "Log out (after the call in hand)",
    "leave_conference": "Leave a conference; the other agent keeps the caller",
}
"""An agent's commands without a body: ``POST /v1/agents/{id}/<name with dashes>``."""


def _plain_command(name: str) -> Any:
    async def command(
        agent_id: str,
        server: ServerDep,
        principal: PrincipalDep,
        idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        return await _own(server, principal, agent_id, name, {}, idempotency_key)

    command.__name__ = name
    return command


for _name, _summary in PLAIN_COMMANDS.items():
    router.add_api_route(
        f"/{{agent_id}}/{_name.replace('_', '-')}",
        _plain_command(_name),
        methods=["POST"],
        tags=["softphone"],
        summary=_summary,
        responses=ERROR_RESPONSES,
    )
