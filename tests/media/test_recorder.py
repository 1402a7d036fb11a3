"""Recording what a leg hears into a µ-law WAV file, its length keeping time with the call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.media import MediaLeg, Pacer, PortPool, Recording, RecordingEnd, RecordingResult
from ivr.media.testing import FarEnd, ManualClock, until
from ivr.rtp.g711 import Codec
from ivr.rtp.wav import WavFormat, parse_wav

BASE = 24800
SILENCE = Codec.PCMU.silence_frame


@pytest.fixture
async def ports() -> AsyncIterator[PortPool]:
    pool = PortPool(host="127.0.0.1", first=BASE, last=BASE + 99)
    yield pool
    await until(lambda: pool.in_use == 0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(900.0)


@pytest.fixture
async def phone() -> AsyncIterator[FarEnd]:
    far_end = await FarEnd.open()
    yield far_end
    far_end.close()


@pytest.fixture
async def leg(ports: PortPool, clock: ManualClock, phone: FarEnd) -> AsyncIterator[MediaLeg]:
    opened = await MediaLeg.open(ports=ports, pacer=Pacer(clock=clock))
    opened.configure(phone.agreement())
    yield opened
    opened.close()


def frame(code: int) -> bytes:
    return bytes((code,)) * 160


async def heard(leg: MediaLeg, packets: int) -> None:
    await until(lambda: leg.statistics().packets_received >= packets)


async def finished(recording: Recording) -> RecordingResult:
    return await asyncio.wait_for(recording.done, 2.0)


def audio_of(path: Path) -> bytes:
    audio = parse_wav(path.read_bytes())
    assert audio.format is WavFormat.ULAW and audio.sample_rate == 8000
    return audio.data


async def test_the_recording_holds_what_the_far_end_sent(
    leg: MediaLeg, phone: FarEnd, tmp_path: Path
) -> None:
    recording = Recording(leg, tmp_path / "message.wav")
    sent = [phone.send_audio(frame(n), leg.local_address).payload for n in range(1, 6)]
    phone.press("#", leg.local_address)  # key presses are not audio
    await heard(leg, 12)
    recording.stop()
    result = await finished(recording)

    assert audio_of(tmp_path / "message.wav") == b"".join(sent)
    assert result.ending is RecordingEnd.STOPPED
    assert (result.packets, result.filled, result.seconds) == (5, 0, 0.1)


async def test_a_gap_in_the_timestamps_is_filled_with_silence(
    leg: MediaLeg, phone: FarEnd, tmp_path: Path
) -> None:
    recording = Recording(leg, tmp_path / "message.wav")
    phone.send_audio(frame(1), leg.local_address)
    phone.seq += 3
    phone.timestamp += 3 * 160  # three packets lost (or never sent: silence suppression)
    phone.send_audio(frame(2), leg.local_address)
    await heard(leg, 2)
    recording.stop()
    result = await finished(recording)

    assert audio_of(tmp_path / "message.wav") == frame(1) + SILENCE(480) + frame(2)
    assert result.filled == 480


async def test_the_file_keeps_wall_time_before_the_first_packet_and_after_the_last(
    leg: MediaLeg, phone: FarEnd, clock: ManualClock, tmp_path: Path
) -> None:
    recording = Recording(leg, tmp_path / "message.wav")
    clock.advance(0.1)  # the caller takes a breath: the first packet ends 100 ms in
    phone.send_audio(frame(1), leg.local_address)
    await heard(leg, 1)
    clock.advance(0.2)  # then says nothing more before hanging up
    leg.close()
    result = await finished(recording)

    assert audio_of(tmp_path / "message.wav") == SILENCE(640) + frame(1) + SILENCE(1600)
    assert result.ending is RecordingEnd.CLOSED
    assert result.seconds == pytest.approx(0.3)


async def test_a_recording_stops_at_its_maximum_duration(
    leg: MediaLeg, phone: FarEnd, tmp_path: Path
) -> None:
    recording = Recording(leg, tmp_path / "message.wav", max_seconds=0.05)
    for n in (1, 2, 3):
        phone.send_audio(frame(n), leg.local_address)
    result = await finished(recording)

    assert result.ending is RecordingEnd.MAX_DURATION
    assert audio_of(tmp_path / "message.wav") == frame(1) + frame(2) + frame(3)[:80]


async def test_a_silent_caller_is_cut_off_at_the_maximum_duration_too(
    leg: MediaLeg, clock: ManualClock, tmp_path: Path
) -> None:
    recording = Recording(leg, tmp_path / "message.wav", max_seconds=0.05)
    leg.pacer.tick(clock.advance(0.04))
    assert not recording.done.done()
    leg.pacer.tick(clock.advance(0.02))
    result = await finished(recording)

    assert result.ending is RecordingEnd.MAX_DURATION
    assert audio_of(tmp_path / "message.wav") == SILENCE(400)
    assert len(leg.pacer) == 0


async def test_an_alaw_caller_is_recorded_in_ulaw(
    ports: PortPool, clock: ManualClock, phone: FarEnd, tmp_path: Path
) -> None:
    leg = await MediaLeg.open(ports=ports, pacer=Pacer(clock=clock))
    leg.configure(phone.agreement(codec=Codec.PCMA))
    recording = Recording(leg, tmp_path / "message.wav")
    voice = bytes(range(160))
    phone.send_audio(voice, leg.local_address, payload_type=8)
    await heard(leg, 1)
    recording.stop()
    await finished(recording)

    assert audio_of(tmp_path / "message.wav") == Codec.PCMA.transcode(voice, Codec.PCMU)
    leg.close()


async def test_a_packet_arriving_behind_what_is_written_is_dropped(
    leg: MediaLeg, phone: FarEnd, tmp_path: Path
) -> None:
    recording = Recording(leg, tmp_path / "message.wav")
    phone.send_audio(frame(1), leg.local_address)
    late_seq, late_timestamp = phone.seq, phone.timestamp
    phone.seq += 1
    phone.timestamp += 160
    phone.send_audio(frame(3), leg.local_address)
    await heard(leg, 2)
    phone.seq, phone.timestamp = late_seq, late_timestamp
    phone.send_audio(frame(2), leg.local_address)  # reordered: it comes last
    await heard(leg, 3)
    recording.stop()
    result = await finished(recording)

    assert audio_of(tmp_path / "message.wav") == frame(1) + SILENCE(160) + frame(3)
    assert result.dropped == 1
