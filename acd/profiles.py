"""Requirement profiles: the index that keeps routing decisions off full scans.

A profile is one distinct set of requirements within a queue: required skills
with minimum levels, and a language with a minimum level. Calls with the same
requirements share a profile; each profile knows, once, which of the queue's
members satisfy it. It then keeps two ordered structures:

* ``available``: a heap of the eligible agents that are ready and idle,
  ordered by the queue's strategy. An agent that stops being available is not
  searched for: its entries carry an availability token, and entries with an
  old token are dropped when they reach the top.
* ``waiting``: the calls waiting with these requirements, sorted by
  (priority, enqueue time, queue weight, arrival order). Sorted rather than a
  heap so a caller's position is a binary search.

Routing a call is the top of one heap; routing a freed agent is a look at the
heads of the few profiles they belong to. Building a profile scans the
queue's members once; every later decision is logarithmic.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from typing import TYPE_CHECKING

from acd.config import Strategy
from acd.ids import Language, Skill

if TYPE_CHECKING:
    from acd.agents import Agent
    from acd.calls import Call
    from acd.queues import QueueRuntime

SkillNeeds = tuple[tuple[Skill, int], ...]  # sorted (skill, minimum level) pairs
# (-priority, enqueued_at, -queue weight, arrival order, call): the order calls are served in.
WaitEntry = tuple[int, float, int, int, "Call"]
_AvailEntry = tuple[tuple[float, ...], int, "Agent"]


class Profile:
    __slots__ = (
        "_available",
        "language",
        "language_level",
        "members",
        "queue",
        "ready",
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
        self._available: list[_AvailEntry] = []

    def admits(self, agent: Agent) -> bool:
        """Whether the agent's skills and languages meet these requirements."""
        skills = agent.config.skills
        for skill, level in self.skills:
            if skills.get(skill, 0) < level:
                return False
        if self.language is not None:
            return agent.config.languages.get(self.language, 0) >= self.language_level
        return True

    # -- agents ---------------------------------------------------------------

    def rank(self, agent: Agent) -> tuple[float, ...]:
        """The agent's place among available agents: lowest is chosen first."""
        strategy = self.queue.config.strategy
        if strategy is Strategy.LONGEST_IDLE:
            return (agent.idle_since, agent.order)
        if strategy is Strategy.MOST_SKILLED:
            skills = agent.config.skills
            score = sum(skills.get(skill, 0) for skill, _ in self.skills)
            return (-score, agent.idle_since, agent.order)
        if strategy is Strategy.ROUND_ROBIN:
            return (agent.last_offer_order, agent.order)
        return (agent.calls_answered, agent.idle_since, agent.order)

    def push_available(self, agent: Agent) -> None:
        heap = self._available
        heapq.heappush(heap, (self.rank(agent), agent.avail_token, agent))
        if len(heap) > 64 and len(heap) > 4 * len(self.members):
            self._compact()

    def best_available(self) -> Agent | None:
        """The available member to offer the next call to, without removing it."""
        heap = self._available
        while heap:
            _, token, agent = heap[0]
            if token == agent.avail_token and agent.available:
                return agent
            heapq.heappop(heap)
        return None

    def rebuild_available(self) -> None:
        """Re-rank every available member (after a strategy change)."""
        self._available = [(self.rank(a), a.avail_token, a) for a in self.members if a.available]
        heapq.heapify(self._available)

    def _compact(self) -> None:
        self._available = [
            e for e in self._available if e[1] == e[2].avail_token and e[2].available
        ]
        heapq.heapify(self._available)

    # -- calls ----------------------------------------------------------------

    def add_waiting(self, entry: WaitEntry) -> None:
        insort(self.waiting, entry)

    def remove_waiting(self, entry: WaitEntry) -> None:
        waiting = self.waiting
        i = bisect_left(waiting, entry)
        if i == len(waiting) or waiting[i][4] is not entry[4]:
            raise AssertionError(f"call {entry[4].id} is not waiting in this profile")
        del waiting[i]

    def position(self, entry: WaitEntry) -> int:
        """How many calls of this profile will be served before this one."""
        return bisect_left(self.waiting, entry)
