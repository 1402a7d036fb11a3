"""Timers as data: the engine's deadlines, in one heap, cancelled by flag.

The engine never sleeps. It keeps every deadline it cares about here (ring
timeouts, wrap-up ends, affinity windows, relaxation steps, announcements,
overflow limits) and tells its runtime the earliest one; the runtime calls
back with the time when it has come. Cancelling marks a timer dead instead of
searching the heap; dead timers are dropped when they reach the top.
"""

from __future__ import annotations

import heapq
from enum import Enum
from itertools import count


class TimerKind(Enum):
    RING_TIMEOUT = "ring_timeout"
    WRAP_UP_END = "wrap_up_end"
    AFFINITY_END = "affinity_end"
    RELAX = "relax"
    REVIEW = "review"  # announce position and EWT, check EWT overflow
    WAIT_OVERFLOW = "wait_overflow"


class Timer:
    """One deadline for one subject (a call, an agent or a reservation)."""

    __slots__ = ("cancelled", "deadline", "kind", "subject")

    def __init__(self, deadline: float, kind: TimerKind, subject: object) -> None:
        self.deadline = deadline
        self.kind = kind
        self.subject = subject
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """A heap of timers ordered by deadline, then by rank, then by the order they were set.

    The rank settles ties between timers due at the same moment: two callers
    who entered a queue together relax at the same instant, and the one who
    is ahead in the queue must be looked at first.
    """

    __slots__ = ("_heap", "_order")

    def __init__(self) -> None:
        self._heap: list[tuple[float, tuple[float, ...], int, Timer]] = []
        self._order = count()

    def set(
        self, deadline: float, kind: TimerKind, subject: object, rank: tuple[float, ...] = ()
    ) -> Timer:
        timer = Timer(deadline, kind, subject)
        heapq.heappush(self._heap, (deadline, rank, next(self._order), timer))
        return timer

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][3].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> Timer | None:
        """The earliest live timer due at or before ``now``, removed; None when none is due."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[3]
            if not timer.cancelled:
                timer.cancelled = True  # fired: a later cancel() is harmless
                return timer
        return None

    def __len__(self) -> int:
        return len(self._heap)
