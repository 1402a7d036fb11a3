"""The collector policy: survivors of full collections frozen, everything refreshed now and then."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from api.heap import Heap, Tended


@pytest.fixture
def clean_heap() -> Iterator[None]:
    gc.unfreeze()
    gc.collect()
    yield
    gc.unfreeze()


def test_the_survivors_of_a_full_collection_are_frozen(clean_heap: None) -> None:
    heap = Heap(refresh_seconds=600, clock=lambda: 0.0)
    heap.install()
    assert heap.tend() is Tended.NOTHING  # no full collection since
    kept = [[i] for i in range(1_000)]  # lists: always tracked
    frozen = gc.get_freeze_count()
    gc.collect()  # a full collection: they survive it
    assert heap.tend() is Tended.FROZE
    assert gc.get_freeze_count() >= frozen + len(kept)
    assert heap.tend() is Tended.NOTHING


def test_a_refresh_collects_garbage_cycles_among_frozen_objects(clean_heap: None) -> None:
    now = [0.0]
    heap = Heap(refresh_seconds=600, clock=lambda: now[0])

    class Node:
        me: object = None

    cycle = Node()
    cycle.me = cycle
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    del cycle  # garbage now, but frozen: no ordinary collection will find it
    gc.collect()
    assert gc.get_freeze_count() == frozen
    now[0] = 601.0
    assert heap.tend() is Tended.REFRESHED
    assert gc.get_freeze_count() < frozen
