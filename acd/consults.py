"""A consultation: the agent of a call talks to a second agent about it, the caller on hold.

It starts ringing the consulted agent (a reservation, as for any offer), then
the two agents talk; from there the consulting agent can hand the caller over
(a warm transfer), bring the caller in (a conference, which a hold turns back
into a consultation), or give up. Its states and moves are
``acd.states.ConsultState`` and ``CONSULT_TRANSITIONS``; ``acd.transfers``
drives them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from acd.states import ConsultState

if TYPE_CHECKING:
    from acd.agents import Agent
    from acd.calls import Call
    from acd.offers import Reservation


class Consult:
    __slots__ = ("agent", "by", "call", "reservation", "state")

    def __init__(self, call: Call, by: Agent, agent: Agent) -> None:
        self.call = call
        self.by = by  # the call's agent, who consults
        self.agent = agent  # the consulted agent
        self.state = ConsultState.RINGING
        self.reservation: Reservation | None = None  # while ringing
