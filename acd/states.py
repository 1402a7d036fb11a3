"""The state machines of agents, calls and reservations, as data.

Each machine is an enum of states and a transition table from
``(state, trigger)`` to the next state. The engine never assigns a state
directly: it asks the table, so a transition the table lacks is a bug in the
engine and fails loudly (``InvalidTransition``), while a command that is wrong
for the current state is refused earlier, as ``CommandRejected``.

A consultation (one agent consulting another about a call, ``acd.transfers``)
is part of its call, not an entity with events of its own: each of its moves
comes with the reservation, agent or call event that reports it (the offer's
reservation, the consulted agent's answer or leg end, the call's conference,
hold or hand-over), so it can be rebuilt from the events alone.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

K = TypeVar("K", bound=Enum)


class InvalidTransition(AssertionError):
    """The engine tried a transition its table does not allow: a bug, never user input."""


class _Enum(Enum):
    """An enum hashed by identity: its members are singletons, and Enum's own
    ``__hash__`` is Python code run on every transition-table look-up."""

    __hash__ = object.__hash__


class AgentStatus(_Enum):
    """What the agent chose: the supervisor-visible presence."""

    LOGGED_OUT = "logged_out"
    READY = "ready"
    NOT_READY = "not_ready"


class AgentState(_Enum):
    """What the system is doing with the agent, independent of their status."""

    IDLE = "idle"
    RESERVED = "reserved"  # an offer is ringing
    TALKING = "talking"
    HELD = "held"
    WRAP_UP = "wrap_up"
    NOT_RESPONDING = "not_responding"  # the device is unreachable


class CallState(_Enum):
    ARRIVED = "arrived"
    QUEUED = "queued"
    OFFERED = "offered"
    CONNECTED = "connected"
    HELD = "held"
    ENDED = "ended"
    # A callback task: the caller asked to be called back (from the queue or the IVR
    # menu) and is no longer on the line; it keeps the place in the queue it had.
    CALLBACK_QUEUED = "callback_queued"
    CALLBACK_OFFERED = "callback_offered"  # offered to an agent, with the number to call
    DIALING = "dialing"  # the agent took it; the customer is being called


class Outcome(_Enum):
    """How a call left the centre: exactly one per call."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"
    SHORT_ABANDONED = "short_abandoned"  # hung up within the queue's short-abandon threshold
    OVERFLOWED = "overflowed"  # sent to another site
    BLOCKED = "blocked"  # refused before reaching a queue
    SELF_SERVED = "self_served"  # left the queue for self-service or a callback
    CALLBACK_FAILED = "callback_failed"  # a callback task whose customer was not reached
    INTERRUPTED = "interrupted"  # live when the previous process died (Engine.close_interrupted)


class ConsultState(_Enum):
    """Where the consultation of a second agent about a call stands."""

    RINGING = "ringing"  # offered to the consulted agent; the caller is on hold
    TALKING = "talking"  # the two agents talk; the caller is on hold
    CONFERENCED = "conferenced"  # the caller and both agents talk
    ENDED = "ended"


