"""Requirement profiles: the index that keeps routing decisions off full scans.

A profile is one distinct set of requirements within a queue: required skills
with minimum levels, and a language with a minimum level. Calls with the same
requirements share a profile; each profile knows, once, which of the queue's
members satisfy it. It then keeps two ordered structures:

* the available members (ready and idle), in the order the queue's strategy
  picks them. Longest idle, most skilled and fewest calls all order agents by
  a key that cannot change while the agent is available (none, skill score,
  calls answered), then by when they became available. So the index is a few
  groups by key, each an insertion-ordered dict: adding or removing an agent
  is O(1), and an agent who is taken leaves every profile at once. Round
  robin ("least recently offered") orders by something unrelated to when the
  agent became available, so it uses a heap whose entries carry an
  availability token; entries of an agent no longer available are dropped
  when they reach the top.
* ``waiting``: the calls waiting with these requirements, sorted by
  (priority, enqueue time, queue weight, arrival order). Sorted rather than a
  heap so a caller's position is a binary search.

Routing a call is the head of one structure; routing a freed agent is a look
at the heads of the few profiles they belong to. Building a profile scans the
queue's members once; no later decision scans agents or calls: each is a dict
or heap operation, or a binary search (and a memmove) in a waiting list.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import OrderedDict
from typing import TYPE_CHECKING, ClassVar

from acd.config import Strategy
from acd.estimates import ServiceRate
from acd.ids import Language, Skill
from acd.states import AgentStatus

if TYPE_CHECKING:
    from acd.agents import Agent
    from acd.calls import Call
    from acd.queues import QueueRuntime

SkillNeeds = tuple[tuple[Skill, int], ...]  # sorted (skill, minimum level) pairs
# (-priority, enqueued_at, -queue weight, arrival order, call): the order calls are served in.
WaitEntry = tuple[int, float, int, int, "Call"]
_AvailEntry = tuple[tuple[float, ...], int, "Agent"]


class Profile:
    # Bumped by every change of any profile's members: the key of ``_rivals``.
    _membership_version: ClassVar[int] = 0

    __slots__ = (
        "_group_of",
        "_groups",
        "_heap",
        "_rivals_cache",
        "_rivals_version",
        "_scores",
        "_strategy",
        "language",
        "language_level",
        "members",
        "queue",
        "ready",
        "service",
        "skills",
        "staffed",
        "waiting",
    )

    def __init__(
        self,
        queue: QueueRuntime,
        skills: SkillNeeds,
        language: Language | None,
        language_level: int,
    ) -> None:
        self.queue = queue
        self.skills = skills
        self.language = language
        self.language_level = language_level
        self.members: set[Agent] = set()
        self.staffed = 0  # logged-in members
        self.ready = 0  # members whose status is READY, busy or not
        self.waiting: list[WaitEntry] = []
        self.service = ServiceRate()
        self._strategy = queue.config.strategy
        self._scores: dict[Agent, int] = {}  # members' levels summed over the required skills
        self._groups: dict[int, OrderedDict[Agent, None]] = {}
        self._group_of: dict[Agent, int] = {}
        self._heap: list[_AvailEntry] = []  # round robin only
        self._rivals_cache: list[tuple[Profile, float]] = []
        self._rivals_version = -1

    def admits(self, agent: Agent) -> bool:
        """Whether the agent's skills and languages meet these requirements."""
        skills = agent.config.skills
        for skill, level in self.skills:
            if skills.get(skill, 0) < level:
                return False
        if self.language is not None:
            return agent.config.languages.get(self.language, 0) >= self.language_level
        return True

    # -- members --------------------------------------------------------------

    def join(self, agent: Agent) -> bool:
        """Take ``agent`` as a member if they are eligible; True if they now are."""
        if not self.admits(agent):
            return False
        Profile._membership_version += 1
        self.members.add(agent)
        skills = agent.config.skills
        self._scores[agent] = sum(skills.get(skill, 0) for skill, _ in self.skills)
        if agent.logged_in:
            self.staffed += 1
        if agent.status is AgentStatus.READY:
            self.ready += 1
        return True

    def leave(self, agent: Agent) -> None:
        Profile._membership_version += 1
        self.drop_available(agent)
        self.members.discard(agent)
        del self._scores[agent]
        if agent.logged_in:
            self.staffed -= 1
        if agent.status is AgentStatus.READY:
            self.ready -= 1

    # -- available members ----------------------------------------------------------

    def rank(self, agent: Agent) -> tuple[int, ...]:
        """The agent's place among available members: lowest is chosen first."""
        if self._strategy is Strategy.ROUND_ROBIN:
            return (agent.last_offer_order, agent.order)
        return (self._group_key(agent), agent.idle_seq)

    def _group_key(self, agent: Agent) -> int:
        strategy = self._strategy
        if strategy is Strategy.MOST_SKILLED:
            return -self._scores[agent]
        if strategy is Strategy.FEWEST_CALLS:
            return agent.calls_answered
        return 0

    def add_available(self, agent: Agent) -> None:
        """Index a member who has just become available."""
        strategy = self._strategy
        if strategy is Strategy.LONGEST_IDLE:  # the default, and the hot path
            key = 0
        elif strategy is Strategy.ROUND_ROBIN:
            heap = self._heap
            heapq.heappush(heap, (self.rank(agent), agent.avail_token, agent))
            if len(heap) > 64 and len(heap) > 4 * len(self.members):
                self._reindex()
            return
        else:
            key = self._group_key(agent)
        if agent in self._group_of:
            return
        agent.indexed_in.append(self)
        self._group_of[agent] = key
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = OrderedDict()
        group[agent] = None

    def drop_available(self, agent: Agent) -> None:
        """A member stopped being available (round-robin entries go stale by themselves)."""
        key = self._group_of.pop(agent, None)
        if key is not None:
            group = self._groups[key]
            del group[agent]
            if not group:
                del self._groups[key]

    def best_available(self) -> Agent | None:
        """The available member to offer the next call to, without removing them."""
        groups = self._groups
        if groups:
            group = groups[min(groups)] if len(groups) > 1 else next(iter(groups.values()))
            return next(iter(group))
        heap = self._heap
        while heap:
            _, token, agent = heap[0]
            if token == agent.avail_token and agent.available:
                return agent
            heapq.heappop(heap)
        return None

    def reindex(self) -> None:
        """Rebuild the available index from the members: after a strategy change, or
        when a member joined while available and must take their place by idle time."""
        self._strategy = self.queue.config.strategy
        self._reindex()

    def _reindex(self) -> None:
        available = sorted((a for a in self.members if a.available), key=_by_idle_seq)
        self._groups = {}
        self._group_of = {}
        self._heap = []
        if self._strategy is Strategy.ROUND_ROBIN:
            self._heap = [(self.rank(a), a.avail_token, a) for a in available]
            heapq.heapify(self._heap)
        else:
            for agent in available:
                self.add_available(agent)

    # -- calls ----------------------------------------------------------------

    def add_waiting(self, entry: WaitEntry, now: float) -> None:
        if not self.waiting:
            self.service.started_waiting(now)
        insort(self.waiting, entry)

    def take_head(self, now: float) -> Call:
        """An agent takes the call that should go next."""
        self.service.took(now)
        return self.waiting.pop(0)[4]

    def remove_waiting(self, entry: WaitEntry) -> None:
        waiting = self.waiting
        i = bisect_left(waiting, entry)
        if i == len(waiting) or waiting[i][4] is not entry[4]:
            raise AssertionError(f"call {entry[4].id} is not waiting in this profile")
        del waiting[i]

    def calls_ahead(self, entry: WaitEntry) -> float:
        """Calls that will take one of this profile's agents before ``entry``'s call.

        Those ahead in this profile, and those ahead in every profile that
        shares agents with it, each counted by the share of that profile's
        agents who are also ours.
        """
        ahead = 0.0
        for profile, share in self._rivals():
            if profile.waiting:
                ahead += bisect_left(profile.waiting, entry) * share
        return ahead

    def _rivals(self) -> list[tuple[Profile, float]]:
        """Profiles sharing agents with this one, with the share of their agents that
        are ours; rebuilt (a scan of the members) only after membership changed."""
        if self._rivals_version != Profile._membership_version:
            overlap: dict[Profile, int] = {}
            for agent in self.members:
                for profile in agent.profiles:
                    overlap[profile] = overlap.get(profile, 0) + 1
            self._rivals_cache = [(p, shared / len(p.members)) for p, shared in overlap.items()]
            self._rivals_version = Profile._membership_version
        return self._rivals_cache

    def position(self, entry: WaitEntry) -> int:
        """How many calls of this profile will be served before this one."""
        return bisect_left(self.waiting, entry)


def _by_idle_seq(agent: Agent) -> int:
    return agent.idle_seq
