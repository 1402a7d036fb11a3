"""The API's request and response bodies, and their conversion to the core's configuration.

Queue and agent bodies are the same in the configuration file and over REST,
so a configuration can be moved from one to the other as it is. Unknown
fields are refused (a typo never goes unnoticed).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from acd.config import (
    AffinityMode,
    AgentConfig,
    OverflowCondition,
    OverflowRule,
    QueueConfig,
    RelaxStep,
    Strategy,
    Target,
    WhenUnstaffed,
)
from acd.ids import AgentId, Language, QueueId, Skill

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@:+-]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Level = Annotated[int, Field(ge=1, le=10)]
Seconds = Annotated[float, Field(ge=0, le=10_000_000)]
Text = Annotated[str, StringConstraints(max_length=2000)]
Short = Annotated[str, StringConstraints(max_length=200)]
CallbackNumber = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{3,20}$")]
SipUri = Annotated[str, StringConstraints(min_length=5, max_length=500, pattern=r"^sips?:\S+$")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetBody(Body):
    queue: Id | None = None
    site: SipUri | None = None


class RelaxStepBody(Body):
    after_seconds: Annotated[float, Field(gt=0, le=10_000_000)]
    lower_levels_by: Annotated[int, Field(ge=0, le=9)] = 0
    any_language: bool = False


class OverflowRuleBody(Body):
    when: OverflowCondition
    seconds: Seconds
    target: TargetBody


class QueueBody(Body):
    """A queue's whole configuration; everything but ``id`` has the engine's default."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "billing",
                    "skills": {"billing": 3},
                    "language": "en",
                    "sl_seconds": 20,
                    "strategy": "longest_idle",
                    "affinity": "last_agent",
                    "wrap_up_seconds": 30,
                    "overflow": [
                        {
                            "when": "wait_over",
                            "seconds": 300,
                            "target": {"site": "sip:backup@b.example"},
                        }
                    ],
                }
            ]
        },
    )

    id: Id
    skills: dict[Name, Level] = {}
    language: Name | None = None
    language_level: Level = 1
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    weight: Annotated[int, Field(ge=-1000, le=1000)] = 0
    sl_seconds: Seconds = 20.0
    sl_target: Annotated[float, Field(ge=0, le=1)] = 0.8
    max_size: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    when_unstaffed: WhenUnstaffed = WhenUnstaffed.QUEUE
    when_full: TargetBody | None = None
    strategy: Strategy = Strategy.LONGEST_IDLE
    affinity: AffinityMode = AffinityMode.OFF
    affinity_window_seconds: Seconds = 0.0
    relaxation: Annotated[list[RelaxStepBody], Field(max_length=20)] = []
    overflow: Annotated[list[OverflowRuleBody], Field(max_length=20)] = []
    wrap_up_seconds: Seconds = 0.0
    ring_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 15.0
    max_misses: Annotated[int, Field(ge=1, le=100)] = 3
    announce_every_seconds: Annotated[float, Field(gt=0, le=3600)] | None = 30.0
    callback_offer_over_seconds: Seconds | None = None
    short_abandon_seconds: Seconds = 20.0

    def to_config(self) -> QueueConfig:
        """The core's configuration; raises ValueError where the core refuses it."""
        return QueueConfig(
            id=QueueId(self.id),
            skills={Skill(k): v for k, v in self.skills.items()},
            language=None if self.language is None else Language(self.language),
            language_level=self.language_level,
            priority=self.priority,
            weight=self.weight,
            sl_seconds=self.sl_seconds,
            sl_target=self.sl_target,
            max_size=self.max_size,
            when_unstaffed=self.when_unstaffed,
            when_full=None if self.when_full is None else _target(self.when_full),
            strategy=self.strategy,
            affinity=self.affinity,
            affinity_window_seconds=self.affinity_window_seconds,
            relaxation=tuple(
                RelaxStep(
                    after_seconds=s.after_seconds,
                    lower_levels_by=s.lower_levels_by,
                    any_language=s.any_language,
                )
                for s in self.relaxation
            ),
            overflow=tuple(
                OverflowRule(when=r.when, seconds=r.seconds, target=_target(r.target))
                for r in self.overflow
            ),
            wrap_up_seconds=self.wrap_up_seconds,
            ring_timeout_seconds=self.ring_timeout_seconds,
            max_misses=self.max_misses,
            announce_every_seconds=self.announce_every_seconds,
            callback_offer_over_seconds=self.callback_offer_over_seconds,
            short_abandon_seconds=self.short_abandon_seconds,
        )


def _target(body: TargetBody) -> Target:
    return Target(
        queue=None if body.queue is None else QueueId(body.queue),
        site=body.site,
    )


