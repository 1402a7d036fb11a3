"""A numeric-clock harness around the engine, for tests, examples and the benchmark.

``Centre`` keeps every event and action the engine produced, and offers
one-line helpers for the usual moves, so a test reads like what happens in
the centre: ``centre.at(5).call("c1", "sales")``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from acd.actions import Action, OfferCall
from acd.commands import (
    AgentConfigured,
    AgentHungUp,
    AgentLeftConference,
    AgentLoggedIn,
    AgentWentReady,
    CallArrived,
    CallerHungUp,
    CallHeld,
    CallRetrieved,
    CallTransferred,
    Command,
    ConferenceStarted,
    ConsultCancelled,
    ConsultStarted,
    OfferAccepted,
    OfferRejected,
    QueueConfigured,
    TransferCompleted,
    WrapUpFinished,
)
from acd.config import AgentConfig, QueueConfig
from acd.engine import Engine, Step
from acd.errors import CommandRejected
from acd.events import Event
from acd.ids import AgentId, CallId, Language, QueueId, Skill
from acd.views import AgentView, CallView


class Centre:
    def __init__(self) -> None:
        self.engine = Engine()
        self.now = 0.0
        self.events: list[Event] = []
        self.actions: list[Action] = []

    # -- time -------------------------------------------------------------

    def at(self, now: float) -> Centre:
        """Move the clock to ``now``, firing the engine's timers on the way."""
        self.now = now
        self._keep(self.engine.advance(now))
        return self

    def after(self, seconds: float) -> Centre:
        return self.at(self.now + seconds)

    # -- commands ----------------------------------------------------------

    def do(self, command: Command) -> Step:
        step = self.engine.handle(command, self.now)
        self._keep(step)
        return step

    def queue(self, queue_id: str, **config: Any) -> Centre:
        self.do(QueueConfigured(config=QueueConfig(id=QueueId(queue_id), **config)))
        return self

    def agent(
        self,
        agent_id: str,
        *,
        queues: Iterable[str],
        skills: Mapping[str, int] | None = None,
        languages: Mapping[str, int] | None = None,
        ready: bool = True,
    ) -> Centre:
        """Configure an agent and log them in (ready unless told otherwise)."""
        config = AgentConfig(
            id=AgentId(agent_id),
            skills={Skill(k): v for k, v in (skills or {}).items()},
            languages={Language(k): v for k, v in (languages or {}).items()},
            queues=frozenset(QueueId(q) for q in queues),
        )
        self.do(AgentConfigured(config=config))
        self.do(AgentLoggedIn(agent_id=config.id))
        if ready:
            self.do(AgentWentReady(agent_id=config.id))
        return self

    def call(self, call_id: str, queue_id: str, **fields: Any) -> Step:
        return self.do(CallArrived(call_id=CallId(call_id), queue_id=QueueId(queue_id), **fields))

    def accept(self, agent_id: str, call_id: str) -> Step:
        return self.do(OfferAccepted(agent_id=AgentId(agent_id), call_id=CallId(call_id)))

    def reject(self, agent_id: str, call_id: str) -> Step:
        return self.do(OfferRejected(agent_id=AgentId(agent_id), call_id=CallId(call_id)))

    def caller_hangs_up(self, call_id: str) -> Step:
        return self.do(CallerHungUp(call_id=CallId(call_id)))

    def agent_hangs_up(self, call_id: str) -> Step:
        return self.do(AgentHungUp(call_id=CallId(call_id)))

    def finish_wrap_up(self, agent_id: str, disposition: str | None = None) -> Step:
        return self.do(WrapUpFinished(agent_id=AgentId(agent_id), disposition=disposition))

    def hold(self, call_id: str) -> Step:
        return self.do(CallHeld(call_id=CallId(call_id)))

    def retrieve(self, call_id: str) -> Step:
        return self.do(CallRetrieved(call_id=CallId(call_id)))

    def transfer(
        self,
        call_id: str,
        *,
        queue: str | None = None,
        agent: str | None = None,
        note: str | None = None,
    ) -> Step:
        """Blind transfer to a queue or to one agent."""
        return self.do(
            CallTransferred(
                call_id=CallId(call_id),
                queue_id=None if queue is None else QueueId(queue),
                agent_id=None if agent is None else AgentId(agent),
                note=note,
            )
        )

    def consult(self, call_id: str, agent_id: str) -> Step:
        return self.do(ConsultStarted(call_id=CallId(call_id), agent_id=AgentId(agent_id)))

    def cancel_consult(self, call_id: str) -> Step:
        return self.do(ConsultCancelled(call_id=CallId(call_id)))

    def complete_transfer(self, call_id: str) -> Step:
        return self.do(TransferCompleted(call_id=CallId(call_id)))

    def conference(self, call_id: str) -> Step:
        return self.do(ConferenceStarted(call_id=CallId(call_id)))

    def leave_conference(self, agent_id: str) -> Step:
        return self.do(AgentLeftConference(agent_id=AgentId(agent_id)))

    # -- what happened ------------------------------------------------------

    def refused(self, command: Command) -> CommandRejected:
        """Send a command that must be refused, check that it changed nothing, return why."""
        before = self.snapshot()
        try:
            self.do(command)
        except CommandRejected as refusal:
            assert self.snapshot() == before, f"{command} was refused but changed state"
            return refusal
        raise AssertionError(f"{command} was accepted")

    def snapshot(self) -> tuple[object, ...]:
        """Everything a refused command must leave as it was."""
        engine = self.engine
        return (
            [engine.agent(a) for a in engine.agent_ids()],
            [engine.call(c) for c in engine.call_ids()],
            [engine.queue_stats(q) for q in engine.queue_ids()],
            engine.next_deadline(),
            len(self.events),
            len(self.actions),
        )

    def offers(self) -> list[OfferCall]:
        return [a for a in self.actions if isinstance(a, OfferCall)]

    def offered_to(self, call_id: str) -> list[str]:
        """The agents ``call_id`` has been offered to, in order."""
        return [a.agent_id for a in self.offers() if a.call_id == call_id]

    def actions_of(self, kind: type) -> list[Any]:
        return [a for a in self.actions if isinstance(a, kind)]

    def events_of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def agent_view(self, agent_id: str) -> AgentView:
        view = self.engine.agent(AgentId(agent_id))
        assert view is not None, f"no agent {agent_id}"
        return view

    def call_view(self, call_id: str) -> CallView | None:
        return self.engine.call(CallId(call_id))

    def _keep(self, step: Step) -> None:
        self.events.extend(step.events)
        self.actions.extend(step.actions)
