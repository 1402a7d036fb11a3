"""Inputs to the engine: facts that happened outside it, named in the past tense."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from acd.config import AgentConfig, QueueConfig
from acd.ids import AgentId, CallId, CustomerId, Language, QueueId, Skill

_NO_DATA: Mapping[str, str] = MappingProxyType({})
_NO_SKILLS: Mapping[Skill, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfigured:
    """A queue was created or its configuration replaced."""

    config: QueueConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfigured:
    """An agent was created or their skills, languages, teams or queues replaced."""

    config: AgentConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class DisasterModeChanged:
    """Disaster mode was switched: while active, every new call goes to ``site``."""

    active: bool
    site: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLoggedIn:
    """The agent logged in (not ready until they say otherwise)."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLoggedOut:
    """The agent asked to log out (applied when their current call is done)."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentWentReady:
    """The agent made themselves available for calls."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentWentNotReady:
    """The agent made themselves unavailable, with a reason code (applied after the call)."""

    agent_id: AgentId
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDeviceLost:
    """The agent's phone stopped answering (registration lost, socket closed)."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDeviceRestored:
    """The agent's phone is reachable again."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class CallArrived:
    """A call reached the centre for a queue."""

    call_id: CallId
    queue_id: QueueId
    ani: str = ""
    dnis: str = ""
    language: Language | None = None  # None: the queue's language
    skills: Mapping[Skill, int] = field(default_factory=lambda: _NO_SKILLS)  # on top of the queue's
    priority: int | None = None  # None: the queue's priority
    customer_id: CustomerId | None = None
    dedicated_agent: AgentId | None = None  # the customer's one-to-one representative (CRM)
    data: Mapping[str, str] = field(default_factory=lambda: _NO_DATA)
    # Set: nobody is on the line; a callback to this number was booked (in the IVR
    # menu) and enters the queue as a callback task.
    callback_number: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferAccepted:
    """The agent answered the call offered to them."""

    agent_id: AgentId
    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferRejected:
    """The agent declined the call offered to them."""

    agent_id: AgentId
    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class CallHeld:
    """The call's agent put the caller on hold (``agent_id``, when given, must be that agent)."""

    call_id: CallId
    agent_id: AgentId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRetrieved:
    """The agent took the caller off hold."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerHungUp:
    """The caller hung up, wherever the call was."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentHungUp:
    """The agent ended a connected call."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSelfServed:
    """A waiting caller left the queue for self-service or a callback."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRequested:
    """A waiting caller asked to be called back at ``number`` and left the line; the
    request keeps the call's place in the queue."""

    call_id: CallId
    number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackAnswered:
    """The customer answered the call back placed for the agent who took the task."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackFailed:
    """The call back did not reach the customer (``reason``: no_answer, busy, unreachable,
    agent_gave_up...): the task ends."""

    call_id: CallId
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred:
    """The call's agent sent the caller, unannounced, to a queue or to one agent."""

    call_id: CallId
    queue_id: QueueId | None = None  # exactly one of queue_id and agent_id
    agent_id: AgentId | None = None
    note: str | None = None  # for whoever takes the call next


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsultStarted:
    """The call's agent put the caller on hold to consult ``agent_id``."""

    call_id: CallId
    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsultCancelled:
    """The call's agent gave up the consultation (ringing or talking) and keeps the caller."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferCompleted:
    """The call's agent handed the caller over to the agent they consulted, and left."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class ConferenceStarted:
    """The call's agent brought the caller into their talk with the agent they consulted."""

    call_id: CallId


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLeftConference:
    """One of the two agents of a conference left it; the other stays with the caller."""

    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class WrapUpFinished:
    """The agent finished after-call work with a disposition code."""

    agent_id: AgentId
    disposition: str | None = None
    resolved: bool | None = None


Command = (
    QueueConfigured
    | AgentConfigured
    | DisasterModeChanged
    | AgentLoggedIn
    | AgentLoggedOut
    | AgentWentReady
    | AgentWentNotReady
    | AgentDeviceLost
    | AgentDeviceRestored
    | CallArrived
    | OfferAccepted
    | OfferRejected
    | CallHeld
    | CallRetrieved
    | CallerHungUp
    | AgentHungUp
    | CallSelfServed
    | CallbackRequested
    | CallbackAnswered
    | CallbackFailed
    | CallTransferred
    | ConsultStarted
    | ConsultCancelled
    | TransferCompleted
    | ConferenceStarted
    | AgentLeftConference
    | WrapUpFinished
)
