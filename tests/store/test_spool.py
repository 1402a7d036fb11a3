"""The spool file: records round-trip, torn writes are cut, the last seq is found from the end."""

from __future__ import annotations

from pathlib import Path

from api.store.contacts import Legs
from api.store.spool import Spool, decode, encode, record

from .streams import Stream


def test_a_record_survives_the_round_trip_through_json() -> None:
    s = Stream()
    s.answered_call("c1", 1.5, "a1", customer="cust1")
    legs = Legs()
    for item in s.items:
        rec = record(item, legs)
        assert decode(encode(rec)) == rec


def test_repair_cuts_a_torn_last_line_and_keeps_the_rest(tmp_path: Path) -> None:
    s = Stream()
    s.answered_call("c1", 0.0, "a1")
    legs = Legs()
    spool = Spool(tmp_path / "spool")
    spool.append([record(i, legs) for i in s.items])
    whole = spool.size()
    with spool.path.open("ab") as f:
        f.write(b'{"e":{"seq":')
    records, end = spool.read(0, 1000)
    assert len(records) == len(s.items) and end == whole  # a torn line is never read
    spool.repair()
    assert spool.size() == whole
    spool.clear()
    assert spool.size() == 0 and spool.last_seq() is None


def test_last_seq_reads_back_across_blocks_past_notes_and_a_torn_tail(tmp_path: Path) -> None:
    s = Stream()
    for n in range(400):  # well over one 64 KiB block
        s.answered_call(f"c{n}", float(n), "a1", customer="x" * 50)
    s.opened("last-note", 9999.0)
    legs = Legs()
    spool = Spool(tmp_path / "spool")
    spool.append([record(i, legs) for i in s.items])
    assert spool.size() > 3 * 65536
    with spool.path.open("ab") as f:
        f.write(b'{"e":{"seq":999999')
    assert spool.last_seq() == s.events[-1].seq
    assert Spool(tmp_path / "missing").last_seq() is None
