"""The pacer: one 20 ms timer for every leg of the process that sends frames of its own.

Theory of operation. A leg playing a prompt owes its far end one packet every
20 ms. Rather than one task per leg waking 50 times a second (500 calls would
mean 25,000 wake-ups a second), one task ticks on a fixed grid, ``k × 20 ms``
of the event loop's clock, and asks each leg it holds for the frames that
have come due (``Paced.pace``). A leg starts its schedule on a grid point, so
its frames fall due exactly at ticks; frame n of a schedule is due at
``start + n × 20 ms`` however late the ticks that send it run (the leg's
``RtpStream`` counts the frames, not the ticks), so the schedule never drifts.

A late tick (the loop was busy) runs at once and the legs send everything
that has come due, catching up; a tick more than a whole period late skips
the grid points it missed rather than run them back to back, since one tick
already sends every frame due by then. Legs that have nothing to send leave
the set (``pace`` returns False) and the task sleeps on an event until one
comes back, so an idle server does not wake at all.

Lateness is measured for every frame sent: the tick's actual time minus the
frame's due time, into a 1 ms histogram (``PacerStatistics``); the benchmark
and the metrics exporter read it. Relayed packets are not paced, but the
pacer, as the process's media clock, keeps their meter too
(``relayed_meter``, fed by the bridges: ``ivr.media.bridge``), so that one
place answers "is the media on time". Time is read in one place, ``now()``, from
the running loop unless a clock is passed in: tests hand in a number and
call ``tick(now)`` themselves, without the task.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

PERIOD = 0.020  # seconds: 20 ms packets, the G.711 default (RFC 3551 §4.5)
# Frames due within this much after a tick go with it: the grid is float
# arithmetic on the loop clock, and a frame must not wait a whole period for
# a rounding error of a nanosecond.
SLACK = 1e-4
_ON_GRID = 1e-6  # of a period: closer than this to a grid point is on it
HISTOGRAM_BINS = 101  # 1 ms bins from 0 to 100 ms; the last one holds all later


class Paced(Protocol):
    """What the pacer ticks: a leg with frames of its own to send."""

    def pace(self, now: float, meter: LatenessMeter) -> bool:
        """Send the frames due by ``now``; False when there is nothing more to pace."""
        ...


class LatenessMeter:
    """Counts how late each frame went out, against its due time."""

    __slots__ = ("frames", "histogram", "late_frames", "max_lateness", "now", "period", "total")

    def __init__(self, period: float = PERIOD) -> None:
        self.period = period
        self.now = 0.0  # the actual time of the tick in progress
        self.frames = 0
        self.total = 0.0
        self.max_lateness = 0.0
        self.late_frames = 0  # sent a whole period or more after their due time
        self.histogram = [0] * HISTOGRAM_BINS

    def frame(self, due: float) -> None:
        """One frame, due at ``due``, goes out now."""
        self.observe(self.now - due)

    def observe(self, lateness: float) -> None:
        """One frame or packet, ``lateness`` seconds after its due time."""
        if lateness < 0.0:
            lateness = 0.0  # within the slack: early by a rounding error
        self.frames += 1
        self.total += lateness
        if lateness > self.max_lateness:
            self.max_lateness = lateness
        if lateness >= self.period:
            self.late_frames += 1
        bin_ = int(lateness * 1000.0 + 1e-6)  # 1 µs of float slack at the bin edges
        self.histogram[min(bin_, HISTOGRAM_BINS - 1)] += 1


@dataclass(frozen=True, slots=True, kw_only=True)
class LatenessStatistics:
    """What a ``LatenessMeter`` has counted (relayed packets: ``Pacer.relayed_statistics``)."""

    frames: int  # frames or packets measured
    late_frames: int  # a whole period (20 ms) or more after their due time
    total_lateness: float  # seconds, summed: Prometheus's histogram sum
    max_lateness: float
    histogram: tuple[int, ...]  # by lateness in whole milliseconds; the last bin: ≥ 100


@dataclass(frozen=True, slots=True, kw_only=True)
class PacerStatistics:
    """How the pacer has kept time since it started (or since ``reset_statistics``)."""

    legs: int  # legs being paced now
    ticks: int
    skipped_ticks: int  # grid points passed over because a tick ran a whole period late
    max_tick_lateness: float  # seconds
    frames: int
    late_frames: int  # frames sent a whole period (20 ms) or more after their due time
    mean_lateness: float  # seconds, over frames
    max_lateness: float
    histogram: tuple[int, ...]  # frames by lateness in whole milliseconds; the last bin: ≥ 100

    def percentile(self, fraction: float) -> float:
        """The lateness (seconds, to the ms above) under which ``fraction`` of the frames went."""
        if not self.frames:
            return 0.0
        wanted = fraction * self.frames
        seen = 0
        for millis, count in enumerate(self.histogram):
            seen += count
            if seen >= wanted:
                return (millis + 1) / 1000.0
        return HISTOGRAM_BINS / 1000.0


class Pacer:
    """Ticks every 20 ms on one grid and lets each paced leg send what has come due."""

    __slots__ = (
        "_clock",
        "_last_deadline",
        "_legs",
        "_max_tick_lateness",
        "_meter",
        "_skipped",
        "_ticks",
        "_wake",
        "period",
        "relayed_meter",
    )

    def __init__(self, *, clock: Callable[[], float] | None = None, period: float = PERIOD) -> None:
        self.period = period
        self._clock = clock
        self._legs: dict[Paced, None] = {}  # insertion-ordered: legs are served in turn
        self._wake = asyncio.Event()
        self._meter = LatenessMeter(period)
        self.relayed_meter = LatenessMeter(period)  # fed by the bridges, not by the ticks
        self._last_deadline: float | None = None
        self._ticks = 0
        self._skipped = 0
        self._max_tick_lateness = 0.0

    def now(self) -> float:
        """The media clock: the running loop's, unless a clock was passed in."""
        if self._clock is not None:
            return self._clock()
        return asyncio.get_running_loop().time()

    def next_tick(self, now: float) -> float:
        """The first grid point at or after ``now`` (a rounding error past it counts as on it)."""
        return math.ceil(now / self.period - _ON_GRID) * self.period

    def align(self, now: float) -> float:
        """The last grid point at or before ``now`` (a rounding error before it counts as on it)."""
        return math.floor(now / self.period + _ON_GRID) * self.period

    def __len__(self) -> int:
        return len(self._legs)

    def __contains__(self, leg: object) -> bool:
        return leg in self._legs

    def add(self, leg: Paced) -> None:
        """Pace ``leg`` from the next tick on, until its ``pace`` returns False."""
        self._legs[leg] = None
        self._wake.set()

    def discard(self, leg: Paced) -> None:
        self._legs.pop(leg, None)

    def tick(self, now: float, *, actual: float | None = None) -> None:
        """Let every paced leg send what is due by ``now``; ``actual``: when the tick really ran."""
        self._meter.now = now if actual is None else actual
        due = now + SLACK
        meter = self._meter
        finished = [leg for leg in tuple(self._legs) if not leg.pace(due, meter)]
        for leg in finished:
            self._legs.pop(leg, None)

    async def run(self) -> None:
        """Tick for ever (until cancelled): run it in the server's task group."""
        period = self.period
        while True:
            if not self._legs:
                self._wake.clear()
                await self._wake.wait()
                self._last_deadline = None
                continue
            now = self.now()
            last = self._last_deadline
            if last is None:
                deadline = self.next_tick(now)
            else:
                deadline = last + period
                if now - deadline >= period:  # a whole period late: skip the missed points
                    skipped = self.align(now)
                    self._skipped += round((skipped - deadline) / period)
                    deadline = skipped
            # Yield every tick, even one already due: a loop whose ticks take longer
            # than a period would otherwise never let the sockets, SIP or HTTP run.
            await asyncio.sleep(max(0.0, deadline - now))
            now = self.now()
            self._last_deadline = deadline
            self._ticks += 1
            lateness = now - deadline
            if lateness > self._max_tick_lateness:
                self._max_tick_lateness = lateness
            self.tick(max(now, deadline), actual=now)

    def statistics(self) -> PacerStatistics:
        meter = self._meter
        return PacerStatistics(
            legs=len(self._legs),
            ticks=self._ticks,
            skipped_ticks=self._skipped,
            max_tick_lateness=self._max_tick_lateness,
            frames=meter.frames,
            late_frames=meter.late_frames,
            mean_lateness=meter.total / meter.frames if meter.frames else 0.0,
            max_lateness=meter.max_lateness,
            histogram=tuple(meter.histogram),
        )

    def relayed_statistics(self) -> LatenessStatistics:
        """How late relayed packets reached us against their RTP timestamps (bridges)."""
        meter = self.relayed_meter
        return LatenessStatistics(
            frames=meter.frames,
            late_frames=meter.late_frames,
            total_lateness=meter.total,
            max_lateness=meter.max_lateness,
            histogram=tuple(meter.histogram),
        )

    def reset_statistics(self) -> None:
        """Start counting afresh (a benchmark's warm-up is over)."""
        self._meter = LatenessMeter(self.period)
        self.relayed_meter = LatenessMeter(self.period)
        self._ticks = 0
        self._skipped = 0
        self._max_tick_lateness = 0.0
