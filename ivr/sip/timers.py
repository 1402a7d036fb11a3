"""SIP's timers as data (RFC 3261 §17 and Appendix A, RFC 6026 §8), and a schedule of deadlines.

Theory of operation
-------------------
Every SIP timer is a duration derived from three constants: T1 (an estimate
of the round-trip time, 500 ms), T2 (the longest interval between
retransmissions of a non-INVITE request or an INVITE's final response, 4 s)
and T4 (how long a message may linger in the network, 5 s). ``Timers`` holds
the three and answers "how long is timer X on this transport" from RFC 3261
Appendix A's table (with RFC 6026's L and M): the retransmission timers
(A, E, G) start at T1 and double, E and G capped at T2; the timeouts (B, F,
H, J, L, M) are 64*T1; D, I and K cover the lifetime of stray
retransmissions. On a reliable transport nothing is retransmitted and the
wait-for-stragglers timers (D, I, J, K) are zero (§17.1.1.2, §17.1.2.2,
§17.2.1, §17.2.2).

``Schedule`` is where a sans-IO core keeps its armed timers: a heap of
``(deadline, owner, timer)`` with at most one live deadline per
``(owner, timer)``. Re-arming or cancelling a timer leaves its old heap entry
behind, to be skipped when it surfaces; when skipped entries outnumber live
ones the heap is rebuilt, so its size stays within a constant factor of the
armed timers. Nothing here reads a clock: deadlines are numbers, and the
caller asks what is due at ``now``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar


class TimerName(Enum):
    """The transaction timers of RFC 3261 Appendix A and RFC 6026 §8."""

    __hash__ = object.__hash__  # members are singletons; Enum's hash is Python code

    A = "A"  # INVITE client: request retransmission (unreliable transports)
    B = "B"  # INVITE client: transaction timeout
    D = "D"  # INVITE client: wait for response retransmissions after a failure
    E = "E"  # non-INVITE client: request retransmission (unreliable transports)
    F = "F"  # non-INVITE client: transaction timeout
    G = "G"  # INVITE server: final response retransmission (unreliable transports)
    H = "H"  # INVITE server: wait for the ACK
    I = "I"  # noqa: E741  # INVITE server: wait for ACK retransmissions
    J = "J"  # non-INVITE server: wait for request retransmissions
    K = "K"  # non-INVITE client: wait for response retransmissions
    L = "L"  # INVITE server: wait for INVITE retransmissions after a 2xx (RFC 6026)
    M = "M"  # INVITE client: wait for more 2xx after the first (RFC 6026)


_TIMEOUTS = frozenset({TimerName.B, TimerName.F, TimerName.H, TimerName.L, TimerName.M})
_RETRANSMISSIONS = frozenset({TimerName.A, TimerName.E, TimerName.G})


@dataclass(frozen=True, slots=True, kw_only=True)
class Timers:
    """T1, T2 and T4 (RFC 3261 §17.1.1.1), and every timer derived from them."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        if not (0 < self.t1 <= self.t2) or self.t4 <= 0:
            raise ValueError("timers need 0 < T1 <= T2 and T4 > 0")

    @property
    def timeout(self) -> float:
        """64*T1: how long a transaction lives without an answer (timers B, F, H, J, L, M)."""
        return 64 * self.t1

    def duration(self, timer: TimerName, *, reliable: bool) -> float:
        """The initial value of ``timer`` (RFC 3261 Appendix A, RFC 6026 §8.4 and §8.7).

        A retransmission timer on a reliable transport is never armed: asking for
        one is a bug in the caller.
        """
        if timer in _RETRANSMISSIONS:
            if reliable:
                raise ValueError(f"timer {timer.value} is not used on a reliable transport")
            return self.t1
        if timer in _TIMEOUTS:
            return self.timeout
        if reliable:  # D, I, J, K: nothing can straggle in on a reliable transport
            return 0.0
        if timer is TimerName.D:
            return max(32.0, self.timeout)  # §17.1.1.2: "at least 32 seconds", H's worth
        if timer is TimerName.J:
            return self.timeout  # §17.2.2: 64*T1 on an unreliable transport
        return self.t4  # I and K: T4

    def backed_off(self, interval: float, *, cap: bool = True) -> float:
        """The next retransmission interval: doubled, and no more than T2 when ``cap``.

        Timer A doubles without bound (§17.1.1.2); E and G stop at T2
        (§17.1.2.2, §17.2.1), and so do a UAS core's 2xx retransmissions (§13.3.1.4).
        """
        doubled = 2 * interval
        return min(doubled, self.t2) if cap else doubled


K = TypeVar("K", bound=Hashable)
N = TypeVar("N", bound=Hashable)


class Schedule(Generic[K, N]):
    """Deadlines armed by owners (a transaction, a dialog), one per ``(owner, timer)``."""

    __slots__ = ("_heap", "_live", "_live_count", "_sequence")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K, N]] = []
        self._live: dict[K, dict[N, tuple[float, int]]] = {}
        self._live_count = 0
        self._sequence = itertools.count()  # ties in time fire in the order armed

    def __len__(self) -> int:
        """How many timers are armed."""
        return self._live_count

    @property
    def entries(self) -> int:
        """Heap entries, live and stale: bounded by a constant factor of ``len``."""
        return len(self._heap)

    def arm(self, owner: K, timer: N, at: float) -> None:
        """Arm ``timer`` of ``owner`` to fire at ``at``, replacing any earlier deadline."""
        sequence = next(self._sequence)
        timers = self._live.setdefault(owner, {})
        if timer not in timers:
            self._live_count += 1
        timers[timer] = (at, sequence)
        heapq.heappush(self._heap, (at, sequence, owner, timer))
        self._compact()

    def cancel(self, owner: K, timer: N) -> None:
        timers = self._live.get(owner)
        if timers is not None and timers.pop(timer, None) is not None:
            self._live_count -= 1
            if not timers:
                del self._live[owner]
            self._compact()

    def cancel_all(self, owner: K) -> None:
        timers = self._live.pop(owner, None)
        if timers:
            self._live_count -= len(timers)
            self._compact()

    def deadline(self, owner: K, timer: N) -> float | None:
        """When ``timer`` of ``owner`` fires, or ``None`` when it is not armed."""
        armed = self._live.get(owner, {}).get(timer)
        return None if armed is None else armed[0]

    def next_deadline(self) -> float | None:
        """The earliest live deadline, or ``None`` when nothing is armed."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> tuple[K, N] | None:
        """The earliest timer due at ``now`` (disarmed as it is returned), or ``None``."""
        self._drop_stale()
        if not self._heap or self._heap[0][0] > now:
            return None
        _, _, owner, timer = heapq.heappop(self._heap)
        self.cancel(owner, timer)
        return owner, timer

    def _is_live(self, entry: tuple[float, int, K, N]) -> bool:
        armed = self._live.get(entry[2], {}).get(entry[3])
        return armed is not None and armed[1] == entry[1]

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and not self._is_live(heap[0]):
            heapq.heappop(heap)

    def _compact(self) -> None:
        if len(self._heap) > 2 * self._live_count + 64:
            self._heap = [entry for entry in self._heap if self._is_live(entry)]
            heapq.heapify(self._heap)


__all__ = ["Schedule", "TimerName", "Timers"]
