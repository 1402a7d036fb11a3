"""The collector policy: long-lived objects frozen as the heap grows, all refreshed now and then."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from api.heap import Heap


@pytest.fixture
def clean_heap() -> Iterator[None]:
    gc.unfreeze()
    gc.collect()
    yield
    gc.unfreeze()


def test_objects_that_outlive_collections_are_frozen_once_the_oldest_generation_grows(
    clean_heap: None,
) -> None:
    now = [0.0]
    heap = Heap(min_objects=1_000, refresh_seconds=600, clock=lambda: now[0])
    gc.collect()
    gc.freeze()
    before = gc.get_freeze_count()
    assert heap.tend().action == "none"  # nothing grew
    kept = [[i] for i in range(2 * before + 2_000)]  # lists: always tracked
    gc.collect()  # they survive into the oldest generation
    tended = heap.tend()
    assert tended.action == "freeze"
    assert tended.frozen >= before + len(kept)
    assert len(gc.get_objects(generation=2)) < 1_000


def test_a_refresh_collects_garbage_cycles_among_frozen_objects(clean_heap: None) -> None:
    now = [0.0]
    heap = Heap(min_objects=10**9, refresh_seconds=600, clock=lambda: now[0])

    class Node:
        pass

    cycle = Node()
    cycle.me = cycle  # type: ignore[attr-defined]
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    del cycle  # garbage now, but frozen: no ordinary collection will find it
    gc.collect()
    assert gc.get_freeze_count() == frozen
    now[0] = 601.0
    assert heap.tend().action == "refresh"
    assert gc.get_freeze_count() < frozen


def test_install_freezes_what_exists(clean_heap: None) -> None:
    Heap().install()
    assert gc.get_freeze_count() > 0
