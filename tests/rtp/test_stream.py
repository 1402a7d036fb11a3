"""The outgoing RTP stream: paced frames, talkspurts, key presses, relaying across a source switch.

Time is a number here. Frame n is due at start + n × 20 ms however late the
ticks come; timestamps follow the frame slots, sequence numbers the packets;
the marker bit opens the stream and every talkspurt. Relayed packets take our
SSRC and follow on from what we sent last, so the far end sees one stream
from the prompts to the agent, to another agent, and back to prompts.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.rtp.dtmf import DtmfSender
from ivr.rtp.packet import RtpPacket, SequenceTracker, timestamp_delta
from ivr.rtp.stream import RtpStream

SILENCE = b"\xff" * 160
OURS = 0xAAAA0001
AGENT = 0xBBBB0002


def stream(**overrides: object) -> RtpStream:
    settings: dict[str, object] = {
        "payload_type": 0,
        "start": 100.0,
        "ssrc": OURS,
        "sequence_number": 1000,
        "timestamp": 50_000,
        "event_payload_type": 101,
    }
    settings.update(overrides)
    return RtpStream(**settings)  # type: ignore[arg-type]


def agent_packet(seq: int, timestamp: int, *, ssrc: int = AGENT, marker: bool = False) -> RtpPacket:
    return RtpPacket(
        payload_type=0,
        sequence_number=seq,
        timestamp=timestamp,
        ssrc=ssrc,
        marker=marker,
        payload=b"\x55" * 160,
    )


def test_frames_are_due_every_20_ms_from_the_start() -> None:
    s = stream()
    assert s.next_due == 100.0
    assert s.due(99.99) == 0
    assert s.due(100.0) == 1
    s.stamp(SILENCE)
    assert s.next_due == pytest.approx(100.02)
    assert s.due(100.019) == 0
    assert s.due(100.02) == 1


def test_a_late_tick_does_not_shift_the_schedule() -> None:
    s = stream()
    s.stamp(SILENCE)
    # The runtime wakes 70 ms after the second frame was due: four are due now,
    # and the next one stays on the 20 ms grid.
    assert s.due(100.09) == 4
    for _ in range(4):
        s.stamp(SILENCE)
    assert s.next_due == pytest.approx(100.10)
    assert s.due(100.09) == 0


def test_the_schedule_does_not_drift_over_an_hour() -> None:
    s = stream(start=1234.567)
    frames = 180_000  # one hour of 20 ms frames
    assert s.due(1234.567 + 3600.0 - 0.001) == frames
    for _ in range(frames - 1):
        s.skip()
    packet = s.stamp(SILENCE)
    assert packet.timestamp == (50_000 + (frames - 1) * 160) % 2**32
    assert s.next_due == pytest.approx(1234.567 + 3600.0, abs=1e-6)


def test_frames_count_up_sequence_and_timestamp_and_mark_only_the_first() -> None:
    s = stream()
    packets = [s.stamp(SILENCE) for _ in range(3)]
    assert [p.sequence_number for p in packets] == [1000, 1001, 1002]
    assert [p.timestamp for p in packets] == [50_000, 50_160, 50_320]
    assert [p.marker for p in packets] == [True, False, False]
    assert {(p.ssrc, p.payload_type) for p in packets} == {(OURS, 0)}
    assert (s.packets_sent, s.octets_sent) == (3, 480)


def test_counters_wrap() -> None:
    s = stream(sequence_number=65535, timestamp=2**32 - 160)
    first, second = s.stamp(SILENCE), s.stamp(SILENCE)
    assert (first.sequence_number, second.sequence_number) == (65535, 0)
    assert (first.timestamp, second.timestamp) == (2**32 - 160, 0)


def test_a_skipped_frame_moves_the_timestamp_not_the_sequence_and_marks_the_next() -> None:
    s = stream()
    s.stamp(SILENCE)
    s.skip()
    s.skip()
    resumed = s.stamp(SILENCE)
    assert (resumed.sequence_number, resumed.timestamp, resumed.marker) == (1001, 50_480, True)
    assert s.stamp(SILENCE).marker is False


def test_the_initial_values_are_random_when_not_given() -> None:
    streams = [RtpStream(payload_type=8, start=0.0) for _ in range(4)]
    assert len({s.ssrc for s in streams}) == 4
    assert all(0 <= s.ssrc < 2**32 and 0 <= s.next_sequence_number < 2**16 for s in streams)


def test_a_key_press_takes_frame_slots_under_one_timestamp() -> None:
    s = stream()
    s.stamp(SILENCE)
    start = s.next_timestamp
    events = DtmfSender().packets("5", timestamp=start)
    sent = [s.stamp_event(event) for event in events]
    assert [p.sequence_number for p in sent] == list(range(1001, 1008))
    assert {p.timestamp for p in sent} == {start}
    assert {p.payload_type for p in sent} == {101}
    assert [p.marker for p in sent] == [True] + [False] * 6
    after = s.stamp(SILENCE)
    assert after.timestamp == start + 7 * 160
    assert after.marker is False


def test_a_key_press_needs_the_far_end_to_agree_to_telephone_events() -> None:
    s = stream(event_payload_type=None)
    (event, *_) = DtmfSender().packets("1", timestamp=0)
    with pytest.raises(ValueError):
        s.stamp_event(event)


def test_relayed_packets_follow_on_from_our_prompt_and_keep_the_agents_spacing() -> None:
    s = stream(start=0.0)
    for _ in range(3):
        s.stamp(SILENCE)  # frames at 0, 20 and 40 ms: seq 1000-1002, ts 50000-50320
    relayed = [
        s.relay(agent_packet(500 + i, 9000 + 160 * i), now=0.06 + 0.02 * i) for i in range(3)
    ]
    assert [p.sequence_number for p in relayed] == [1003, 1004, 1005]
    assert [p.timestamp for p in relayed] == [50_480, 50_640, 50_800]
    assert [p.marker for p in relayed] == [True, False, False]
    assert {p.ssrc for p in relayed} == {OURS}
    assert relayed[0].payload == b"\x55" * 160


def test_the_agents_losses_and_reordering_pass_through() -> None:
    s = stream(start=0.0)
    s.stamp(SILENCE)
    first = s.relay(agent_packet(10, 0), now=0.02)
    after_gap = s.relay(agent_packet(13, 480), now=0.08)
    late = s.relay(agent_packet(12, 320), now=0.081)
    assert after_gap.sequence_number - first.sequence_number == 3
    assert late.sequence_number == after_gap.sequence_number - 1
    assert timestamp_delta(late.timestamp, first.timestamp) == 320
    # The late packet does not pull the line back: the next one follows the newest.
    assert s.relay(agent_packet(14, 640), now=0.1).sequence_number == after_gap.sequence_number + 1


def test_a_switch_to_another_source_continues_the_lines_by_the_time_elapsed() -> None:
    s = stream(start=0.0)
    s.stamp(SILENCE)
    last = s.relay(agent_packet(65535, 2**32 - 160), now=0.02)
    other = s.relay(agent_packet(7, 123, ssrc=0xCCCC), now=0.52)
    assert other.sequence_number == (last.sequence_number + 1) & 0xFFFF
    assert timestamp_delta(other.timestamp, last.timestamp) == 4000  # 500 ms at 8 kHz
    assert other.marker is True


def test_a_source_that_restarts_its_sequence_is_rebased() -> None:
    s = stream(start=0.0)
    s.stamp(SILENCE)
    before = s.relay(agent_packet(100, 0), now=0.02)
    after = s.relay(agent_packet(30_000, 777_000), now=0.04)
    assert after.sequence_number == before.sequence_number + 1
    assert timestamp_delta(after.timestamp, before.timestamp) == 160
    assert after.marker is True


def test_a_relayed_packet_can_be_renumbered_for_this_leg() -> None:
    s = stream(start=0.0)
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=0, ssrc=AGENT, payload=b"x")
    assert s.relay(packet, now=0.0, payload_type=101).payload_type == 101
    assert s.relay(packet, now=0.0).payload_type == 96


def test_frames_after_relaying_wait_for_a_new_schedule() -> None:
    s = stream(start=0.0)
    s.stamp(SILENCE)
    s.relay(agent_packet(1, 0), now=0.02)
    last = s.relay(agent_packet(2, 160), now=0.04)
    with pytest.raises(RuntimeError):
        s.stamp(SILENCE)
    s.reschedule(1.0)
    assert (s.next_due, s.due(1.0)) == (1.0, 1)
    back = s.stamp(SILENCE)
    assert back.sequence_number == last.sequence_number + 1
    assert timestamp_delta(back.timestamp, last.timestamp) == round(0.96 * 8000)
    assert back.marker is True


def test_rescheduling_right_after_a_frame_keeps_frames_apart() -> None:
    s = stream(start=0.0)
    first = s.stamp(SILENCE)
    s.reschedule(0.001)
    assert timestamp_delta(s.stamp(SILENCE).timestamp, first.timestamp) == 160


def test_the_far_end_sees_one_clean_stream_across_every_switch() -> None:
    s = stream(start=0.0)
    tracker = SequenceTracker()
    orders = []
    for _ in range(5):
        orders.append(tracker.receive(s.stamp(SILENCE).sequence_number).order)
    now = 0.1
    for source, first_seq in ((AGENT, 40_000), (0xCCCC, 3)):
        for i in range(5):
            packet = s.relay(agent_packet(first_seq + i, 160 * i, ssrc=source), now=now)
            orders.append(tracker.receive(packet.sequence_number).order)
            now += 0.02
    s.reschedule(now)
    for _ in range(5):
        orders.append(tracker.receive(s.stamp(SILENCE).sequence_number).order)
    assert orders[1:] == [orders[1]] * 19
    assert tracker.lost == 0


@given(st.lists(st.booleans(), max_size=80))
def test_packets_are_numbered_consecutively_and_stamped_by_their_slot(sends: list[bool]) -> None:
    s = stream()
    expected_seq, previous_sent = 1000, True
    for slot, send in enumerate(sends):
        if not send:
            s.skip()
            previous_sent = False
            continue
        packet = s.stamp(SILENCE)
        assert packet.sequence_number == expected_seq
        assert packet.timestamp == 50_000 + 160 * slot
        assert packet.marker is (slot == 0 or not previous_sent)
        expected_seq += 1
        previous_sent = True


def test_a_relayed_key_press_does_not_pull_the_timestamp_line_back() -> None:
    s = stream(start=0.0)
    s.relay(agent_packet(1, 0), now=0.0)
    s.relay(agent_packet(2, 160), now=0.02)
    press = [
        s.relay(agent_packet(3 + i, 320, ssrc=AGENT), now=0.04 + 0.02 * i, payload_type=101)
        for i in range(5)
    ]
    other = s.relay(agent_packet(1, 0, ssrc=0xCCCC), now=0.14)
    # The press began at 40 ms; the switch comes 100 ms later, whatever the
    # press's later packets said (they all carry its first timestamp).
    assert timestamp_delta(other.timestamp, press[-1].timestamp) == 800
