"""Bearer tokens: JWT signed with HS256 (the only algorithm accepted), with an expiry.

A token names a role (agent, supervisor, admin), for an agent the agent it
acts for, for a supervisor the teams they look after. ``decode`` refuses a
token with another algorithm (``alg: none`` included), a bad signature, no
expiry or a past one, or an unknown role.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

import jwt

from acd.ids import AgentId

ALGORITHM = "HS256"
ISSUER = "acd"


class Role(Enum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is calling, as their token says."""

    subject: str
    role: Role
    agent_id: AgentId | None = None
    teams: frozenset[str] = frozenset()

    @property
    def privileged(self) -> bool:
        return self.role is not Role.AGENT


class BadToken(Exception):
    """The token is missing, malformed, expired, or not ours."""


def issue(
    key: str,
    role: Role,
    *,
    agent_id: str | None = None,
    teams: frozenset[str] = frozenset(),
    minutes: int = 720,
    subject: str | None = None,
    now: float | None = None,
) -> str:
    if role is Role.AGENT and not agent_id:
        raise ValueError("an agent token names its agent")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": subject or agent_id or role.value,
        "role": role.value,
        "iat": issued,
        "exp": issued + minutes * 60,
    }
    if agent_id:
        claims["agent_id"] = agent_id
    if teams:
        claims["teams"] = sorted(teams)
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode(key: str, token: str) -> Principal:
    return _verify(key, token)[0]


class Tokens:
    """Tokens verified once and then known until they expire (bounded, oldest dropped first).

    Checking an HS256 signature and the claims costs more than routing a call,
    and a desktop or an integration sends the same token with every request.
    A token's claims cannot change without its signature changing, so the
    answer holds until ``exp``; the key is fixed for the server's life.
    """

    def __init__(self, key: str, *, size: int = 10_000) -> None:
        self._key = key
        self._size = size
        self._known: dict[str, tuple[Principal, float]] = {}

    def decode(self, token: str, now: float | None = None) -> Principal:
        now = time.time() if now is None else now
        known = self._known.get(token)
        if known is not None:
            if now < known[1]:
                return known[0]
            del self._known[token]
        principal, expires = _verify(self._key, token)
        if len(self._known) >= self._size:
            del self._known[next(iter(self._known))]
        self._known[token] = (principal, expires)
        return principal


def _verify(key: str, token: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.PyJWTError as error:
        raise BadToken(str(error)) from None
    try:
        role = Role(claims.get("role"))
    except ValueError:
        raise BadToken("unknown role") from None
    agent_id = claims.get("agent_id")
    if role is Role.AGENT and not isinstance(agent_id, str):
        raise BadToken("an agent token must name its agent")
    teams = claims.get("teams", [])
    if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
        raise BadToken("teams must be a list of names")
    principal = Principal(
        subject=str(claims["sub"]),
        role=role,
        agent_id=AgentId(agent_id) if isinstance(agent_id, str) else None,
        teams=frozenset(teams),
    )
    return principal, float(claims["exp"])
