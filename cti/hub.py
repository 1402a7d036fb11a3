"""The CTI hub: durable events fanned out to desktops, filtered by who may see them.

Theory of operation. The journal calls ``publish`` with each batch once it is
durable, so a desktop never sees an event a crash could take back. ``publish``
turns each event into its wire message (offers get their screen pop here, so
a replay is the message first sent), keeps the last ``keep`` messages in a ring
for replay, and puts each on the bounded queue of every subscriber allowed to
see it. A subscriber whose queue is full is cut off (``lagging``) rather than
allowed to hold up the others; it reconnects with ``resume_from``.

``attach(audience, after)`` subscribes and replays, in one synchronous step,
every kept message after ``after`` that the audience may see, so nothing falls
between the replay and the live feed. It returns None when ``after`` is older
than what is kept (or from a sequence this server never reached): the caller
then sends a fresh snapshot marked ``resync``.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from acd.events import CallStateChanged, Event, ReservationStateChanged
from acd.ids import AgentId, QueueId
from acd.states import ReservationState
from cti.context import CallOpened
from cti.wire import event_message, stored_message


@dataclass(frozen=True, slots=True, kw_only=True)
class Audience:
    """Whose events a subscriber gets: an agent their own, a supervisor their teams', admin all."""

    agent_id: AgentId | None = None
    teams: frozenset[str] = frozenset()
    everything: bool = False


class Visibility:
    """Which teams an agent is in and which queues a team serves, kept up to date by the API."""

    def __init__(self) -> None:
        self._teams: dict[AgentId, frozenset[str]] = {}
        self._queues: dict[AgentId, frozenset[QueueId]] = {}
        self._queues_of: dict[frozenset[str], frozenset[QueueId]] = {}  # a cache, per team set

    def set_agent(self, agent_id: AgentId, teams: Iterable[str], queues: Iterable[QueueId]) -> None:
        self._teams[agent_id] = frozenset(teams)
        self._queues[agent_id] = frozenset(queues)
        self._queues_of.clear()

    def teams_of(self, agent_id: AgentId) -> frozenset[str]:
        return self._teams.get(agent_id, frozenset())

    def agents_of(self, teams: frozenset[str]) -> list[AgentId]:
        return sorted(a for a, t in self._teams.items() if t & teams)

    def queues_of(self, teams: frozenset[str]) -> frozenset[QueueId]:
        """The queues that some member of these teams serves."""
        known = self._queues_of.get(teams)
        if known is not None:
            return known
        out: set[QueueId] = set()
        for agent_id, agent_teams in self._teams.items():
            if agent_teams & teams:
                out |= self._queues.get(agent_id, frozenset())
        known = self._queues_of[teams] = frozenset(out)
        return known

    def may_see(self, audience: Audience, event: Event) -> bool:
        call_queue = event.queue_id if isinstance(event, CallStateChanged) else None
        return self.may_see_about(audience, event.agent_id, call_queue)

    def may_see_about(
        self, audience: Audience, agent_id: AgentId | None, call_queue: QueueId | None
    ) -> bool:
        """Whether an event naming this agent (and, for a call's, its queue) is for them."""
        if audience.everything:
            return True
        if audience.agent_id is not None:
            return agent_id == audience.agent_id
        if agent_id is not None and self.teams_of(agent_id) & audience.teams:
            return True
        if call_queue is not None:
            return call_queue in self.queues_of(audience.teams)
        return False


class Lagging(Exception):
    """The subscriber fell more than its buffer behind and was cut off."""


class Subscription:
    """One desktop's feed: the messages not yet sent (JSON text), in sequence order, bounded.

    A plain buffer and one wake-up flag rather than an ``asyncio.Queue``: the
    feeder takes everything pending in one go, so a burst costs one wake-up,
    not one future per message.
    """

    def __init__(self, audience: Audience, after: int, size: int) -> None:
        self.audience = audience
        self.after = after
        self._size = size
        self._pending: deque[str] = deque()
        self._wake = asyncio.Event()
        self.lagging = False

    def offer(self, text: str) -> None:
        if self.lagging:
            return
        if len(self._pending) >= self._size:
            self.lagging = True
            self._pending.clear()
        else:
            self._pending.append(text)
        self._wake.set()

    async def take(self) -> list[str]:
        """Wait for messages and take all that are pending; ``Lagging`` once cut off."""
        while not self._pending and not self.lagging:
            self._wake.clear()
            await self._wake.wait()
        if self.lagging:
            raise Lagging
        taken = list(self._pending)
        self._pending.clear()
        return taken


def serialize(message: dict[str, Any]) -> str:
    """A message as the socket sends it: compact JSON."""
    return json.dumps(message, separators=(",", ":"))


_Kept = tuple[int, AgentId | None, QueueId | None, str]

ScreenPopper = Callable[[ReservationStateChanged], dict[str, Any] | None]


