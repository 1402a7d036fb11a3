"""Reservations: an offer of one call (or a consultation about it) to one agent, with a deadline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from acd.ids import ReservationId
from acd.states import ReservationState

if TYPE_CHECKING:
    from acd.agents import Agent
    from acd.calls import Call
    from acd.consults import Consult
    from acd.timers import Timer


class Reservation:
    __slots__ = (
        "agent",
        "call",
        "callback_number",
        "consult",
        "deadline",
        "id",
        "offered_at",
        "state",
        "timer",
    )

    def __init__(
        self,
        reservation_id: ReservationId,
        call: Call,
        agent: Agent,
        now: float,
        deadline: float,
        consult: Consult | None = None,
        callback_number: str | None = None,
    ) -> None:
        self.id = reservation_id
        self.call = call
        self.agent = agent
        self.offered_at = now
        self.deadline = deadline
        self.state = ReservationState.PENDING
        self.timer: Timer | None = None
        # Set when the offer is a consultation: the call stays with its agent meanwhile.
        self.consult = consult
        self.callback_number = callback_number  # set when the offer is of a callback task
