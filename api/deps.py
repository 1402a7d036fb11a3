"""FastAPI dependencies: the server, and who is calling with what role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import audit
from api.auth import BadToken, Principal, Role
from api.server import Server

_bearer = HTTPBearer(auto_error=False, description="a token from `acd token` or POST /v1/tokens")


async def get_server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


ServerDep = Annotated[Server, Depends(get_server)]


def source_of(request: Request) -> str:
    """The peer's address, for the audit log."""
    client = request.client
    return "-" if client is None else f"{client.host}:{client.port}"


async def get_principal(
    request: Request,
    server: ServerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        _failed(request, "no bearer token")
        raise HTTPException(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    try:
        return server.tokens.decode(credentials.credentials)
    except BadToken as error:
        _failed(request, str(error))
        raise HTTPException(
            401, f"invalid token: {error}", {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None


def _failed(request: Request, reason: str) -> None:
    audit.auth_failed(
        audit.Channel.REST,
        source_of(request),
        reason,
        method=request.method,
        path=request.url.path,
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role):  # type: ignore[no-untyped-def]
    needed = " or ".join(r.value for r in roles)

    async def check(request: Request, principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            what = f"{request.method} {request.url.path}"
            audit.access_denied(principal, source_of(request), what, needed)
            raise HTTPException(403, f"needs role {needed}")
        return principal

    return check


AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]
StaffDep = Annotated[Principal, Depends(require(Role.ADMIN, Role.SUPERVISOR))]
