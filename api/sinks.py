"""Two of the runtime's sinks: today's KPIs per queue, and the event journal's feed.

Like the metrics and the call log (``api.metrics``, ``api.call_log``), each
sees every step, at once and in order (``accept``); the SIP calls' sink is
``api.sip_side``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from acd.engine import Step
from acd.ids import QueueId
from acd.kpis import KpiFold
from api.store.journal import EventJournal
from cti.context import CallOpened


class Today:
    """Today's KPIs per queue (UTC day), folded from every event as it happens.

    A queue's threshold X is read when each call ends (``sl_seconds``), so a
    queue created or changed during the day is measured by its X from then on.
    """

    def __init__(self, sl_seconds: Callable[[QueueId], float | None]) -> None:
        self._sl_seconds = sl_seconds
        self._day = -1
        self._fold = KpiFold(sl_seconds)

    def accept(self, step: Step, notes: Sequence[CallOpened]) -> None:
        for event in step.events:
            day = int(event.at // 86_400)
            if day != self._day:
                self._day = day
                self._fold = KpiFold(self._sl_seconds)
            self._fold.add(event)

    def service_level(self, queue_id: QueueId) -> float | None:
        kpis = self._fold.totals().per_queue.get(queue_id)
        return None if kpis is None else kpis.service_level


class JournalSink:
    """Feeds the journal each step's notes and events, in order, as one batch."""

    def __init__(self, journal: EventJournal) -> None:
        self._journal = journal

    def accept(self, step: Step, notes: Sequence[CallOpened]) -> None:
        if notes or step.events:
            self._journal.append([*notes, *step.events])
