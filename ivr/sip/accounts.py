"""Agents' SIP accounts as the registrar sees them: username → agent and digest hashes.

Kept in memory (the digest check runs on every REGISTER and must not wait
for a database); the API changes it and the database keeps it (the
``agents`` table, ``sip_username`` and ``sip_ha1``). One username belongs to
one agent, and an agent has at most one username.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from acd.ids import AgentId
from ivr.sip.digest import Algorithm


@dataclass(frozen=True, slots=True, kw_only=True)
class SipAccount:
    """An agent's phone credentials: never a password, only HA1 per algorithm."""

    agent_id: AgentId
    username: str
    ha1: Mapping[Algorithm, str] = field(default_factory=dict)


def ha1_by_name(stored: Mapping[str, str]) -> dict[Algorithm, str]:
    """Hashes as stored (by IANA algorithm token) → by ``Algorithm``; unknown tokens dropped."""
    out: dict[Algorithm, str] = {}
    for token, value in stored.items():
        algorithm = Algorithm.from_token(token)
        if algorithm is not None:
            out[algorithm.base] = value
    return out


class SipAccounts:
    def __init__(self, accounts: Iterable[SipAccount] = ()) -> None:
        self._by_username: dict[str, SipAccount] = {}
        self._by_agent: dict[AgentId, SipAccount] = {}
        for account in accounts:
            self.put(account)

    def put(self, account: SipAccount) -> None:
        """Set (or replace) an agent's account; the username must not be another agent's."""
        holder = self._by_username.get(account.username)
        if holder is not None and holder.agent_id != account.agent_id:
            raise ValueError(f"SIP username {account.username!r} belongs to {holder.agent_id}")
        self.remove(account.agent_id)
        self._by_username[account.username] = account
        self._by_agent[account.agent_id] = account

    def remove(self, agent_id: AgentId) -> SipAccount | None:
        account = self._by_agent.pop(agent_id, None)
        if account is not None:
            del self._by_username[account.username]
        return account

    def lookup(self, username: str) -> Mapping[Algorithm, str] | None:
        """The digest authority's look-up: the hashes of a username, None if unknown."""
        account = self._by_username.get(username)
        return None if account is None else account.ha1

    def by_username(self, username: str) -> SipAccount | None:
        return self._by_username.get(username)

    def of_agent(self, agent_id: AgentId) -> SipAccount | None:
        return self._by_agent.get(agent_id)

    def __len__(self) -> int:
        return len(self._by_agent)