class ReservationState(_Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class Trigger(_Enum):
    """What can move an agent, call or reservation."""

    LOGIN = "login"
    LOGOUT = "logout"
    READY = "ready"
    NOT_READY = "not_ready"
    OFFER = "offer"
    ACCEPT = "accept"
    REJECT = "reject"
    TIME_OUT = "time_out"
    CANCEL = "cancel"
    HOLD = "hold"
    RETRIEVE = "retrieve"
    END = "end"
    END_WITHOUT_WRAP_UP = "end_without_wrap_up"
    FINISH_WRAP_UP = "finish_wrap_up"
    DEVICE_LOST = "device_lost"
    DEVICE_RESTORED = "device_restored"
    ADMIT = "admit"
    REQUEUE = "requeue"
    LEAVE = "leave"  # abandon, overflow, block, self-service; leaving a conference
    TRANSFER = "transfer"  # blind transfer: the caller goes back to a queue
    CONFERENCE = "conference"  # the caller joins the two agents of a consultation
    HAND_OVER = "hand_over"  # the consulted agent takes the caller over
    INTERRUPT = "interrupt"  # closed after a restart: the process it lived in died
    CALLBACK = "callback"  # a waiting caller, or an IVR booking, became a callback task
    REACH = "reach"  # the customer answered the call back
    RESTORE = "restore"  # a callback task waiting when the previous process died, put back


T = Trigger
A = AgentState
AGENT_STATE_TRANSITIONS: dict[tuple[AgentState, Trigger], AgentState] = {
    (A.IDLE, T.OFFER): A.RESERVED,
    (A.RESERVED, T.ACCEPT): A.TALKING,
    (A.RESERVED, T.REJECT): A.IDLE,
    (A.RESERVED, T.TIME_OUT): A.IDLE,
    (A.RESERVED, T.CANCEL): A.IDLE,
    (A.TALKING, T.HOLD): A.HELD,
    (A.HELD, T.RETRIEVE): A.TALKING,
    (A.TALKING, T.END): A.WRAP_UP,
    (A.HELD, T.END): A.WRAP_UP,
    (A.TALKING, T.END_WITHOUT_WRAP_UP): A.IDLE,
    (A.HELD, T.END_WITHOUT_WRAP_UP): A.IDLE,
    (A.WRAP_UP, T.FINISH_WRAP_UP): A.IDLE,
    (A.IDLE, T.DEVICE_LOST): A.NOT_RESPONDING,
    (A.NOT_RESPONDING, T.DEVICE_RESTORED): A.IDLE,
}

S = AgentStatus
AGENT_STATUS_TRANSITIONS: dict[tuple[AgentStatus, Trigger], AgentStatus] = {
    (S.LOGGED_OUT, T.LOGIN): S.NOT_READY,
    (S.NOT_READY, T.READY): S.READY,
    (S.READY, T.READY): S.READY,
    (S.READY, T.NOT_READY): S.NOT_READY,
    (S.NOT_READY, T.NOT_READY): S.NOT_READY,  # a new reason code
    (S.READY, T.LOGOUT): S.LOGGED_OUT,
    (S.NOT_READY, T.LOGOUT): S.LOGGED_OUT,
}

C = CallState
CALL_TRANSITIONS: dict[tuple[CallState, Trigger], CallState] = {
    (C.ARRIVED, T.ADMIT): C.QUEUED,
    (C.ARRIVED, T.LEAVE): C.ENDED,
    (C.QUEUED, T.REQUEUE): C.QUEUED,  # moved to another queue, keeping its place in time
    (C.QUEUED, T.OFFER): C.OFFERED,
    (C.QUEUED, T.LEAVE): C.ENDED,
    (C.OFFERED, T.REJECT): C.QUEUED,
    (C.OFFERED, T.TIME_OUT): C.QUEUED,
    (C.OFFERED, T.ACCEPT): C.CONNECTED,
    (C.OFFERED, T.LEAVE): C.ENDED,
    (C.CONNECTED, T.HOLD): C.HELD,
    (C.HELD, T.RETRIEVE): C.CONNECTED,
    (C.CONNECTED, T.END): C.ENDED,
    (C.HELD, T.END): C.ENDED,
    (C.CONNECTED, T.TRANSFER): C.QUEUED,  # a fresh wait, in the target queue
    (C.HELD, T.TRANSFER): C.QUEUED,
    (C.HELD, T.CONFERENCE): C.CONNECTED,  # with both agents
    (C.HELD, T.HAND_OVER): C.CONNECTED,  # warm transfer: to the consulted agent
    (C.CONNECTED, T.HAND_OVER): C.CONNECTED,  # the main agent left a conference
    (C.ARRIVED, T.INTERRUPT): C.ENDED,
    (C.QUEUED, T.INTERRUPT): C.ENDED,
    (C.OFFERED, T.INTERRUPT): C.ENDED,
    (C.CONNECTED, T.INTERRUPT): C.ENDED,
    (C.HELD, T.INTERRUPT): C.ENDED,
    # Callbacks: the task keeps the caller's place (same entry in the waiting lists).
    (C.ARRIVED, T.CALLBACK): C.CALLBACK_QUEUED,  # booked from the IVR menu
    (C.QUEUED, T.CALLBACK): C.CALLBACK_QUEUED,
    (C.OFFERED, T.CALLBACK): C.CALLBACK_QUEUED,  # its offer to a caller was cancelled first
    (C.CALLBACK_QUEUED, T.OFFER): C.CALLBACK_OFFERED,
    (C.CALLBACK_OFFERED, T.REJECT): C.CALLBACK_QUEUED,
    (C.CALLBACK_OFFERED, T.TIME_OUT): C.CALLBACK_QUEUED,
    (C.CALLBACK_OFFERED, T.ACCEPT): C.DIALING,
    (C.DIALING, T.REACH): C.CONNECTED,  # from then on, a call like any other
    (C.DIALING, T.LEAVE): C.ENDED,  # not reached (no answer, busy, the agent gave up)
    (C.CALLBACK_QUEUED, T.INTERRUPT): C.ENDED,
    (C.CALLBACK_OFFERED, T.INTERRUPT): C.ENDED,
    (C.DIALING, T.INTERRUPT): C.ENDED,
    (C.CALLBACK_QUEUED, T.RESTORE): C.CALLBACK_QUEUED,  # nobody's line was lost with it
    (C.CALLBACK_OFFERED, T.RESTORE): C.CALLBACK_QUEUED,  # (its offer died with the process)
}

R = ReservationState
RESERVATION_TRANSITIONS: dict[tuple[ReservationState, Trigger], ReservationState] = {
    (R.PENDING, T.ACCEPT): R.ACCEPTED,
    (R.PENDING, T.REJECT): R.REJECTED,
    (R.PENDING, T.TIME_OUT): R.TIMED_OUT,
    (R.PENDING, T.CANCEL): R.CANCELLED,
}

CS = ConsultState
CONSULT_TRANSITIONS: dict[tuple[ConsultState, Trigger], ConsultState] = {
    (CS.RINGING, T.ACCEPT): CS.TALKING,
    (CS.RINGING, T.REJECT): CS.ENDED,  # (or the consulted agent's phone was lost)
    (CS.RINGING, T.TIME_OUT): CS.ENDED,
    (CS.RINGING, T.CANCEL): CS.ENDED,  # by the consulting agent, or the call ended
    (CS.TALKING, T.CONFERENCE): CS.CONFERENCED,
    (CS.TALKING, T.HAND_OVER): CS.ENDED,  # transfer completed
    (CS.TALKING, T.CANCEL): CS.ENDED,
    (CS.TALKING, T.END): CS.ENDED,  # the call ended
    (CS.CONFERENCED, T.HOLD): CS.TALKING,  # the main agent put the caller on hold
    (CS.CONFERENCED, T.HAND_OVER): CS.ENDED,  # the main agent left
    (CS.CONFERENCED, T.LEAVE): CS.ENDED,  # the consulted agent left
    (CS.CONFERENCED, T.END): CS.ENDED,
}
del T, A, S, C, R, CS


def next_state(table: dict[tuple[K, Trigger], K], state: K, trigger: Trigger) -> K:
    """The state ``trigger`` leads to from ``state``, or ``InvalidTransition``."""
    try:
        return table[(state, trigger)]
    except KeyError:
        raise InvalidTransition(f"{trigger.value} is not allowed in {state.value}") from None
