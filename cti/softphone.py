"""The softphone's vocabulary: one set of commands for REST and the agent's WebSocket.

``build(name, args, actor)`` turns a command name and its JSON arguments into
a core command and a guard. ``actor`` is the agent the caller's token acts for
(None for a supervisor or an admin, who name the agent in ``agent_id``). The
guard runs in the runtime, in the same step as the command, and refuses an
agent who acts on someone else's state or on a call that is not theirs: the
check and the change can't be separated by another command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from acd import commands as c
from acd.engine import Engine
from acd.errors import CommandRejected
from acd.ids import AgentId, CallId, QueueId
from acd.views import CallView
from cti.runtime import Guard


class BadCommand(ValueError):
    """The command's name or arguments are malformed (the client's mistake)."""


@dataclass(frozen=True, slots=True)
class Built:
    command: c.Command
    guard: Guard
    agent_id: AgentId | None  # the agent whose state the command changes, if one
    call_id: CallId | None


def _text(args: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = args.get(key)
    if value is None:
        if required:
            raise BadCommand(f"missing argument {key!r}")
        return None
    if not isinstance(value, str) or not value or len(value) > 200:
        raise BadCommand(f"argument {key!r} must be a non-empty string of at most 200 characters")
    return value


def _agent(args: Mapping[str, Any], actor: AgentId | None) -> AgentId:
    named = _text(args, "agent_id", required=actor is None)
    if actor is not None and named is not None and named != actor:
        raise CommandRejected("forbidden", f"agent {actor} cannot act for agent {named}")
    return actor if actor is not None else AgentId(str(named))


def _call(args: Mapping[str, Any]) -> CallId:
    return CallId(str(_text(args, "call_id")))


def _no_guard(engine: Engine) -> None:
    return None


def _involved(view: CallView | None, agent: AgentId) -> bool:
    if view is None:
        return True  # unknown call: let the engine say so
    return agent in (
        view.agent_id,
        view.offered_to,
        getattr(view, "consult_agent_id", None),
    )


def _owns_call(call_id: CallId, actor: AgentId | None) -> Guard:
    if actor is None:
        return _no_guard

    def guard(engine: Engine) -> None:
        if not _involved(engine.call(call_id), actor):
            raise CommandRejected("forbidden", f"call {call_id} is not agent {actor}'s call")

    return guard


def _agent_command(make: Callable[[AgentId, Mapping[str, Any]], c.Command]) -> Any:
    def build(args: Mapping[str, Any], actor: AgentId | None) -> Built:
        agent = _agent(args, actor)
        return Built(make(agent, args), _no_guard, agent, None)

    return build


def _offer_command(make: Callable[[AgentId, CallId], c.Command]) -> Any:
    def build(args: Mapping[str, Any], actor: AgentId | None) -> Built:
        agent = _agent(args, actor)
        call = _call(args)
        return Built(make(agent, call), _no_guard, agent, call)

    return build


def _call_command(make: Callable[[CallId, Mapping[str, Any]], c.Command]) -> Any:
    def build(args: Mapping[str, Any], actor: AgentId | None) -> Built:
        call = _call(args)
        return Built(make(call, args), _owns_call(call, actor), actor, call)

    return build


def _not_ready(agent: AgentId, args: Mapping[str, Any]) -> c.Command:
    reason = _text(args, "reason", required=False) or "unavailable"
    return c.AgentWentNotReady(agent_id=agent, reason=reason)


def _transfer(call: CallId, args: Mapping[str, Any]) -> c.Command:
    mode = args.get("mode", "blind")
    queue = _text(args, "queue_id", required=False)
    agent = _text(args, "agent_id", required=False)
    note = _text(args, "note", required=False)
    if (queue is None) == (agent is None):
        raise BadCommand("a transfer names exactly one of queue_id or agent_id")
    if mode == "blind":
        return c.CallTransferred(
            call_id=call,
            queue_id=None if queue is None else QueueId(queue),
            agent_id=None if agent is None else AgentId(agent),
            note=note,
        )
    if mode == "consult":
        if agent is None:
            raise BadCommand("a consultative transfer goes to an agent")
        return c.ConsultStarted(call_id=call, agent_id=AgentId(agent))
    raise BadCommand("mode must be 'blind' or 'consult'")


def _held(args: Mapping[str, Any], actor: AgentId | None) -> Built:
    """Only the call's main agent holds it (in a conference, the other agent can't)."""
    call = _call(args)
    return Built(c.CallHeld(call_id=call, agent_id=actor), _owns_call(call, actor), actor, call)


def _wrap_up(args: Mapping[str, Any], actor: AgentId | None) -> Built:
    agent = _agent(args, actor)
    resolved = args.get("resolved")
    if resolved is not None and not isinstance(resolved, bool):
        raise BadCommand("argument 'resolved' must be true or false")
    disposition = _text(args, "disposition", required=False)
    call = args.get("call_id")
    command = c.WrapUpFinished(agent_id=agent, disposition=disposition, resolved=resolved)

    def guard(engine: Engine) -> None:
        if call is None:
            return
        view = engine.agent(agent)
        if view is not None and view.call_id is not None and view.call_id != call:
            raise CommandRejected(
                "wrong_call", f"agent {agent} is wrapping up call {view.call_id}", view.state.value
            )

    return Built(command, guard, agent, None if call is None else CallId(str(call)))


COMMANDS: dict[str, Callable[[Mapping[str, Any], AgentId | None], Built]] = {
    "login": _agent_command(lambda a, _: c.AgentLoggedIn(agent_id=a)),
    "logout": _agent_command(lambda a, _: c.AgentLoggedOut(agent_id=a)),
    "ready": _agent_command(lambda a, _: c.AgentWentReady(agent_id=a)),
    "not_ready": _agent_command(_not_ready),
    "accept": _offer_command(lambda a, k: c.OfferAccepted(agent_id=a, call_id=k)),
    "reject": _offer_command(lambda a, k: c.OfferRejected(agent_id=a, call_id=k)),
    "hold": _held,
    "unhold": _call_command(lambda k, _: c.CallRetrieved(call_id=k)),
    "hangup": _call_command(lambda k, _: c.AgentHungUp(call_id=k)),
    "transfer": _call_command(_transfer),
    "consult": _call_command(
        lambda k, a: c.ConsultStarted(call_id=k, agent_id=AgentId(str(_text(a, "agent_id"))))
    ),
    "complete_transfer": _call_command(lambda k, _: c.TransferCompleted(call_id=k)),
    "cancel_consult": _call_command(lambda k, _: c.ConsultCancelled(call_id=k)),
    "conference": _call_command(lambda k, _: c.ConferenceStarted(call_id=k)),
    "leave_conference": _agent_command(lambda a, _: c.AgentLeftConference(agent_id=a)),
    "wrap_up": _wrap_up,
    # Callback tasks of desktop-only agents, who dial the number themselves.
    "callback_reached": _call_command(lambda k, _: c.CallbackAnswered(call_id=k)),
    "callback_failed": _call_command(
        lambda k, a: c.CallbackFailed(
            call_id=k, reason=_text(a, "reason", required=False) or "no_answer"
        )
    ),
}
"""Command names as the WebSocket sends them; REST paths use the same with dashes."""


def build(name: str, args: Any, actor: AgentId | None) -> Built:
    maker = COMMANDS.get(name)
    if maker is None:
        raise BadCommand(f"unknown command {name!r}; known: {', '.join(sorted(COMMANDS))}")
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        raise BadCommand("args must be an object")
    return maker(args, actor)
