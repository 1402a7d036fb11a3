"""Outputs for storage, metrics and CTI: one numbered event per state change.

Every change of a call, agent or reservation emits exactly one event, with a
sequence number one higher than the previous event's, so a consumer that has
seen ``seq`` N knows it has missed nothing before N.
"""

from __future__ import annotations

from dataclasses import dataclass

from acd.ids import AgentId, CallId, CustomerId, QueueId, ReservationId
from acd.states import AgentState, AgentStatus, CallState, Outcome, ReservationState


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStateChanged:
    """A call moved between states (or between queues, with ``reason`` saying why)."""

    seq: int
    at: float
    call_id: CallId
    queue_id: QueueId
    from_state: CallState | None  # None when the call is new
    to_state: CallState
    outcome: Outcome | None = None  # set once, on the transition to ENDED
    agent_id: AgentId | None = None
    reason: str | None = None
    customer_id: CustomerId | None = None  # set on the call's first event (from_state None)
    callback_number: str | None = None  # set when the call becomes a callback task


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentStateChanged:
    """An agent's status, system state, or both, changed in one step."""

    seq: int
    at: float
    agent_id: AgentId
    from_status: AgentStatus | None  # None when the agent is new
    to_status: AgentStatus
    from_state: AgentState | None
    to_state: AgentState
    reason: str | None = None  # the not-ready reason code, or why the change happened
    call_id: CallId | None = None
    disposition: str | None = None
    resolved: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReservationStateChanged:
    """An offer of one call to one agent was made, accepted, rejected, timed out or cancelled."""

    seq: int
    at: float
    reservation_id: ReservationId
    call_id: CallId
    agent_id: AgentId
    from_state: ReservationState | None
    to_state: ReservationState
    callback_number: str | None = None  # an offer of a callback task: the number to call


Event = CallStateChanged | AgentStateChanged | ReservationStateChanged
