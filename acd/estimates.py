"""Estimated wait time (EWT): ours, position-aware, and Asterisk's as a baseline.

Ours. A caller with ``k`` calls ahead is answered after ``k + 1`` steps
forward: each step is either an agent taking the call at the head, at the
rate ``r`` at which agents take this caller's kind of call, or one of the
``j`` callers still ahead giving up, at ``j·θ``. So (Erlang A's picture)

    EWT(k) = 1/r + Σ_{j=1..k} 1/(r + j·θ)

``r`` is measured: the mean gap between calls taken from the caller's
requirement profile while calls of it wait, which already accounts for
agents shared with other queues and for higher-priority calls. Until enough
gaps are seen it is ``n / AHT``: the ``n`` ready agents who can take the call,
each freeing up once per average handle time (talk + hold + wrap-up, a
rolling mean of the queue's recent calls). ``θ`` is the queue's reneging rate:
callers who gave up (hung up, took self-service, overflowed away) over the
total time callers waited, the maximum-likelihood estimate for exponential
patience. With no handled call and no measured rate there is no estimate,
and "no estimate" is the honest answer.

The baseline is app_queue's: ``H <- (3H + w) / 4`` over the waits ``w`` of
answered calls only, announced as ``|H + 30 - waited|`` rounded down to the
minute (the 30 s only rounds). It ignores position; we compare it unrounded,
``|H - waited|``, against the wait each caller really had left.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
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


class HandleTimes(RollingMean):
    """Recent handle times of a queue: their mean (AHT), and what is left of a call in progress.

    Handle times are far from memoryless (a call that has run long is likely
    to run on), so the expected remainder of a call ``elapsed`` seconds old is
    read off the recent calls that lasted longer: ``E[T - elapsed | T > elapsed]``.
    """

    __slots__ = ("_sorted",)

    def __init__(self, size: int = 200) -> None:
        super().__init__(size)
        self._sorted: list[float] = []  # the same samples, in order

    def add(self, value: float) -> None:
        if len(self._samples) == self._size:  # the oldest is about to drop out
            del self._sorted[bisect_left(self._sorted, self._samples[0])]
        super().add(value)
        insort(self._sorted, value)

    def remaining(self, elapsed: float) -> float | None:
        mean = self.mean
        if mean is None:
            return None
        ordered = self._sorted
        i = bisect_right(ordered, elapsed)
        longer = len(ordered) - i
        if longer == 0:  # longer than every recent call: it can't be long now
            return 0.25 * mean
        return sum(ordered[i:]) / longer - elapsed


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


class ServiceRate:
    """How fast agents take a profile's waiting calls, measured only while some wait."""

    __slots__ = ("_gaps", "_last_take", "_waiting_since")

    MIN_GAPS = 8

    def __init__(self, window: int = 50) -> None:
        self._gaps = RollingMean(window)
        self._last_take = -math.inf
        self._waiting_since = -math.inf

    def started_waiting(self, now: float) -> None:
        """The profile's waiting list went from empty to not empty."""
        self._waiting_since = now

    def took(self, now: float) -> None:
        """An agent took the call at the head of the waiting list."""
        self._gaps.add(now - max(self._last_take, self._waiting_since))
        self._last_take = now

    @property
    def per_second(self) -> float | None:
        mean = self._gaps.mean
        if self._gaps.count < self.MIN_GAPS or mean is None or mean <= 0:
            return None
        return 1.0 / mean


class Reneging:
    """How often waiting callers give up: departures without an agent per second waited."""

    __slots__ = ("_gave_up", "_waited", "_window", "_window_size")

    def __init__(self, window: int = 300) -> None:
        self._window: deque[tuple[float, bool]] = deque()
        self._window_size = window
        self._waited = 0.0
        self._gave_up = 0

    def left_queue(self, waited: float, gave_up: bool) -> None:
        self._window.append((waited, gave_up))
        self._waited += waited
        self._gave_up += gave_up
        if len(self._window) > self._window_size:
            old_wait, old_gave_up = self._window.popleft()
            self._waited -= old_wait
            self._gave_up -= old_gave_up

    @property
    def per_second(self) -> float:
        return self._gave_up / self._waited if self._waited > 0 else 0.0


def estimate_from_releases(ahead: int, releases: list[float], aht: float, reneging: float) -> float:
    """EWT(k) from each ready agent's expected time to free up (seconds from now).

    Each agent is taken to free up at the rate ``1 / remaining``; the caller
    moves one step at the sum of those rates plus the reneging of the callers
    still ahead. After each step the agent most likely to have freed up starts
    a new call, expected to last ``aht``.
    """
    rates = sorted((1.0 / max(r, 1.0) for r in releases), reverse=True)
    total_rate = sum(rates)
    restart = 1.0 / aht
    wait = 0.0
    for step in range(ahead + 1):
        wait += 1.0 / (total_rate + (ahead - step) * reneging)
        if step < len(rates):
            total_rate += restart - rates[step]
    return wait


_EXACT_TERMS = 64


def estimate_wait(ahead: int, rate: float, reneging: float) -> float:
    """EWT(k) above, for ``ahead`` = k calls ahead, taken at ``rate``, giving up at ``reneging``."""
    total = 1.0 / rate
    exact = min(ahead, _EXACT_TERMS)
    for j in range(1, exact + 1):
        total += 1.0 / (rate + j * reneging)
    if ahead > exact:  # the rest of the sum as its integral: smooth this far out
        if reneging > 0:
            base = rate + exact * reneging
            total += math.log1p((ahead - exact) * reneging / base) / reneging
        else:
            total += (ahead - exact) / rate
    return total
