"""Read-only snapshots of the engine's state, for adapters, tests and the API."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from acd.ids import AgentId, CallId, CustomerId, QueueId, ReservationId
from acd.states import AgentState, AgentStatus, CallState, ConsultState

if TYPE_CHECKING:
    from acd.agents import Agent
    from acd.calls import Call
    from acd.queues import QueueRuntime


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentView:
    """An agent's status, state and what they are busy with."""

    id: AgentId
    status: AgentStatus
    state: AgentState
    reason: str | None
    pending_status: AgentStatus | None
    call_id: CallId | None  # talking, held, or wrapping up (a call may have moved on since)
    reservation_id: ReservationId | None
    offered_call_id: CallId | None  # ringing: a call, or a consultation about it
    misses: int
    calls_answered: int
    # The call another agent is consulting this one about: ringing (then it is
    # also ``offered_call_id``), talking or in conference (also ``call_id``).
    consult_call_id: CallId | None

    @classmethod
    def of(cls, agent: Agent) -> AgentView:
        res = agent.reservation
        return cls(
            id=agent.id,
            status=agent.status,
            state=agent.state,
            reason=agent.reason,
            pending_status=None if agent.pending is None else agent.pending[0],
            call_id=None if agent.call is None else agent.call.id,
            reservation_id=None if res is None else res.id,
            offered_call_id=None if res is None else res.call.id,
            misses=agent.misses,
            calls_answered=agent.calls_answered,
            consult_call_id=None if agent.consult is None else agent.consult.call.id,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CallView:
    """A call still in the centre."""

    id: CallId
    queue_id: QueueId
    state: CallState
    priority: int
    arrived_at: float
    enqueued_at: float | None
    agent_id: AgentId | None  # connected or held; in a conference, the main agent
    offered_to: AgentId | None
    waiting_for: AgentId | None  # the preferred agent during an affinity window
    relax_level: int
    position: int | None  # 1 is next, among calls with the same requirements
    customer_id: CustomerId | None
    ani: str
    dnis: str
    # The agent that ``agent_id`` is consulting about this call, and how far
    # that has gone (ringing, talking, conferenced); None without a consultation.
    consult_agent_id: AgentId | None
    consult_state: ConsultState | None
    transfer_note: str | None  # the note of its latest blind transfer
    callback_number: str | None  # a callback task (or a call that was one): the number to call

    @classmethod
    def of(cls, call: Call) -> CallView:
        res = call.reservation
        consult = call.consult
        position = None
        if call.entry is not None and call.affinity_agent is None and call.profile is not None:
            position = call.profile.position(call.entry) + 1
        return cls(
            id=call.id,
            queue_id=call.queue.id,
            state=call.state,
            priority=call.priority,
            arrived_at=call.arrived_at,
            enqueued_at=call.enqueued_at,
            agent_id=None if call.agent is None else call.agent.id,
            offered_to=None if res is None else res.agent.id,
            waiting_for=None if call.affinity_agent is None else call.affinity_agent.id,
            relax_level=call.relax_level,
            position=position,
            customer_id=call.customer_id,
            ani=call.ani,
            dnis=call.dnis,
            consult_agent_id=None if consult is None else consult.agent.id,
            consult_state=None if consult is None else consult.state,
            transfer_note=call.transfer_note,
            callback_number=call.callback_number,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    """Live figures of one queue."""

    queue_id: QueueId
    size: int  # waiting or ringing
    waiting: int  # callers waiting (not ringing)
    callbacks: int  # callback tasks waiting (not offered)
    oldest_enqueued_at: float | None
    staffed: int  # logged-in members
    ready: int
    available: int
    aht_seconds: float | None

    @classmethod
    def of(cls, queue: QueueRuntime, calls: Iterable[Call]) -> QueueStats:
        mine = []
        callbacks = 0
        for call in calls:
            if call.queue is queue:
                if call.state is CallState.QUEUED:
                    mine.append(call)
                elif call.state is CallState.CALLBACK_QUEUED:
                    callbacks += 1
        members = queue.members
        return cls(
            queue_id=queue.id,
            size=queue.size,
            waiting=len(mine),
            callbacks=callbacks,
            oldest_enqueued_at=min((c.enqueued_at or 0.0 for c in mine), default=None),
            staffed=sum(1 for a in members if a.logged_in),
            ready=sum(1 for a in members if a.status is AgentStatus.READY),
            available=sum(1 for a in members if a.available),
            aht_seconds=queue.aht.mean,
        )
