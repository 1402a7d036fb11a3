"""RFC 4733 telephone-events: the payload, the sender's packet run, the receiver's digits.

The sender: one marked start packet, updates every 20 ms with a growing
duration, the final report with the E bit sent three times, all under the
press's first timestamp. The receiver: each press reported exactly once
whatever the network does to its packets (duplicates, a lost start, only the
end packets, reordering within a press, a long press, a press in segments),
two presses of one key told apart by timestamp, nothing reported out of
order, other events ignored.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.rtp.dtmf import (
    DIGITS,
    DtmfError,
    DtmfReceiver,
    DtmfSender,
    EventPacket,
    KeyPressed,
    TelephoneEvent,
    event_code,
)
from ivr.rtp.packet import RtpPacket
from ivr.rtp.stream import RtpStream

SSRC = 0x5EED
EVENT_PT = 101


def test_a_payload_reads_back_its_fields() -> None:
    payload = bytes.fromhex("05 8a 0320")
    event = TelephoneEvent.parse(payload)
    assert event == TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert event.digit == "5"
    assert event.serialize() == payload


def test_the_reserved_bit_is_ignored() -> None:
    assert TelephoneEvent.parse(bytes.fromhex("0b 4a 00a0")) == TelephoneEvent(
        event=11, end=False, volume=10, duration=160
    )


def test_a_short_payload_is_a_dtmf_error() -> None:
    with pytest.raises(DtmfError):
        TelephoneEvent.parse(b"\x05\x8a\x03")


@given(st.binary(max_size=8))
def test_arbitrary_payloads_parse_or_raise_dtmf_error(payload: bytes) -> None:
    try:
        event = TelephoneEvent.parse(payload)
    except DtmfError:
        return
    assert event.serialize() == bytes([payload[0], payload[1] & 0xBF]) + payload[2:4]


def test_fields_out_of_range_are_refused_when_serializing() -> None:
    with pytest.raises(ValueError):
        TelephoneEvent(event=1, volume=64).serialize()
    with pytest.raises(ValueError):
        TelephoneEvent(event=1, duration=0x10000).serialize()


def test_the_sixteen_keys_have_their_event_codes() -> None:
    assert [event_code(key) for key in "0123456789*#ABCD"] == list(range(16))
    assert event_code("d") == 15
    for bad in ("E", "12", "", "+"):
        with pytest.raises(ValueError):
            event_code(bad)
    assert TelephoneEvent(event=16).digit is None  # flash


def test_a_press_is_a_marked_start_growing_updates_and_three_end_packets() -> None:
    packets = DtmfSender().packets("5", timestamp=1000)
    assert [p.slot for p in packets] == list(range(7))
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert {p.timestamp for p in packets} == {1000}
    assert [p.event.duration for p in packets] == [160, 320, 480, 640, 800, 800, 800]
    assert [p.event.end for p in packets] == [False] * 4 + [True] * 3
    assert {(p.event.event, p.event.volume) for p in packets} == {(5, 10)}
    assert packets[-1].payload == bytes.fromhex("05 8a 0320")


def test_a_tone_between_packet_intervals_ends_on_its_own_duration() -> None:
    packets = DtmfSender(duration=500).packets("#", timestamp=0)
    assert [p.event.duration for p in packets] == [160, 320, 480, 500, 500, 500]
    assert [p.event.end for p in packets] == [False, False, False, True, True, True]


def test_a_tone_shorter_than_one_interval_starts_and_ends_in_its_first_packet() -> None:
    packets = DtmfSender(duration=100).packets("1", timestamp=0)
    assert [(p.marker, p.event.end, p.event.duration) for p in packets] == [
        (True, True, 100),
        (False, True, 100),
        (False, True, 100),
    ]


def test_the_sender_refuses_a_tone_too_long_for_one_segment() -> None:
    with pytest.raises(ValueError):
        DtmfSender(duration=0x10000)


def rtp(event: EventPacket, seq: int, ssrc: int = SSRC) -> RtpPacket:
    return RtpPacket(
        payload_type=EVENT_PT,
        sequence_number=seq & 0xFFFF,
        timestamp=event.timestamp,
        ssrc=ssrc,
        marker=event.marker,
        payload=event.payload,
    )


def press(digit: str, timestamp: int, first_seq: int = 0, **sender: int) -> list[RtpPacket]:
    events = DtmfSender(**sender).packets(digit, timestamp=timestamp)
    return [rtp(event, first_seq + i) for i, event in enumerate(events)]


def heard(receiver: DtmfReceiver, packets: list[RtpPacket]) -> str:
    found = [receiver.receive(packet) for packet in packets]
    return "".join(key.digit for key in found if key is not None)


def test_a_press_is_reported_once_on_its_first_packet() -> None:
    receiver = DtmfReceiver()
    packets = press("7", timestamp=8000)
    assert receiver.receive(packets[0]) == KeyPressed(digit="7", timestamp=8000, ssrc=SSRC)
    assert heard(receiver, packets[1:]) == ""
    assert receiver.duplicates == len(packets) - 1


def test_duplicated_packets_report_a_press_once() -> None:
    packets = press("3", timestamp=0)
    assert heard(DtmfReceiver(), [p for p in packets for _ in range(2)]) == "3"


def test_a_press_whose_start_was_lost_is_reported_from_an_update() -> None:
    receiver = DtmfReceiver()
    packets = press("9", timestamp=160)
    assert receiver.receive(packets[1]) == KeyPressed(digit="9", timestamp=160, ssrc=SSRC)
    assert heard(receiver, packets[2:]) == ""


def test_a_press_heard_only_by_its_end_packets_is_reported_once() -> None:
    packets = press("*", timestamp=0)
    assert heard(DtmfReceiver(), [p for p in packets if TelephoneEvent.parse(p.payload).end]) == "*"


def test_packets_of_a_press_out_of_order_report_it_once() -> None:
    packets = press("0", timestamp=0)
    assert heard(DtmfReceiver(), [packets[2], packets[0], packets[1], *packets[3:]]) == "0"


def test_a_long_press_is_one_digit() -> None:
    packets = press("5", timestamp=0, duration=3 * 8000)  # held for three seconds
    assert len(packets) == 152
    assert heard(DtmfReceiver(), packets) == "5"


def test_two_presses_of_the_same_key_are_two_digits() -> None:
    first = press("4", timestamp=1000)
    second = press("4", timestamp=1000 + 8 * 160, first_seq=len(first))
    assert heard(DtmfReceiver(), first + second) == "44"


def test_a_late_packet_of_an_earlier_press_is_not_reported_again() -> None:
    receiver = DtmfReceiver()
    first = press("1", timestamp=0)
    second = press("2", timestamp=2000, first_seq=10)
    assert heard(receiver, first[:3] + second[:2] + first[3:] + second[2:]) == "12"
    assert receiver.stale == len(first) - 3


def test_a_press_whose_packets_all_come_after_the_next_press_is_dropped_not_misordered() -> None:
    receiver = DtmfReceiver()
    assert heard(receiver, press("2", timestamp=2000) + press("1", timestamp=0)) == "2"


def test_timestamps_that_wrap_still_order_presses() -> None:
    first = press("8", timestamp=2**32 - 160)
    second = press("9", timestamp=1280, first_seq=7)
    assert heard(DtmfReceiver(), first + second) == "89"


def test_a_press_sent_in_segments_is_one_digit() -> None:
    # RFC 4733 §2.5.1.3: past 0xFFFF units a new segment starts where the last
    # ended, same event, no marker.
    def report(timestamp: int, duration: int, *, marker: bool = False) -> RtpPacket:
        payload = TelephoneEvent(event=6, duration=duration).serialize()
        return RtpPacket(
            payload_type=EVENT_PT,
            sequence_number=0,
            timestamp=timestamp,
            ssrc=SSRC,
            marker=marker,
            payload=payload,
        )

    packets = [report(0, 160, marker=True), report(0, 0xFFF0), report(0, 0xFFFF)]
    packets += [report(0xFFFF, 160), report(0xFFFF, 5000)]
    receiver = DtmfReceiver()
    assert heard(receiver, packets) == "6"
    # A new press of the same key after a long one still counts: it has the marker.
    assert heard(receiver, [report(0xFFFF + 6000, 160, marker=True)]) == "6"


def test_a_new_source_starts_afresh() -> None:
    receiver = DtmfReceiver()
    assert heard(receiver, press("1", timestamp=50_000)) == "1"
    other = [
        rtp(event, i, ssrc=SSRC + 1)
        for i, event in enumerate(DtmfSender().packets("2", timestamp=10))
    ]
    assert heard(receiver, other) == "2"


def test_other_events_and_malformed_payloads_are_ignored() -> None:
    receiver = DtmfReceiver()
    flash = RtpPacket(
        payload_type=EVENT_PT,
        sequence_number=1,
        timestamp=0,
        ssrc=SSRC,
        payload=TelephoneEvent(event=16, duration=160).serialize(),
    )
    broken = RtpPacket(payload_type=EVENT_PT, sequence_number=2, timestamp=0, ssrc=SSRC)
    assert receiver.receive(flash) is None
    assert receiver.receive(broken) is None
    assert (receiver.ignored, receiver.malformed) == (1, 1)


def test_digits_sent_through_a_stream_are_heard_in_order() -> None:
    stream = RtpStream(
        payload_type=0, event_payload_type=EVENT_PT, start=0.0, ssrc=SSRC, timestamp=4000
    )
    sender, receiver = DtmfSender(), DtmfReceiver()
    heard_digits = []
    for digit in "1234#":
        for event in sender.packets(digit, timestamp=stream.next_timestamp):
            datagram = stream.stamp_event(event).serialize()
            key = receiver.receive(RtpPacket.parse(datagram))
            if key is not None:
                heard_digits.append(key.digit)
        for _ in range(3):  # a pause between presses, as audio
            stream.stamp(b"\xff" * 160)
    assert "".join(heard_digits) == "1234#"


@given(
    digits=st.text(alphabet=DIGITS, min_size=1, max_size=6),
    fates=st.lists(st.integers(0, 2), min_size=60, max_size=60),
    seed=st.integers(0, 2**16),
)
def test_each_press_with_any_packet_through_is_heard_exactly_once_and_in_order(
    digits: str, fates: list[int], seed: int
) -> None:
    # Each packet is lost, delivered, or delivered twice; packets of one press
    # are shuffled among themselves.
    shuffle = random.Random(seed).shuffle
    arriving: list[RtpPacket] = []
    expected = ""
    timestamp, seq, fate = 0, 0, iter(fates * 2)
    for digit in digits:
        packets = press(digit, timestamp=timestamp, first_seq=seq)
        seq += len(packets)
        timestamp += (len(packets) + 2) * 160
        kept = [packet for packet in packets for _ in range(next(fate))]
        shuffle(kept)
        arriving += kept
        if kept:
            expected += digit
    assert heard(DtmfReceiver(), arriving) == expected
