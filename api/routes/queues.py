"""Queues: their configuration and live figures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from acd.commands import QueueConfigured
from acd.errors import CommandRejected
from acd.ids import AgentId, QueueId
from api import audit
from api.auth import Principal
from api.deps import AdminDep, PrincipalDep, ServerDep
from api.errors import ERROR_RESPONSES
from api.metrics import AGENT_STATES, agent_state_label
from api.schemas import QueueBody, dump
from api.server import Server

router = APIRouter(prefix="/v1/queues", tags=["queues"], responses=ERROR_RESPONSES)


async def _configure(
    server: Server, body: QueueBody, principal: Principal, action: audit.Action
) -> dict[str, Any]:
    try:
        config = body.to_config()
    except ValueError as error:
        raise CommandRejected("invalid_config", str(error)) from None
    for target in [body.when_full, *(r.target for r in body.overflow)]:
        if (
            target is not None
            and target.queue is not None
            and QueueId(target.queue) not in server.queues
        ):
            raise CommandRejected(
                "unknown_queue", f"overflow target queue {target.queue} does not exist"
            )
    await server.execute(QueueConfigured(config=config))
    server.queues[QueueId(body.id)] = body
    audit.changed(principal, action, "queue", body.id)  # in force from here
    await server.save_queue(body)
    return dump(body)


@router.post("", status_code=201, summary="Create a queue")
async def create_queue(body: QueueBody, server: ServerDep, principal: AdminDep) -> dict[str, Any]:
    if QueueId(body.id) in server.queues:
        raise CommandRejected("queue_exists", f"queue {body.id} exists: use PUT")
    return await _configure(server, body, principal, audit.Action.CREATE)


@router.get("", summary="List queues")
async def list_queues(server: ServerDep, _: PrincipalDep) -> list[dict[str, Any]]:
    return [dump(b) for b in server.queues.values()]


@router.get("/{queue_id}", summary="A queue's configuration")
async def get_queue(queue_id: str, server: ServerDep, _: PrincipalDep) -> dict[str, Any]:
    body = server.queues.get(QueueId(queue_id))
    if body is None:
        raise CommandRejected("unknown_queue", f"no queue {queue_id}")
    return dump(body)


@router.put("/{queue_id}", summary="Replace a queue's configuration")
async def put_queue(
    queue_id: str, body: QueueBody, server: ServerDep, principal: AdminDep
) -> dict[str, Any]:
    if body.id != queue_id:
        raise HTTPException(422, "the body's id differs from the path's")
    action = audit.Action.UPDATE if QueueId(queue_id) in server.queues else audit.Action.CREATE
    return await _configure(server, body, principal, action)


@router.get(
    "/{queue_id}/stats", summary="Live figures: waiting, oldest wait, EWT, agents, SL today"
)
async def queue_stats(queue_id: str, server: ServerDep, _: PrincipalDep) -> dict[str, Any]:
    qid = QueueId(queue_id)
    if qid not in server.queues:
        raise CommandRejected("unknown_queue", f"no queue {queue_id}")
    return server_stats(server, qid)


def server_stats(server: Server, queue_id: QueueId) -> dict[str, Any]:
    stats = server.engine.queue_stats(queue_id)
    now = server.runtime.clock.now()
    agents = dict.fromkeys(AGENT_STATES, 0)
    for agent in server.agents.values():
        if queue_id in agent.queues:
            view = server.engine.agent(AgentId(agent.id))
            if view is not None:
                agents[agent_state_label(view.status, view.state)] += 1
    oldest = stats.oldest_enqueued_at
    return {
        "queue_id": queue_id,
        "waiting": stats.waiting,
        "in_queue": stats.size,
        "oldest_wait_seconds": None if oldest is None else max(now - oldest, 0.0),
        "ewt_seconds": server.engine.queue_estimate(queue_id),
        "agents": agents,
        "staffed": stats.staffed,
        "ready": stats.ready,
        "available": stats.available,
        "aht_seconds": stats.aht_seconds,
        "service_level_today": server.today.service_level(queue_id),
    }
