"""A call as the engine holds it while it is in the centre."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from acd.ids import AgentId, CallId, CustomerId, Language, QueueId, Skill
from acd.states import CallState

if TYPE_CHECKING:
    from acd.agents import Agent
    from acd.consults import Consult
    from acd.offers import Reservation
    from acd.profiles import Profile, WaitEntry
    from acd.queues import QueueRuntime
    from acd.timers import Timer, TimerKind


class Call:
    __slots__ = (
        "affinity_agent",
        "agent",
        "ani",
        "announced_ewt",
        "armed",
        "arrived_at",
        "asked_priority",
        "callback_number",
        "connected_at",
        "consult",
        "customer_id",
        "data",
        "dedicated_agent",
        "dnis",
        "ended_at",
        "enqueued_at",
        "entered_queue_at",
        "entry",
        "id",
        "language",
        "order",
        "priority",
        "profile",
        "queue",
        "relax_level",
        "reservation",
        "skills",
        "state",
        "timers",
        "transfer_note",
        "transferred_by",
        "visited",
    )

    def __init__(
        self,
        *,
        call_id: CallId,
        queue: QueueRuntime,
        order: int,
        now: float,
        ani: str,
        dnis: str,
        language: Language | None,
        skills: dict[Skill, int] | None,
        priority: int | None,
        customer_id: CustomerId | None,
        dedicated_agent: AgentId | None,
        data: Mapping[str, str],
    ) -> None:
        self.id = call_id
        self.queue = queue
        self.order = order
        self.ani = ani
        self.dnis = dnis
        self.language = language
        self.skills = skills
        self.asked_priority = priority  # None: each queue's own default applies
        self.priority = queue.config.priority if priority is None else priority
        self.customer_id = customer_id
        self.dedicated_agent = dedicated_agent
        self.data = data
        self.callback_number: str | None = None  # where to call back, once it is a callback
        self.state = CallState.ARRIVED
        self.arrived_at = now
        # First entry into a queue; kept across overflow, reset by a blind transfer.
        self.enqueued_at: float | None = None
        self.entered_queue_at = now  # entry into the current queue
        self.connected_at: float | None = None  # the latest answer; set: the call was answered
        self.ended_at: float | None = None
        self.relax_level = 0
        self.profile: Profile | None = None
        self.entry: WaitEntry | None = None  # set while waiting in ``profile`` or for an agent
        self.affinity_agent: Agent | None = None  # set while waiting for one agent in particular
        self.agent: Agent | None = None  # the connected agent (the main one, in a conference)
        self.reservation: Reservation | None = None  # an offer from the queue
        self.consult: Consult | None = None  # the agent is consulting another about it
        self.transferred_by: Agent | None = None  # the agent who last sent it away, blind
        self.transfer_note: str | None = None
        self.announced_ewt: float | None = None
        self.timers: dict[TimerKind, Timer] = {}
        self.armed = False  # the current queue's timers are set
        self.visited: set[QueueId] = {queue.id}

    def wait_entry(self) -> WaitEntry:
        """Where this call stands among waiting calls: priority, then age, then queue weight."""
        return (*self.rank(), self)

    def rank(self) -> tuple[int, float, int, int]:
        """The order calls are served in (and their timers fire in, when due together)."""
        assert self.enqueued_at is not None
        return (-self.priority, self.enqueued_at, -self.queue.config.weight, self.order)

    def cancel_timers(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
