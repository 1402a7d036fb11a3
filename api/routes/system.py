"""Health, readiness, metrics, tokens and disaster mode."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from acd.commands import DisasterModeChanged
from api import audit
from api.auth import Role, issue
from api.deps import AdminDep, ServerDep, StaffDep, source_of
from api.errors import ERROR_RESPONSES
from api.schemas import DisasterBody, TokenRequest

router = APIRouter(tags=["system"], responses=ERROR_RESPONSES)


@router.get("/livez", summary="The event loop is alive")
async def livez() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/readyz",
    summary="Ready: database reachable and not draining",
    responses={503: {"description": "not ready, with the reasons"}},
)
async def readyz(server: ServerDep, response: Response) -> dict[str, Any]:
    reasons = []
    if not server.started:
        reasons.append("starting")
    if server.draining:
        reasons.append("draining")
    if not server.journal.database_up:
        reasons.append("database unreachable")
    if reasons:
        response.status_code = 503
    return {"status": "ready" if not reasons else "not_ready", "reasons": reasons}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(
    request: Request,
    server: ServerDep,
    authorization: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    wanted = server.settings.metrics_token
    if wanted and authorization != f"Bearer {wanted}":
        reason = "no metrics token" if authorization is None else "wrong metrics token"
        audit.auth_failed(audit.Channel.REST, source_of(request), reason, path="/metrics")
        raise HTTPException(401, "metrics need the metrics token", {"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.post("/v1/tokens", status_code=201, tags=["auth"], summary="Issue a bearer token")
async def create_token(
    body: TokenRequest, server: ServerDep, principal: AdminDep
) -> dict[str, Any]:
    role = Role(body.role)
    if role is Role.AGENT and not body.agent_id:
        raise HTTPException(422, "an agent token names its agent_id")
    token = issue(
        server.key,
        role,
        agent_id=body.agent_id,
        teams=frozenset(body.teams),
        minutes=body.minutes,
    )
    audit.changed(
        principal,
        audit.Action.CREATE,
        "token",
        body.agent_id or role.value,
        granted_role=role.value,
        granted_teams=sorted(body.teams),
        minutes=body.minutes,
    )
    return {"token": token, "token_type": "bearer", "expires_in": body.minutes * 60}


@router.get("/v1/disaster", tags=["disaster"], summary="Is disaster mode on?")
async def get_disaster(server: ServerDep, _: StaffDep) -> dict[str, Any]:
    return dict(server.disaster)


@router.put("/v1/disaster", tags=["disaster"], summary="Switch disaster mode on or off")
async def put_disaster(
    body: DisasterBody, server: ServerDep, principal: AdminDep
) -> dict[str, Any]:
    await server.execute(DisasterModeChanged(active=body.active, site=body.site))
    server.disaster = {"active": body.active, "site": body.site if body.active else None}
    audit.changed(principal, audit.Action.UPDATE, "disaster", "disaster", **server.disaster)
    await server.save_setting("disaster", server.disaster)
    return dict(server.disaster)
