"""A queue at run time: its configuration, its members, its profiles and its statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from acd.config import QueueConfig
from acd.estimates import HandleTimes, Reneging, RollingMean
from acd.ids import Language, Skill
from acd.profiles import Profile, SkillNeeds

if TYPE_CHECKING:
    from acd.agents import Agent

ProfileKey = tuple[SkillNeeds, Language | None, int]


class QueueRuntime:
    __slots__ = ("aht", "config", "id", "members", "profiles", "reneging", "ring", "size")

    def __init__(self, config: QueueConfig) -> None:
        self.id = config.id
        self.config = config
        self.members: set[Agent] = set()  # agents configured to serve this queue
        self.profiles: dict[ProfileKey, Profile] = {}
        self.size = 0  # calls in this queue, waiting or ringing an agent
        self.aht = HandleTimes()  # talk + hold + wrap-up of calls answered from here
        self.reneging = Reneging()  # how often its waiting callers give up
        self.ring = RollingMean()  # from offer to answer, of answered offers

    def needs(
        self,
        extra_skills: dict[Skill, int] | None,
        language: Language | None,
        relax_level: int,
    ) -> ProfileKey:
        """The requirements of a call of this queue, loosened by its first ``relax_level``
        steps: steps only ever loosen (the most levels lowered so far, and any
        language once one step allowed it)."""
        config = self.config
        skills: dict[Skill, int] = dict(config.skills)
        if extra_skills:
            for skill, level in extra_skills.items():
                skills[skill] = max(level, skills.get(skill, 0))
        lang = language if language is not None else config.language
        if relax_level:
            steps = config.relaxation[:relax_level]
            lower = max(step.lower_levels_by for step in steps)
            if lower:
                skills = {s: max(1, lvl - lower) for s, lvl in skills.items()}
            if any(step.any_language for step in steps):
                lang = None
        return (tuple(sorted(skills.items())), lang, config.language_level)

    def profile(self, key: ProfileKey) -> Profile:
        """The profile for these requirements, built (one scan of the members) on first use."""
        profile = self.profiles.get(key)
        if profile is None:
            profile = Profile(self, *key)
            self.profiles[key] = profile
            for agent in sorted(self.members, key=_by_order):
                enrol(profile, agent, index=False)
            profile.reindex()
        return profile


def enrol(profile: Profile, agent: Agent, *, index: bool = True) -> None:
    """Make ``agent`` a member of ``profile`` if they are eligible for it."""
    if not profile.join(agent):
        return
    agent.profiles.append(profile)
    if index and agent.available:
        profile.reindex()  # rare (configuration): take their place by idle time


def _by_order(agent: Agent) -> int:
    return agent.order
