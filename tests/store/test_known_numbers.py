"""The in-memory filter of the directory's numbers, in front of every caller look-up."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.store.known_numbers import KnownNumbers


def test_a_number_is_known_from_its_addition_until_its_removal() -> None:
    numbers = KnownNumbers(["+33612345678"])
    assert "+33612345678" in numbers and "+33600000000" not in numbers
    numbers.add("+33600000000", "+33600000000")
    assert "+33600000000" in numbers and len(numbers) == 2
    numbers.discard("+33612345678", "+49000")
    assert "+33612345678" not in numbers and "+33600000000" in numbers
    numbers.replace(["+1"])
    assert list(n for n in ("+1", "+33600000000") if n in numbers) == ["+1"]


@given(st.sets(st.text(max_size=12)), st.sets(st.text(max_size=12)))
def test_membership_is_exactly_the_set_of_numbers_kept(kept: set[str], others: set[str]) -> None:
    numbers = KnownNumbers(kept | others)
    numbers.discard(*(others - kept))
    assert all(n in numbers for n in kept)
    assert not any(n in numbers for n in others - kept)  # a 64-bit hash collision: ~never
