"""Running one softphone command for a caller, the same way for REST and the WebSocket."""

from __future__ import annotations

from typing import Any

from acd.engine import Engine
from acd.ids import AgentId
from api import audit
from api.auth import Principal, Role
from api.server import Server, Unavailable
from cti import softphone
from cti.hub import Audience
from cti.wire import event_message, view_data


async def run(
    server: Server,
    principal: Principal,
    name: str,
    args: Any,
    command_id: str | None = None,
    channel: audit.Channel = audit.Channel.REST,
) -> dict[str, Any]:
    """Apply the named command as ``principal``; a repeated ``command_id`` gets the first reply."""

    audience = audience_of(principal)
    if args is None:
        args = {}

    async def once() -> dict[str, Any]:
        actor = None if principal.privileged else principal.agent_id
        built = softphone.build(name, args, actor)
        if server.draining and name == "login":
            raise Unavailable("draining", "the server is draining: log in on another server")

        def after(engine: Engine) -> dict[str, Any]:
            out: dict[str, Any] = {}
            if built.agent_id is not None:
                out["agent"] = view_data(engine.agent(built.agent_id))
            if built.call_id is not None:
                out["call"] = view_data(engine.call(built.call_id))
            return out

        transfer = name in ("transfer", "consult") and built.call_id is not None
        if transfer:  # the case context must be there when the next agent is offered the call
            assert built.call_id is not None
            server.pops.transferred(
                built.call_id,
                principal.agent_id or AgentId(principal.subject),
                args.get("note"),
                args.get("case_id"),
                server.runtime.clock.now(),
            )
        try:
            applied = await server.execute(built.command, guard=built.guard, then=after)
        except BaseException:
            if transfer:
                assert built.call_id is not None
                server.pops.undo_transfer(built.call_id)
            raise
        if principal.privileged:
            audit.acted_for(principal, name, built.agent_id, built.call_id, channel=channel.value)
        return {
            "seq": applied.seq,
            "events": [
                event_message(e)
                for e in applied.step.events
                if server.visibility.may_see(audience, e)
            ],
            **applied.view,
        }

    if command_id is None:
        return await once()
    return dict(await server.replies.once(principal.subject, command_id, once))


def audience_of(principal: Principal) -> Audience:
    """What this caller may see: an agent their own, a supervisor their teams', admin all."""
    if principal.role is Role.ADMIN:
        return Audience(everything=True)
    if principal.role is Role.SUPERVISOR:
        return Audience(teams=principal.teams, everything=not principal.teams)
    return Audience(agent_id=principal.agent_id)