class Hub:
    """Durable events to subscribers; a ring of recent messages for replay."""

    def __init__(
        self,
        visibility: Visibility,
        screen_pop: ScreenPopper,
        *,
        start_seq: int = 0,
        keep: int = 10_000,
        subscriber_queue: int = 2_000,
    ) -> None:
        self.visibility = visibility
        self._screen_pop = screen_pop
        # What replay needs of each kept event, as a tuple of strings and numbers that
        # the garbage collector stops tracking (ten thousand events would be walked
        # at every full collection): seq, agent, the queue of a call's event, text.
        self._ring: deque[_Kept] = deque(maxlen=keep)
        self._base = start_seq  # every seq up to here is before this server's memory
        self.published_seq = start_seq
        self._subscribers: set[Subscription] = set()
        # An agent's desktop sees only events naming that agent: index them by agent,
        # so one event costs a look-up, not a pass over a thousand desktops.
        self._by_agent: dict[AgentId, set[Subscription]] = {}
        self._watchers: set[Subscription] = set()  # supervisors and admins
        self._subscriber_queue = subscriber_queue
        self.on_published: list[Callable[[Sequence[Event]], None]] = []

    @property
    def connections(self) -> int:
        return len(self._subscribers)

    def publish(self, items: Sequence[Event | CallOpened]) -> None:
        """Take a durable batch, in sequence order."""
        events = [item for item in items if not isinstance(item, CallOpened)]
        if not events:
            return
        may_see = self.visibility.may_see
        for event in events:
            message = event_message(event)
            if isinstance(event, ReservationStateChanged) and event.to_state is (
                ReservationState.PENDING
            ):
                pop = self._screen_pop(event)
                if pop is not None:
                    message["data"]["screen_pop"] = pop
            text = serialize(message)  # once, however many desktops get it
            call_queue = event.queue_id if isinstance(event, CallStateChanged) else None
            self._ring.append((event.seq, event.agent_id, call_queue, text))
            self.published_seq = event.seq
            seq = event.seq
            agent_id = event.agent_id
            if agent_id is not None:
                for sub in self._by_agent.get(agent_id, ()):
                    if seq > sub.after:
                        sub.offer(text)
            for sub in self._watchers:
                if seq > sub.after and may_see(sub.audience, event):
                    sub.offer(text)
        for callback in self.on_published:
            callback(events)

    def preload(self, stored: Sequence[tuple[int, str, float, dict[str, Any]]]) -> None:
        """Keep events read back from the log (seq, type, at, data), so that desktops can
        resume across a restart. Before anything is published; they must end at
        ``start_seq``. An offer read back has no screen pop: it was added when it was
        sent, and the call has ended since (a restart closes the calls left live).
        """
        if self._ring or not stored:
            return
        if stored[-1][0] != self.published_seq:
            raise ValueError(f"the events kept end at {stored[-1][0]}, not {self.published_seq}")
        for seq, type_, at, data in stored:
            agent_id = data.get("agent_id")
            call_queue = data.get("queue_id") if type_ == "call.state_changed" else None
            text = serialize(stored_message(seq, type_, at, data))
            self._ring.append((seq, agent_id, call_queue, text))
        self._base = stored[0][0] - 1

    def attach(self, audience: Audience, after: int, known_seq: int) -> Subscription | None:
        """Subscribe from ``after`` with the kept messages replayed; None if the gap is lost.

        ``known_seq`` is the highest sequence number the engine has emitted: a
        client claiming more comes from another life of the server.
        """
        if after > known_seq:
            return None
        oldest = self._ring[0][0] if self._ring else self.published_seq + 1
        if after < self._base or after + 1 < oldest:
            return None
        sub = Subscription(audience, after, self._subscriber_queue)
        may_see = self.visibility.may_see_about
        for seq, agent_id, call_queue, text in self._ring:
            if seq > after and may_see(audience, agent_id, call_queue):
                sub.offer(text)
        self._subscribers.add(sub)
        if audience.agent_id is not None and not audience.everything:
            self._by_agent.setdefault(audience.agent_id, set()).add(sub)
        else:
            self._watchers.add(sub)
        return sub

    def detach(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)
        self._watchers.discard(sub)
        agent_id = sub.audience.agent_id
        if agent_id is not None:
            subs = self._by_agent.get(agent_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_agent[agent_id]

    def broadcast(self, message: dict[str, Any]) -> None:
        """A notice for every subscriber (outside the sequence: draining, for one)."""
        text = serialize(message)
        for sub in self._subscribers:
            sub.offer(text)

    def notify_staff(self, message: dict[str, Any]) -> None:
        """A notice for supervisors and admins only, outside the sequence (a voicemail left)."""
        text = serialize(message)
        for sub in self._subscribers:
            if sub.audience.agent_id is None:
                sub.offer(text)