class AgentBody(Body):
    """An agent: who they are for routing, and a display name."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "alice",
                    "name": "Alice Martin",
                    "skills": {"billing": 7},
                    "languages": {"en": 9, "fr": 6},
                    "teams": ["blue"],
                    "queues": ["billing"],
                }
            ]
        },
    )

    id: Id
    name: Short = ""
    skills: dict[Name, Level] = {}
    languages: dict[Name, Level] = {}
    teams: Annotated[list[Name], Field(max_length=50)] = []
    queues: Annotated[list[Id], Field(max_length=500)] = []

    def to_config(self) -> AgentConfig:
        return AgentConfig(
            id=AgentId(self.id),
            skills={Skill(k): v for k, v in self.skills.items()},
            languages={Language(k): v for k, v in self.languages.items()},
            teams=frozenset(self.teams),
            queues=frozenset(QueueId(q) for q in self.queues),
        )


class AgentPatch(Body):
    """Change some of an agent's skills, languages, teams, queues or name."""

    name: Short | None = None
    skills: dict[Name, Level] | None = None
    languages: dict[Name, Level] | None = None
    teams: Annotated[list[Name], Field(max_length=50)] | None = None
    queues: Annotated[list[Id], Field(max_length=500)] | None = None


class CallCreate(Body):
    """A call injected by an integration that is not SIP."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "ani": "+33612345678",
                    "dnis": "100",
                    "queue": "billing",
                    "language": "fr",
                    "priority": 5,
                    "data": {"account": "123456"},
                }
            ]
        },
    )

    queue: Id
    ani: Short = ""
    dnis: Short = ""
    language: Name | None = None
    skills: dict[Name, Level] = {}
    priority: Annotated[int, Field(ge=-1000, le=1000)] | None = None
    customer_id: Id | None = None
    data: Annotated[dict[Name, Short], Field(max_length=50)] = {}
    # Set: nobody is on the line; book a callback task to this number in ``queue``.
    callback_number: CallbackNumber | None = None


class CallbackBody(Body):
    """A waiting caller asks to be called back: the request keeps their place."""

    model_config = ConfigDict(extra="forbid")

    number: CallbackNumber


class SipCredentials(Body):
    """An agent's phone credentials for the registrar (digest authentication)."""

    username: Annotated[
        str,
        StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._~!$&'()*+,;=-]+$"),
    ] = Field(examples=["alice"])
    password: Annotated[str, StringConstraints(min_length=8, max_length=128)] = Field(
        examples=["correct horse battery"]
    )


class NotReadyBody(Body):
    reason: Name = "unavailable"


class OfferBody(Body):
    agent_id: Id | None = Field(default=None, description="for a supervisor or admin")


class TransferMode(Enum):
    BLIND = "blind"
    CONSULT = "consult"


class TransferBody(Body):
    """Send a connected call to a queue or an agent, blind or after consulting them."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"queue_id": "tech", "note": "router reset done"}]},
    )

    queue_id: Id | None = None
    agent_id: Id | None = None
    mode: TransferMode = TransferMode.BLIND
    note: Short | None = None
    case_id: Id | None = None


class WrapUpBody(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"disposition": "refund_issued", "resolved": True}]},
    )

    agent_id: Id | None = Field(default=None, description="for a supervisor or admin")
    disposition: Name | None = None
    resolved: bool | None = None


class DisasterBody(Body):
    active: bool
    site: SipUri | None = None


class TokenRequest(Body):
    role: Literal["agent", "supervisor", "admin"]
    agent_id: Id | None = None
    teams: Annotated[list[Name], Field(max_length=50)] = []
    minutes: Annotated[int, Field(ge=1, le=60 * 24 * 30)] = 720


class CustomerBody(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "cust-42",
                    "name": "Jeanne Dupont",
                    "email": "jeanne@example.com",
                    "numbers": ["+33612345678"],
                }
            ]
        },
    )

    id: Id
    name: Short = ""
    email: Short | None = None
    numbers: Annotated[list[Short], Field(max_length=20)] = []
    dedicated_agent_id: Id | None = None
    attributes: Annotated[dict[Name, Short], Field(max_length=50)] = {}


class CustomerPatch(Body):
    name: Short | None = None
    email: Short | None = None
    dedicated_agent_id: Id | None = None
    attributes: Annotated[dict[Name, Short], Field(max_length=50)] | None = None


class NumberBody(Body):
    number: Annotated[str, StringConstraints(min_length=1, max_length=32)]


class CaseStatus(Enum):
    OPEN = "open"
    PENDING = "pending"
    CLOSED = "closed"


class CaseBody(Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"id": "case-7", "subject": "Double charge in May"}]},
    )

    id: Id
    subject: Short = ""
    status: CaseStatus = CaseStatus.OPEN
    notes: Text = ""


class CasePatch(Body):
    subject: Short | None = None
    status: CaseStatus | None = None
    notes: Text | None = None


class VoicemailPublic(BaseModel):
    """A message a caller left in the IVR; its audio is at ``/v1/voicemails/{id}/audio``."""

    id: int
    mailbox: str
    call_id: str
    ani: str = Field(description="the caller's number, as their phone sent it")
    dnis: str
    language: str | None
    data: dict[str, str] = Field(description="what the IVR collected before the message")
    seconds: float = Field(description="the recording's length")
    created_at: float
    heard_at: float | None = Field(description="when first marked heard; null: not heard")


class VoicemailPatch(Body):
    heard: bool


class ErrorBody(BaseModel):
    """Every error: a stable ``error_id`` to branch on, a sentence, the state when it explains."""

    error_id: str
    message: str
    state: str | None = None


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
