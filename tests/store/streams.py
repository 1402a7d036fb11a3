"""Event streams for the store tests, built from the core's real event classes."""

from __future__ import annotations

from itertools import count

from acd.events import AgentStateChanged, CallStateChanged, Event
from acd.ids import AgentId, CallId, CustomerId, QueueId
from acd.states import AgentState, AgentStatus, CallState, Outcome
from cti.context import CallOpened

C = CallState
A = AgentState


class Stream:
    """Numbers events as the core does (seq one above the last) and keeps them in order."""

    def __init__(self, first_seq: int = 1) -> None:
        self._seq = count(first_seq)
        self.items: list[Event | CallOpened] = []

    @property
    def events(self) -> list[Event]:
        return [i for i in self.items if not isinstance(i, CallOpened)]

    def opened(
        self,
        call: str,
        at: float,
        queue: str = "q1",
        *,
        ani: str = "+15550100",
        dnis: str = "+18005550199",
        customer: str | None = None,
        data: dict[str, str] | None = None,
    ) -> CallOpened:
        note = CallOpened(
            call_id=CallId(call),
            queue_id=QueueId(queue),
            at=at,
            ani=ani,
            dnis=dnis,
            customer_id=None if customer is None else CustomerId(customer),
            data=data or {},
        )
        self.items.append(note)
        return note

    def call(
        self,
        call: str,
        at: float,
        from_state: CallState | None,
        to_state: CallState,
        *,
        queue: str = "q1",
        agent: str | None = None,
        outcome: Outcome | None = None,
        reason: str | None = None,
    ) -> CallStateChanged:
        event = CallStateChanged(
            seq=next(self._seq),
            at=at,
            call_id=CallId(call),
            queue_id=QueueId(queue),
            from_state=from_state,
            to_state=to_state,
            outcome=outcome,
            agent_id=None if agent is None else AgentId(agent),
            reason=reason,
        )
        self.items.append(event)
        return event

    def agent(
        self,
        agent: str,
        at: float,
        from_state: AgentState,
        to_state: AgentState,
        *,
        call: str | None = None,
        disposition: str | None = None,
        resolved: bool | None = None,
    ) -> AgentStateChanged:
        event = AgentStateChanged(
            seq=next(self._seq),
            at=at,
            agent_id=AgentId(agent),
            from_status=AgentStatus.READY,
            to_status=AgentStatus.READY,
            from_state=from_state,
            to_state=to_state,
            call_id=None if call is None else CallId(call),
            disposition=disposition,
            resolved=resolved,
        )
        self.items.append(event)
        return event

    def answered_call(
        self,
        call: str,
        at: float,
        agent: str = "a1",
        *,
        queue: str = "q1",
        customer: str | None = None,
        talk: float = 60.0,
        wrap_up: float | None = 10.0,
        disposition: str | None = "sale",
    ) -> None:
        """A whole call: arrives, queues, rings ``agent``, is answered, hangs up, wraps up."""
        self.opened(call, at, queue, customer=customer)
        self.call(call, at, None, C.ARRIVED, queue=queue)
        self.call(call, at, C.ARRIVED, C.QUEUED, queue=queue)
        self.call(call, at + 2, C.QUEUED, C.OFFERED, queue=queue, agent=agent, reason="r1")
        self.agent(agent, at + 2, A.IDLE, A.RESERVED, call=call)
        self.call(call, at + 5, C.OFFERED, C.CONNECTED, queue=queue, agent=agent)
        self.agent(agent, at + 5, A.RESERVED, A.TALKING, call=call)
        end = at + 5 + talk
        self.call(
            call,
            end,
            C.CONNECTED,
            C.ENDED,
            queue=queue,
            agent=agent,
            outcome=Outcome.ANSWERED,
            reason="caller_hung_up",
        )
        if wrap_up is None:
            self.agent(agent, end, A.TALKING, A.IDLE, call=call)
            return
        self.agent(agent, end, A.TALKING, A.WRAP_UP, call=call)
        self.agent(
            agent,
            end + wrap_up,
            A.WRAP_UP,
            A.IDLE,
            call=call,
            disposition=disposition,
            resolved=True if disposition else None,
        )
