"""Configuration the engine routes by: queues, agents' skills, overflow targets.

All of it is immutable data; changing a queue or an agent means sending the
engine a new config in a command, so every change is ordered with the calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from acd.ids import AgentId, Language, QueueId, Skill

_NO_SKILLS: Mapping[Skill, int] = MappingProxyType({})
_NO_LANGUAGES: Mapping[Language, int] = MappingProxyType({})


class Strategy(Enum):
    """How to choose among several eligible idle agents."""

    LONGEST_IDLE = "longest_idle"
    MOST_SKILLED = "most_skilled"  # highest sum of levels in the call's required skills
    ROUND_ROBIN = "round_robin"  # least recently offered a call
    FEWEST_CALLS = "fewest_calls"  # fewest calls answered since login


class AffinityMode(Enum):
    """Which agent a known customer's call looks for first."""

    OFF = "off"
    LAST_AGENT = "last_agent"
    DEDICATED = "dedicated"
    DEDICATED_OR_LAST = "dedicated_or_last"


class WhenUnstaffed(Enum):
    """What admission does when no eligible agent is logged in."""

    QUEUE = "queue"  # wait anyway: somebody may log in
    OVERFLOW = "overflow"  # to the queue's overflow target, or blocked without one
    BLOCK = "block"


class OverflowCondition(Enum):
    WAIT_OVER = "wait_over"  # the caller has waited longer than the limit
    EWT_OVER = "ewt_over"  # the caller's estimated remaining wait is over the limit


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where an overflowing call goes: another queue here, or a remote site by SIP URI."""

    queue: QueueId | None = None
    site: str | None = None

    def __post_init__(self) -> None:
        if (self.queue is None) == (self.site is None):
            raise ValueError("an overflow target names exactly one of queue or site")


@dataclass(frozen=True, slots=True, kw_only=True)
class OverflowRule:
    """Move a waiting call elsewhere when a condition passes a limit."""

    when: OverflowCondition
    seconds: float
    target: Target


@dataclass(frozen=True, slots=True, kw_only=True)
class RelaxStep:
    """After ``after_seconds`` of waiting, the call's requirements loosen; it keeps its place."""

    after_seconds: float
    lower_levels_by: int = 0
    any_language: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """One queue: what its calls need, how they are served, and where they go when they can't be."""

    id: QueueId
    skills: Mapping[Skill, int] = field(default_factory=lambda: _NO_SKILLS)  # skill -> min level
    language: Language | None = None
    language_level: int = 1
    priority: int = 0  # default priority of calls entering this queue; higher is served first
    weight: int = 0  # breaks ties between equally old calls of different queues
    sl_seconds: float = 20.0
    sl_target: float = 0.8
    max_size: int | None = None
    when_unstaffed: WhenUnstaffed = WhenUnstaffed.QUEUE
    when_full: Target | None = None  # also the target when unstaffed and set to overflow
    strategy: Strategy = Strategy.LONGEST_IDLE
    affinity: AffinityMode = AffinityMode.OFF
    affinity_window_seconds: float = 0.0
    relaxation: tuple[RelaxStep, ...] = ()
    overflow: tuple[OverflowRule, ...] = ()
    wrap_up_seconds: float = 0.0
    ring_timeout_seconds: float = 15.0
    max_misses: int = 3  # consecutive ring-no-answers that set the agent not ready
    announce_every_seconds: float | None = 30.0
    callback_offer_over_seconds: float | None = None  # offer a callback when EWT exceeds this
    short_abandon_seconds: float = 20.0  # KPIS.md: abandons within this are short abandons

    def __post_init__(self) -> None:
        for name, level in self.skills.items():
            _check_level(f"queue {self.id} skill {name}", level)
        if self.ring_timeout_seconds <= 0:
            raise ValueError("ring_timeout_seconds must be positive")
        if self.max_misses < 1:
            raise ValueError("max_misses must be at least 1")
        if self.max_size is not None and self.max_size < 0:
            raise ValueError("max_size cannot be negative")
        if self.announce_every_seconds is not None and self.announce_every_seconds <= 0:
            raise ValueError("announce_every_seconds must be positive")
        steps = [s.after_seconds for s in self.relaxation]
        if steps != sorted(steps) or any(s <= 0 for s in steps):
            raise ValueError("relaxation steps must come in increasing positive after_seconds")
        for rule in self.overflow:
            if rule.target.queue == self.id:
                raise ValueError(f"queue {self.id} cannot overflow to itself")
        if self.when_full is not None and self.when_full.queue == self.id:
            raise ValueError(f"queue {self.id} cannot overflow to itself")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """Who an agent is for routing: skills and languages with levels 1-10, teams, queues."""

    id: AgentId
    skills: Mapping[Skill, int] = field(default_factory=lambda: _NO_SKILLS)
    languages: Mapping[Language, int] = field(default_factory=lambda: _NO_LANGUAGES)
    teams: frozenset[str] = frozenset()
    queues: frozenset[QueueId] = frozenset()

    def __post_init__(self) -> None:
        for name, level in self.skills.items():
            _check_level(f"agent {self.id} skill {name}", level)
        for language, level in self.languages.items():
            _check_level(f"agent {self.id} language {language}", level)


def _check_level(what: str, level: int) -> None:
    if not 1 <= level <= 10:
        raise ValueError(f"{what}: level {level} is outside 1-10")
