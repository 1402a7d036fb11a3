"""The snapshot a desktop gets on connecting: the state its live feed starts from.

It is taken between two commands (``Runtime.inspect``) and tagged with the
sequence number it reflects; the feed then carries every later event. An
agent sees themselves, their call and their offer (with its screen pop); a
supervisor their teams' agents and the queues those teams serve; an admin
everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from acd.engine import Engine
from acd.ids import AgentId, QueueId
from cti.hub import Audience, Visibility
from cti.screenpop import ScreenPops
from cti.wire import view_data


def snapshot(
    engine: Engine,
    audience: Audience,
    visibility: Visibility,
    pops: ScreenPops,
    agent_ids: Iterable[AgentId],
) -> dict[str, Any]:
    if audience.agent_id is not None:
        return _agent(engine, audience.agent_id, pops)
    if audience.everything:
        agents = sorted(agent_ids)
        queues = sorted(engine.queue_ids())
    else:
        agents = visibility.agents_of(audience.teams)
        queues = sorted(visibility.queues_of(audience.teams))
    return {
        "agents": [view_data(engine.agent(a)) for a in agents if engine.agent(a) is not None],
        "queues": [_queue(engine, q) for q in queues if q in set(engine.queue_ids())],
        "calls": [
            view_data(engine.call(c))
            for c in engine.call_ids()
            if (view := engine.call(c)) is not None and view.queue_id in queues
        ],
    }


def _agent(engine: Engine, agent_id: AgentId, pops: ScreenPops) -> dict[str, Any]:
    view = engine.agent(agent_id)
    out: dict[str, Any] = {"agent": view_data(view), "call": None, "offer": None}
    if view is None:
        return out
    if view.call_id is not None:
        out["call"] = view_data(engine.call(view.call_id))
        if out["call"] is not None:
            out["call"]["screen_pop"] = pops.for_call(view.call_id)
    if view.offered_call_id is not None:
        out["offer"] = {
            "reservation_id": view.reservation_id,
            "call_id": view.offered_call_id,
            "screen_pop": pops.for_call(view.offered_call_id),
        }
    return out


def _queue(engine: Engine, queue_id: QueueId) -> dict[str, Any]:
    stats = view_data(engine.queue_stats(queue_id))
    assert stats is not None
    return stats
