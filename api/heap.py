"""The garbage collector's policy for a long-running server: short pauses, nothing kept forever.

CPython's full collection walks every tracked object, and a server with a
thousand desktops connected holds a few hundred thousand of them (each
WebSocket is a stack of coroutines, buffers and protocol objects that live as
long as the connection). Walked every few seconds, they cost pauses of 100 ms
and more, and every call routed during a pause waits for it.

So what survives a full collection is moved out of the collector's sight:
``tend``, called every second or so, notices that a full collection has run
since it last looked and freezes the survivors (``gc.freeze``, which costs
nothing: it moves a list). The next full collection then walks only what is
younger, and the heap the collector walks stays about the size of what a few
seconds of work leave behind. Frozen objects are still freed when nothing
refers to them; only garbage *cycles* among them wait, so every
``refresh_seconds`` everything is unfrozen, collected in full (one pause) and
frozen again, and no cycle lives longer than that.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from enum import Enum


class Tended(Enum):
    """What one call of ``tend`` did."""

    NOTHING = "nothing"
    FROZE = "froze"  # a full collection had run: its survivors are frozen
    REFRESHED = "refreshed"  # unfrozen, collected in full, frozen again


def full_collections() -> int:
    """How many times the collector has walked the oldest generation."""
    return int(gc.get_stats()[2]["collections"])


class Heap:
    def __init__(
        self, *, refresh_seconds: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._refreshed = clock()
        self._full = full_collections()

    def install(self) -> None:
        """Freeze what exists now (the configuration, loaded at start: it lives as long)."""
        gc.collect()
        gc.freeze()
        self._full = full_collections()

    def tend(self) -> Tended:
        """Freeze or refresh if it is time; cheap, meant to be called every second or so."""
        if self._clock() - self._refreshed >= self._refresh_seconds:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._refreshed = self._clock()
            self._full = full_collections()
            return Tended.REFRESHED
        full = full_collections()
        if full != self._full:
            self._full = full
            gc.freeze()
            return Tended.FROZE
        return Tended.NOTHING
