"""RTP packets on the wire and the sequence arithmetic of RFC 3550.

Parsing: the fixed header, CSRCs, an opaque header extension and padding are
read back as written; every malformed datagram (short, wrong version, CSRCs
or extension or padding overrunning it) is an RtpError, and arbitrary bytes
never raise anything else. Sequence tracking: wrap-around, duplicates, late
packets, gaps, strays and restarts, with the loss count an RTCP report needs.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.rtp.packet import (
    HeaderExtension,
    Order,
    RtpError,
    RtpPacket,
    SequenceTracker,
    seq_delta,
    timestamp_delta,
)


def test_a_plain_packet_reads_back_its_header_and_payload() -> None:
    datagram = bytes.fromhex("80 88 1234 000000a0 deadbeef") + b"\xff" * 160
    packet = RtpPacket.parse(datagram)
    assert packet == RtpPacket(
        payload_type=8,
        marker=True,
        sequence_number=0x1234,
        timestamp=160,
        ssrc=0xDEADBEEF,
        payload=b"\xff" * 160,
    )
    assert packet.serialize() == datagram


def test_csrcs_extension_and_padding_survive_a_round_trip() -> None:
    packet = RtpPacket(
        payload_type=0,
        sequence_number=65535,
        timestamp=2**32 - 1,
        ssrc=1,
        payload=b"abc",
        csrcs=(7, 8, 9),
        extension=HeaderExtension(profile=0xBEDE, data=b"\x10\xaa\x00\x00"),
        padding=5,
    )
    datagram = packet.serialize()
    assert len(datagram) == 12 + 3 * 4 + 4 + 4 + 3 + 5
    assert datagram[-1] == 5
    assert RtpPacket.parse(datagram) == packet


def test_padding_is_stripped_from_the_payload() -> None:
    datagram = bytes.fromhex("a0 00 0001 00000000 00000001") + b"voice" + b"\0\0\x03"
    assert RtpPacket.parse(datagram).payload == b"voice"


def test_a_memoryview_of_a_receive_buffer_parses() -> None:
    datagram = RtpPacket(payload_type=0, sequence_number=1, timestamp=2, ssrc=3).serialize()
    assert RtpPacket.parse(memoryview(bytearray(datagram))).ssrc == 3


@pytest.mark.parametrize(
    ("datagram", "complaint"),
    [
        (b"\x80\x00\x00\x01", "shorter"),
        (bytes.fromhex("40 00 0001 00000000 00000001"), "version 1"),
        (bytes.fromhex("c0 00 0001 00000000 00000001"), "version 3"),
        (bytes.fromhex("82 00 0001 00000000 00000001 00000002"), "CSRCs"),
        (bytes.fromhex("90 00 0001 00000000 00000001 bede"), "extension"),
        (bytes.fromhex("90 00 0001 00000000 00000001 bede0002 00000000"), "extension"),
        (bytes.fromhex("a0 00 0001 00000000 00000001 00"), "padding count of 0"),
        (bytes.fromhex("a0 00 0001 00000000 00000001 aa05"), "padding count of 5"),
    ],
)
def test_a_malformed_datagram_is_an_rtp_error(datagram: bytes, complaint: str) -> None:
    with pytest.raises(RtpError, match=complaint):
        RtpPacket.parse(datagram)


@given(st.binary(max_size=80))
def test_arbitrary_bytes_parse_or_raise_rtp_error(datagram: bytes) -> None:
    try:
        packet = RtpPacket.parse(datagram)
    except RtpError:
        return
    assert RtpPacket.parse(packet.serialize()) == packet


@given(
    pt=st.integers(0, 127),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 2**32 - 1),
    ssrc=st.integers(0, 2**32 - 1),
    marker=st.booleans(),
    payload=st.binary(max_size=200),
    csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=15).map(tuple),
    padding=st.integers(0, 255),
)
def test_any_packet_round_trips(
    pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    marker: bool,
    payload: bytes,
    csrcs: tuple[int, ...],
    padding: int,
) -> None:
    packet = RtpPacket(
        payload_type=pt,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        marker=marker,
        payload=payload,
        csrcs=csrcs,
        padding=padding,
    )
    assert RtpPacket.parse(packet.serialize()) == packet


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(payload_type=128, sequence_number=0, timestamp=0, ssrc=0),
        RtpPacket(payload_type=0, sequence_number=65536, timestamp=0, ssrc=0),
        RtpPacket(payload_type=0, sequence_number=0, timestamp=2**32, ssrc=0),
        RtpPacket(payload_type=0, sequence_number=0, timestamp=0, ssrc=0, csrcs=(0,) * 16),
        RtpPacket(payload_type=0, sequence_number=0, timestamp=0, ssrc=0, padding=256),
        RtpPacket(
            payload_type=0,
            sequence_number=0,
            timestamp=0,
            ssrc=0,
            extension=HeaderExtension(profile=1, data=b"abc"),
        ),
    ],
)
def test_serializing_a_field_out_of_range_is_our_value_error(packet: RtpPacket) -> None:
    with pytest.raises(ValueError) as raised:
        packet.serialize()
    assert not isinstance(raised.value, RtpError)


def test_sequence_and_timestamp_distances_wrap() -> None:
    assert seq_delta(0, 65535) == 1
    assert seq_delta(65535, 0) == -1
    assert seq_delta(5, 5) == 0
    assert seq_delta(0x8000, 0) == -0x8000
    assert timestamp_delta(80, 2**32 - 80) == 160
    assert timestamp_delta(2**32 - 80, 80) == -160


def test_the_tracker_extends_sequence_numbers_across_the_wrap() -> None:
    tracker = SequenceTracker()
    orders = [tracker.receive(seq).order for seq in (65534, 65535, 0, 1)]
    assert orders == [Order.FIRST, Order.NEXT, Order.NEXT, Order.NEXT]
    assert tracker.highest == 65536 + 1
    assert (tracker.expected, tracker.received, tracker.lost) == (4, 4, 0)


def test_a_duplicate_is_recognised_and_not_counted() -> None:
    tracker = SequenceTracker()
    for seq in (10, 11, 12):
        tracker.receive(seq)
    arrival = tracker.receive(11)
    assert arrival.order is Order.DUPLICATE
    assert not arrival.accepted
    assert tracker.receive(12).order is Order.DUPLICATE
    assert (tracker.received, tracker.duplicates, tracker.lost) == (3, 2, 0)


def test_a_gap_counts_as_loss_until_the_late_packet_fills_it() -> None:
    tracker = SequenceTracker()
    tracker.receive(100)
    gap = tracker.receive(103)
    assert gap.order is Order.GAP
    assert tracker.lost == 2
    late = tracker.receive(101)
    assert (late.order, late.extended) == (Order.LATE, 101)
    assert tracker.lost == 1
    assert tracker.reordered == 1


def test_a_late_packet_from_before_the_wrap_keeps_its_place() -> None:
    tracker = SequenceTracker()
    tracker.receive(65535)
    tracker.receive(1)  # 0 is missing
    late = tracker.receive(0)
    assert (late.order, late.extended) == (Order.LATE, 65536)
    assert tracker.lost == 0


def test_a_late_packet_older_than_the_first_one_widens_the_count() -> None:
    tracker = SequenceTracker()
    tracker.receive(0)
    late = tracker.receive(65535)
    assert (late.order, late.extended) == (Order.LATE, -1)
    assert (tracker.expected, tracker.received) == (2, 2)


def test_a_lone_wild_jump_is_a_stray_and_is_discarded() -> None:
    tracker = SequenceTracker()
    tracker.receive(1000)
    stray = tracker.receive(30000)
    assert (stray.order, stray.extended, stray.accepted) == (Order.STRAY, None, False)
    assert tracker.receive(1001).order is Order.NEXT
    assert tracker.highest == 1001
    assert tracker.strays == 1


def test_two_packets_in_a_row_after_a_jump_mean_the_source_restarted() -> None:
    tracker = SequenceTracker()
    for seq in (1000, 1001, 1002):
        tracker.receive(seq)
    assert tracker.receive(40000).order is Order.STRAY
    restart = tracker.receive(40001)
    assert (restart.order, restart.extended) == (Order.RESTART, 40001)
    assert tracker.receive(40002).order is Order.NEXT
    assert (tracker.expected, tracker.received) == (2, 2)


@given(st.lists(st.integers(0, 0xFFFF), max_size=60))
def test_the_tracker_never_counts_more_received_than_expected(seqs: list[int]) -> None:
    tracker = SequenceTracker()
    for seq in seqs:
        arrival = tracker.receive(seq)
        if arrival.accepted:
            assert arrival.extended is not None
            assert arrival.extended % 65536 == seq
    # Duplicates are never counted, so nothing is received twice.
    assert 0 <= tracker.received <= tracker.expected


def test_a_stream_in_order_with_losses_counts_exactly_what_was_lost() -> None:
    tracker = SequenceTracker()
    sent = range(60000, 60000 + 10000)
    dropped = {60010, 65535, 0, 4000}
    for seq in sent:
        if seq % 65536 not in dropped:
            tracker.receive(seq % 65536)
    assert tracker.expected == 10000
    assert tracker.lost == len(dropped)
