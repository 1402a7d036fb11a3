"""Screen pops: what an agent's desktop shows when a call is offered.

The customer is looked up (by the id an integration gave, else by the caller's
number) when the call arrives, before routing, so the offer never waits for
the database; the record, the contact history summary and the customer's
cases (last first) are kept here with the call's context until the call ends.
A transfer adds who transferred it and their note, and the case the call is
about, so the next agent starts where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from acd.events import CallStateChanged, Event, ReservationStateChanged
from acd.ids import AgentId, CallId
from acd.states import CallState
from cti.context import CallOpened


@dataclass(slots=True)
class _Pop:
    context: CallOpened
    customer: dict[str, Any] | None
    history: dict[str, Any] | None
    cases: list[dict[str, Any]]
    transfers: list[dict[str, Any]] = field(default_factory=list)


class ScreenPops:
    """Per live call: its context and what the desktop shows about the caller."""

    def __init__(self) -> None:
        self._pops: dict[CallId, _Pop] = {}

    def open(self, context: CallOpened, found: Mapping[str, Any] | None) -> None:
        """Remember a new call; ``found`` is the directory's screen pop of its customer."""
        found = found or {}
        self._pops[context.call_id] = _Pop(
            context=context,
            customer=found.get("customer"),
            history=found.get("history"),
            cases=list(found.get("cases", [])),
        )

    def context(self, call_id: CallId) -> CallOpened | None:
        pop = self._pops.get(call_id)
        return None if pop is None else pop.context

    def transferred(
        self, call_id: CallId, by: AgentId, note: str | None, case_id: str | None, at: float
    ) -> None:
        """The case context that travels with a transferred call."""
        pop = self._pops.get(call_id)
        if pop is None:
            return
        pop.transfers.append({"from_agent_id": by, "note": note, "case_id": case_id, "at": at})
        if case_id is not None:  # the case the call is about comes first
            pop.cases.sort(key=lambda case: case.get("id") != case_id)

    def undo_transfer(self, call_id: CallId) -> None:
        """The transfer was refused: the call's context is as before."""
        pop = self._pops.get(call_id)
        if pop is not None and pop.transfers:
            pop.transfers.pop()

    def forget(self, call_id: CallId) -> None:
        self._pops.pop(call_id, None)

    def for_call(self, call_id: CallId) -> dict[str, Any] | None:
        pop = self._pops.get(call_id)
        if pop is None:
            return None
        ctx = pop.context
        return {
            "call": {
                "ani": ctx.ani,
                "dnis": ctx.dnis,
                "queue_id": ctx.queue_id,
                "arrived_at": ctx.at,
                "data": dict(ctx.data),
            },
            "customer": pop.customer,
            "history": pop.history,
            "cases": pop.cases,
            "last_case": pop.cases[0] if pop.cases else None,
            "transfers": list(pop.transfers),
            "transfer": pop.transfers[-1] if pop.transfers else None,
        }

    def for_offer(self, event: ReservationStateChanged) -> dict[str, Any] | None:
        return self.for_call(event.call_id)

    def forget_ended(self, events: Sequence[Event]) -> None:
        """Drop the calls that ended (after their events were published)."""
        for event in events:
            if isinstance(event, CallStateChanged) and event.to_state is CallState.ENDED:
                self._pops.pop(event.call_id, None)

    def __len__(self) -> int:
        return len(self._pops)
