"""Estimated wait time (EWT): ours, position-aware, and Asterisk's as a baseline.

Ours: a caller with ``k`` calls ahead of them, competing for ``n`` agents
who will take calls, is answered at the (k+1)-th time one of those agents
frees up. Agents free up at ``n / AHT`` per second in all (AHT = talk + hold
+ wrap-up, a rolling mean of recent calls), so the wait is roughly
``(k + 1) * AHT / n``; the first release is brought forward by the time the
busy agents have already spent on their calls. With no handled call yet
there is no AHT, and "no estimate" is the honest answer.

The baseline is app_queue's: ``H <- (3H + w) / 4`` over the waits ``w`` of
answered calls only, announced as ``|H + 30 - waited|`` rounded down to the
minute (the 30 s only rounds). It ignores position; we compare it unrounded,
``|H - waited|``, against the wait each caller really had left.
"""

from __future__ import annotations

from collections import deque


class RollingMean:
    """Mean of the last ``size`` samples, in O(1) per sample."""

    __slots__ = ("_samples", "_size", "_total")

    def __init__(self, size: int = 200) -> None:
        self._samples: deque[float] = deque()
        self._size = size
        self._total = 0.0

    def add(self, value: float) -> None:
        self._samples.append(value)
        self._total += value
        if len(self._samples) > self._size:
            self._total -= self._samples.popleft()

    @property
    def count(self) -> int:
        return len(self._samples)

    @property
    def mean(self) -> float | None:
        return self._total / len(self._samples) if self._samples else None


class AsteriskEstimate:
    """Asterisk app_queue's hold-time estimator, per queue (the baseline)."""

    __slots__ = ("holdtime",)

    def __init__(self) -> None:
        self.holdtime = 0.0

    def record_answered(self, waited: float) -> None:
        # app_queue.c recalc_holdtime: holdtime = (3 * holdtime + newholdtime) / 4
        self.holdtime = (3.0 * self.holdtime + waited) / 4.0

    def estimate(self, waited: float) -> float:
        """The unrounded remaining wait the baseline gives a caller who has waited ``waited``."""
        return abs(self.holdtime - waited)

    def announced_minutes(self, waited: float) -> int:
        """What app_queue would say, in whole minutes."""
        return int(abs(self.holdtime + 30.0 - waited) // 60)


def estimate_wait(ahead: int, agents: int, aht: float | None) -> float | None:
    """Our EWT for a caller with ``ahead`` calls before them and ``agents`` ready agents."""
    if aht is None or agents <= 0:
        return None
    return (ahead + 1) * aht / agents
