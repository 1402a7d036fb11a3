"""FastAPI dependencies: the server, and who is calling with what role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import BadToken, Principal, Role
from api.server import Server

_bearer = HTTPBearer(auto_error=False, description="a token from `acd token` or POST /v1/tokens")


async def get_server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


ServerDep = Annotated[Server, Depends(get_server)]


async def get_principal(
    server: ServerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    try:
        return server.tokens.decode(credentials.credentials)
    except BadToken as error:
        raise HTTPException(
            401, f"invalid token: {error}", {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role):  # type: ignore[no-untyped-def]
    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"needs role {' or '.join(r.value for r in roles)}")
        return principal

    return check


AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]
StaffDep = Annotated[Principal, Depends(require(Role.ADMIN, Role.SUPERVISOR))]
