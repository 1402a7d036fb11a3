"""The journal's records, and the spool file that holds them while the database is away.

A ``Record`` is one journal item as the database will store it: the events
row (none for a ``CallOpened`` note) and the contact changes derived from it.
The derivation runs once, when the writer takes the item; the spool keeps the
result, so draining it later, or after a restart, needs no memory of the
stream before it.

The spool is one JSON line per record, appended in order and fsynced before
the records count as durable. Only the journal's writer task touches it, one
operation at a time, always in a worker thread (an fsync may take
milliseconds, which the event loop must not wait for). A crash in the middle
of a write leaves at most one torn last line, never fsynced and so never
acknowledged; ``repair`` cuts it off.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from acd.events import Event
from api.store.contacts import Change, LegChanged, Legs, LegStarted, WrapUpRecorded
from cti.context import CallOpened
from cti.wire import ENTITIES, EVENT_TYPES, entity_id, event_data


@dataclass(frozen=True, slots=True)
class Record:
    """One journal item ready for the database: an events row (or None) and its contact changes."""

    event: dict[str, Any] | None
    changes: tuple[Change, ...]

    @property
    def seq(self) -> int | None:
        return None if self.event is None else int(self.event["seq"])


def record(item: Event | CallOpened, legs: Legs) -> Record:
    """The record of ``item``, deriving its contact changes (which advances ``legs``)."""
    changes = tuple(legs.derive(item))
    if isinstance(item, CallOpened):
        return Record(None, changes)
    kind = type(item)
    row = {
        "seq": item.seq,
        "at": item.at,
        "type": EVENT_TYPES[kind],
        "entity": ENTITIES[kind],
        "entity_id": entity_id(item),
        "from_state": _plain(item.from_state),
        "to_state": _plain(item.to_state),
        "data": event_data(item),
    }
    return Record(row, changes)


def _plain(value: Enum | None) -> str | None:
    return None if value is None else str(value.value)


def encode(record: Record) -> bytes:
    line = {"e": record.event, "c": [_change_json(c) for c in record.changes]}
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> Record:
    raw = json.loads(line)
    return Record(raw["e"], tuple(_change_of(c) for c in raw["c"]))


def _change_json(change: Change) -> dict[str, Any]:
    if isinstance(change, LegStarted):
        return {
            "k": "start",
            "call_id": change.call_id,
            "leg": change.leg,
            "queue_id": change.queue_id,
            "customer_id": change.customer_id,
            "ani": change.ani,
            "dnis": change.dnis,
            "data": change.data,
            "arrived_at": change.arrived_at,
            "enqueued_at": change.enqueued_at,
            "answered_at": change.answered_at,
            "agent_id": change.agent_id,
        }
    if isinstance(change, LegChanged):
        return {"k": "set", "call_id": change.call_id, "leg": change.leg, "values": change.values}
    return {
        "k": "wrap",
        "call_id": change.call_id,
        "agent_id": change.agent_id,
        "leg": change.leg,
        "disposition": change.disposition,
        "resolved": change.resolved,
        "at": change.at,
    }


def _change_of(raw: dict[str, Any]) -> Change:
    kind = raw.pop("k")
    if kind == "start":
        return LegStarted(**raw)
    if kind == "set":
        return LegChanged(**raw)
    if kind == "wrap":
        return WrapUpRecorded(**raw)
    raise ValueError(f"unknown change kind {kind!r} in the spool")


class Spool:
    """An append-only file of records; blocking calls, meant for a worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, records: Iterable[Record]) -> None:
        """Write the records at the end and fsync: once this returns they survive a crash."""
        created = not self.path.exists()
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as f:
            f.write(b"".join(encode(r) for r in records))
            f.flush()
            os.fsync(f.fileno())
        if created:
            _fsync_directory(self.path.parent)  # the file's name must survive too

    def read(self, offset: int, limit: int) -> tuple[list[Record], int]:
        """Up to ``limit`` whole records from byte ``offset``, and the offset after them."""
        records: list[Record] = []
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return records, offset
        with f:
            f.seek(offset)
            while len(records) < limit:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break  # end of file, or a torn line being ignored
                records.append(decode(line))
                offset += len(line)
        return records, offset

    def last_seq(self) -> int | None:
        """The seq of the last event in the spool, reading back from its end."""
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return None
        with f:
            start = f.seek(0, os.SEEK_END)
            carry = b""  # the end of a line that began before ``start``, with its newline
            first = True
            while start > 0:
                end, start = start, max(0, start - 65536)
                f.seek(start)
                data = f.read(end - start) + carry
                if first:  # anything after the last newline is a torn write
                    last = data.rfind(b"\n")
                    if last < 0:
                        continue
                    data, first = data[: last + 1], False
                if start > 0:
                    cut = data.find(b"\n") + 1  # before it: maybe only part of a line
                    carry, data = data[:cut], data[cut:]
                for line in reversed(data.split(b"\n")[:-1]):
                    seq = decode(line).seq
                    if seq is not None:
                        return seq
        return None

    def repair(self) -> None:
        """Cut a torn last line left by a crash in the middle of a write."""
        size = self.size()
        if size == 0:
            return
        with self.path.open("r+b") as f:
            start = max(0, size - 65536)
            while True:
                f.seek(start)
                block = f.read(size - start)
                cut = block.rfind(b"\n")
                if cut >= 0:
                    keep = start + cut + 1
                    break
                if start == 0:
                    keep = 0
                    break
                start = max(0, start - 65536)
            if keep != size:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())

    def clear(self) -> None:
        """Empty the spool: everything in it is in the database now."""
        if not self.path.exists():
            return
        with self.path.open("r+b") as f:
            f.truncate(0)
            f.flush()
            os.fsync(f.fileno())


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
