"""Each call's life in the server's log: arrival, every state change, every offer.

A sink of the runtime, like the metrics: it sees each step's notes (the
call's context, with the caller's number) and events in order, and writes
one line per call or offer change (the call's first, ``call arrived``, with
the caller's number and the number dialled) with ``call_id``, ``queue_id``,
``agent_id`` as fields, so one call's lines can be pulled out of the log by
its id. The caller's number goes in ``ani``, which ``api.logs`` masks.

A call's arrival, its offers, its answer, hold and end are logged at INFO
(five lines for a call answered at the first offer); its entering the queue
and being offered, and agents' state changes, at DEBUG (the CTI feed and the
event log hold them all, and at 200 calls a second every line counts). At
WARNING the sink does nothing at all: a centre that wants no per-call lines
pays nothing for them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from acd.engine import Step
from acd.events import AgentStateChanged, CallStateChanged, ReservationStateChanged
from acd.states import CallState
from cti.context import CallOpened

log = logging.getLogger("acd.calls")

_QUIET = frozenset({CallState.QUEUED, CallState.OFFERED})
"""At DEBUG: every call is queued, and the offer's own line says it was offered."""


class CallLog:
    def accept(self, step: Step, notes: Sequence[CallOpened]) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        opened = {note.call_id: note for note in notes}
        for event in step.events:
            if isinstance(event, CallStateChanged):
                _call(event, opened.get(event.call_id) if event.from_state is None else None)
            elif isinstance(event, ReservationStateChanged):
                log.info(
                    "offer %s",
                    event.to_state.value,
                    extra={
                        "call_id": event.call_id,
                        "agent_id": event.agent_id,
                        "reservation_id": event.reservation_id,
                        "seq": event.seq,
                    },
                )
            elif isinstance(event, AgentStateChanged) and log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "agent %s/%s",
                    event.to_status.value,
                    event.to_state.value,
                    extra={
                        "agent_id": event.agent_id,
                        "call_id": event.call_id,
                        "reason": event.reason,
                        "seq": event.seq,
                    },
                )


def _call(event: CallStateChanged, opened: CallOpened | None) -> None:
    fields: dict[str, object] = {
        "call_id": event.call_id,
        "queue_id": event.queue_id,
        "state": event.to_state.value,
        "seq": event.seq,
    }
    if opened is not None:  # the call's first line says who is calling, and what they dialled
        fields.update(ani=opened.ani, dnis=opened.dnis)
    if event.customer_id is not None:
        fields["customer_id"] = event.customer_id
    if event.from_state is not None:
        fields["from_state"] = event.from_state.value
    if event.agent_id is not None:
        fields["agent_id"] = event.agent_id
    if event.outcome is not None:
        fields["outcome"] = event.outcome.value
    if event.reason is not None:
        fields["reason"] = event.reason
    level = logging.DEBUG if event.to_state in _QUIET else logging.INFO
    log.log(level, "call %s", event.to_state.value, extra=fields)
