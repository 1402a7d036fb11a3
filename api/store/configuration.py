"""The centre's configuration as the server last saved it: queues, agents and settings.

The store keeps each configuration as the JSON dict the server hands over
and gives it back unchanged; turning it into ``acd.config`` objects is the
server's business, so a new config field needs no migration. Disaster mode
and the like are ``settings``: a key and any JSON value. ``Database`` offers
these functions as methods too (``database.save_queue(...)``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from api.store.schema import agents, queues, settings

if TYPE_CHECKING:
    from api.store.database import Database


async def save_queue(
    database: Database, queue_id: str, config: Mapping[str, Any], *, at: float | None = None
) -> None:
    """Create or replace a queue's configuration."""
    stmt = database.insert(queues).values(id=queue_id, config=dict(config), updated_at=_now(at))
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={"config": stmt.excluded.config, "updated_at": stmt.excluded.updated_at},
    )
    async with database.engine.begin() as conn:
        await conn.execute(stmt)


async def load_queues(database: Database) -> list[dict[str, Any]]:
    """Every saved queue configuration, by queue id."""
    async with database.engine.connect() as conn:
        rows = await conn.execute(select(queues.c.config).order_by(queues.c.id))
        return [dict(row.config) for row in rows]


async def delete_queue(database: Database, queue_id: str) -> bool:
    """Forget a queue; False if there was none."""
    async with database.engine.begin() as conn:
        result = await conn.execute(delete(queues).where(queues.c.id == queue_id))
        return result.rowcount > 0


async def save_agent(
    database: Database,
    agent_id: str,
    config: Mapping[str, Any],
    name: str,
    *,
    at: float | None = None,
) -> None:
    """Create or replace an agent's configuration and name (SIP credentials are kept)."""
    stmt = database.insert(agents).values(
        id=agent_id, config=dict(config), name=name, updated_at=_now(at)
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={
            "config": stmt.excluded.config,
            "name": stmt.excluded.name,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    async with database.engine.begin() as conn:
        await conn.execute(stmt)


async def load_agents(database: Database) -> list[tuple[str, dict[str, Any], str]]:
    """Every saved agent as (id, config, name), by id."""
    query = select(agents.c.id, agents.c.config, agents.c.name).order_by(agents.c.id)
    async with database.engine.connect() as conn:
        rows = await conn.execute(query)
        return [(r.id, dict(r.config), r.name) for r in rows]


async def delete_agent(database: Database, agent_id: str) -> bool:
    """Forget an agent; False if there was none."""
    async with database.engine.begin() as conn:
        result = await conn.execute(delete(agents).where(agents.c.id == agent_id))
        return result.rowcount > 0


class UsernameTaken(ValueError):
    """Another agent has this SIP username."""


async def save_agent_sip(
    database: Database, agent_id: str, username: str, ha1: Mapping[str, str]
) -> bool:
    """Set the agent's SIP username and digest hashes; False if the agent is unknown."""
    stmt = (
        update(agents)
        .where(agents.c.id == agent_id)
        .values(sip_username=username, sip_ha1=dict(ha1))
    )
    try:
        async with database.engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount > 0
    except IntegrityError as exc:
        raise UsernameTaken(f"SIP username {username!r} belongs to another agent") from exc


async def delete_agent_sip(database: Database, agent_id: str) -> bool:
    """Forget the agent's SIP credentials; False if they had none."""
    stmt = (
        update(agents)
        .where(agents.c.id == agent_id, agents.c.sip_username.is_not(None))
        .values(sip_username=None, sip_ha1=None)
    )
    async with database.engine.begin() as conn:
        return (await conn.execute(stmt)).rowcount > 0


async def agent_sip(database: Database, agent_id: str) -> tuple[str, dict[str, str]] | None:
    """The agent's (SIP username, digest hashes by algorithm), if they have them."""
    query = select(agents.c.sip_username, agents.c.sip_ha1).where(agents.c.id == agent_id)
    async with database.engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None or row.sip_username is None or row.sip_ha1 is None:
        return None
    return (row.sip_username, dict(row.sip_ha1))


async def sip_accounts(database: Database) -> list[tuple[str, str, dict[str, str]]]:
    """Every agent with SIP credentials: (agent id, username, digest hashes)."""
    query = select(agents.c.id, agents.c.sip_username, agents.c.sip_ha1).where(
        agents.c.sip_username.is_not(None)
    )
    async with database.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [(r.id, r.sip_username, dict(r.sip_ha1 or {})) for r in rows]


async def save_setting(database: Database, key: str, value: Any) -> None:
    """Set one setting to a JSON value."""
    stmt = database.insert(settings).values(key=key, value=value)
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value})
    async with database.engine.begin() as conn:
        await conn.execute(stmt)


async def load_settings(database: Database) -> dict[str, Any]:
    """Every setting, by key."""
    async with database.engine.connect() as conn:
        rows = await conn.execute(select(settings.c.key, settings.c.value))
        return {row.key: row.value for row in rows}


def _now(at: float | None) -> float:
    return time.time() if at is None else at
