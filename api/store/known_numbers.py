"""Which numbers belong to a known customer: a compact in-memory filter before the directory.

Every call that arrives asks the directory who the caller is, and on most
calls the answer is "nobody we know" (a first-time caller, a withheld or
foreign number). A database round trip per call to learn that costs more CPU
than routing the call, so the server keeps the set of every number in the
directory, as sorted 64-bit hashes (8 bytes a number: ten million numbers in
80 MB), and asks the database only about numbers in the set. A stray member
(a hash shared with a known number, a number whose removal failed half-way)
only costs a look-up that finds nobody.

This server is the directory's only writer, so the set stays exact: it is
loaded at start, and the routes that change numbers (one at a time) add a
number *before* its row is written and discard it only *after* its row is
gone, so no moment exists when a customer's number is missing from the set.
One exception, by arithmetic: discarding a number whose 64-bit hash another
number shares hides that other number until the next start; among ten
million numbers the chance that any two share a hash is about 3 in a million.
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable


def _key(number: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(number.encode(), digest_size=8).digest(), "big", signed=True
    )


class KnownNumbers:
    """The phone numbers of the directory, as a sorted array of hashes."""

    def __init__(self, numbers: Iterable[str] = ()) -> None:
        self._keys = array("q", sorted({_key(n) for n in numbers}))

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, str):
            return False
        keys, key = self._keys, _key(number)
        i = bisect_left(keys, key)
        return i < len(keys) and keys[i] == key

    def add(self, *numbers: str) -> None:
        for number in numbers:
            key = _key(number)
            i = bisect_left(self._keys, key)
            if i == len(self._keys) or self._keys[i] != key:
                self._keys.insert(i, key)

    def discard(self, *numbers: str) -> None:
        """Forget numbers that left the directory (a shared hash stays: no harm done)."""
        for number in numbers:
            key = _key(number)
            i = bisect_left(self._keys, key)
            if i < len(self._keys) and self._keys[i] == key:
                del self._keys[i]

    def replace(self, numbers: Iterable[str]) -> None:
        self._keys = array("q", sorted({_key(n) for n in numbers}))

    def __len__(self) -> int:
        return len(self._keys)
