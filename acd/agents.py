"""An agent as the engine holds them: chosen status, system state, and routing bookkeeping.

Status (logged out / ready / not ready) is what the agent chose; state (idle,
reserved, talking, ...) is what the system is doing with them. An agent takes
a new call only when both say so: READY and IDLE. A status change asked for
during a call waits in ``pending`` and applies when the agent is idle again.

An agent's part in a call is their *leg*: from their answer to the end of
their wrap-up. Legs and calls differ once calls move between agents: after a
transfer the call lives on while the agent who sent it away wraps up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from acd.config import AgentConfig
from acd.states import AgentState, AgentStatus

if TYPE_CHECKING:
    from acd.calls import Call
    from acd.consults import Consult
    from acd.offers import Reservation
    from acd.profiles import Profile
    from acd.queues import QueueRuntime
    from acd.timers import Timer


class Agent:
    __slots__ = (
        "affinity_waiting",
        "avail_token",
        "call",
        "calls_answered",
        "config",
        "consult",
        "id",
        "idle_seq",
        "idle_since",
        "indexed_in",
        "last_missed_call",
        "last_offer_order",
        "leg_queue",
        "leg_started_at",
        "misses",
        "order",
        "pending",
        "profiles",
        "reason",
        "reservation",
        "state",
        "status",
        "wrap_up_timer",
    )

    def __init__(self, config: AgentConfig, order: int) -> None:
        self.id = config.id
        self.config = config
        self.order = order  # a unique number that breaks every tie, for determinism
        self.status = AgentStatus.LOGGED_OUT
        self.state = AgentState.IDLE
        self.reason: str | None = None
        self.pending: tuple[AgentStatus, str | None] | None = None
        self.idle_since = 0.0
        self.idle_seq = 0  # orders agents by when they became available, ties included
        self.last_offer_order = 0
        self.calls_answered = 0
        self.misses = 0
        # Bumped every time the agent becomes available: entries of the
        # profiles' heaps that carry an older token are stale.
        self.avail_token = 0
        self.reservation: Reservation | None = None
        # The call in hand: talking, held, or in wrap-up after it (the call may
        # live on with someone else after a transfer).
        self.call: Call | None = None
        # The agent's own part in ``call``: when they answered it, and the queue
        # whose wrap-up rule and handle times it counts in.
        self.leg_started_at = 0.0
        self.leg_queue: QueueRuntime | None = None
        self.consult: Consult | None = None  # set while another agent consults this one
        self.last_missed_call: str | None = None
        self.wrap_up_timer: Timer | None = None
        self.profiles: list[Profile] = []
        # The profiles whose available index holds them now (dropped from when taken).
        self.indexed_in: list[Profile] = []
        # Calls waiting for this agent in particular (last-agent affinity window),
        # as sorted entries like a profile's waiting list.
        self.affinity_waiting: list[tuple[int, float, int, int, Call]] = []

    @property
    def available(self) -> bool:
        return self.status is AgentStatus.READY and self.state is AgentState.IDLE

    @property
    def logged_in(self) -> bool:
        return self.status is not AgentStatus.LOGGED_OUT
