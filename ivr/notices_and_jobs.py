"""What ``ivr.calls`` and the core say to each other: its notices, and the jobs it takes.

A ``Notice`` is what the SIP side tells the core (the server executes it, or
opens the call for a ``QueueEntry``); a ``Job`` is what the server hands
``Calls.act``: the core's actions, and the changes of a call's state the SIP
side must follow (``CallEnded``, ``CallOnHold``, ``CallRequeued``,
``CallKept``, ``TransferRefused``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from acd.actions import Action
from acd.commands import (
    AgentDeviceLost,
    AgentHungUp,
    CallbackAnswered,
    CallbackFailed,
    CallbackRequested,
    CallerHungUp,
    CallHeld,
    CallRetrieved,
    CallTransferred,
    OfferAccepted,
    OfferRejected,
)
from acd.ids import CallId, Language, QueueId, Skill
from ivr.agent_phones import PhoneUnanswered


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntry:
    """A caller the IVR (or the number dialled) hands to a queue: for ``CallArrived``."""

    call_id: CallId
    queue_id: QueueId
    ani: str
    dnis: str
    language: Language | None
    skills: Mapping[Skill, int] = field(default_factory=dict)
    priority: int | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    # Set: a callback booked in the IVR menu; the caller is not handed over, the
    # queue gets a callback task to this number.
    callback_number: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded:
    """The core ended the call: hang up what is left of it."""

    call_id: CallId


Notice = (
    QueueEntry
    | OfferAccepted
    | OfferRejected
    | CallerHungUp
    | AgentHungUp
    | AgentDeviceLost
    | CallHeld
    | CallRetrieved
    | CallbackRequested
    | CallbackAnswered
    | CallbackFailed
    | CallTransferred
    | PhoneUnanswered
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOnHold:
    """The core put the call on hold, or took it off (whoever asked): the caller's media follows."""

    call_id: CallId
    held: bool  # False: taken off hold, the caller and the agent are bridged again


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRequeued:
    """The core sent a talking call back to a queue (a blind transfer): its agent's leg goes."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class CallKept:
    """The core took a new call into a queue: a caller still ringing (redirect mode) is answered."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRefused:
    """The core refused the transfer a phone asked for by REFER."""

    call_id: CallId
    error_id: str


Job = Action | CallEnded | CallOnHold | CallRequeued | CallKept | TransferRefused
