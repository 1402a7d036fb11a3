"""The garbage collector's policy for a long-running server: short pauses, nothing kept forever.

CPython's full collection walks every tracked object, and a server with a
thousand desktops connected holds a few hundred thousand of them (each
WebSocket is a stack of coroutines, buffers and protocol objects that live as
long as the connection). Walked every few seconds, they cost pauses of 100 ms
and more, and every call routed during a pause waits for it.

So objects that have proved long-lived are moved out of the collector's
sight (``gc.freeze``): whenever the objects in the oldest generation have
grown past ``growth`` times what was last frozen (and at least
``min_objects``), ``tend`` collects them once and freezes the survivors. The
cost of those collections is geometric, so it adds up to a small constant
share of the work. Frozen objects are still freed when nothing refers to
them; only garbage *cycles* among them wait, so every ``refresh_seconds``
everything is unfrozen, collected in full (one pause) and frozen again, and
no cycle lives longer than that.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tended:
    """What one call of ``tend`` did: nothing, a freeze of the young, or a full refresh."""

    action: str  # "none", "freeze" or "refresh"
    objects: int  # objects in the oldest generation before it
    frozen: int  # objects frozen after it


class Heap:
    def __init__(
        self,
        *,
        min_objects: int = 50_000,
        growth: float = 1.0,
        refresh_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._min_objects = min_objects
        self._growth = growth
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._refreshed = clock()
        self.freezes = 0
        self.refreshes = 0

    def install(self) -> None:
        """Freeze what exists now (the configuration, loaded at start: it lives as long)."""
        gc.collect()
        gc.freeze()

    def tend(self) -> Tended:
        """Freeze or refresh if it is time; meant to be called every few seconds."""
        oldest = len(gc.get_objects(generation=2))
        frozen = gc.get_freeze_count()
        if self._clock() - self._refreshed >= self._refresh_seconds:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._refreshed = self._clock()
            self.refreshes += 1
            return Tended("refresh", oldest, gc.get_freeze_count())
        if oldest >= max(self._min_objects, self._growth * frozen):
            gc.collect()
            gc.freeze()
            self.freezes += 1
            return Tended("freeze", oldest, gc.get_freeze_count())
        return Tended("none", oldest, frozen)
