"""Prompts to a leg: 20 ms packets carrying the file's audio, barge-in, music on hold, silence."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import TypeVar

import pytest

from ivr.media import (
    MediaLeg,
    Output,
    Pacer,
    PlaybackEnd,
    Player,
    PortPool,
    PromptCache,
)
from ivr.media.testing import FarEnd, ManualClock, numbered_prompt, until
from ivr.rtp.g711 import Codec
from ivr.rtp.packet import RtpPacket, seq_delta, timestamp_delta
from ivr.rtp.wav import read_prompt
from ivr.sdp import Direction

BASE = 24400
T = TypeVar("T")


@pytest.fixture
async def ports() -> AsyncIterator[PortPool]:
    pool = PortPool(host="127.0.0.1", first=BASE, last=BASE + 99)
    yield pool
    await until(lambda: pool.in_use == 0)


@pytest.fixture
async def phone() -> AsyncIterator[FarEnd]:
    far_end = await FarEnd.open()
    yield far_end
    far_end.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(500.0)


@pytest.fixture
async def leg(ports: PortPool, phone: FarEnd, clock: ManualClock) -> AsyncIterator[MediaLeg]:
    opened = await MediaLeg.open(ports=ports, pacer=Pacer(clock=clock))
    opened.configure(phone.agreement())
    yield opened
    opened.close()


async def settled(awaitable: Awaitable[T]) -> T:
    """What ``awaitable`` gives, within a bound (a test must not hang)."""
    return await asyncio.wait_for(awaitable, 2.0)


def tick(leg: MediaLeg, slots: int) -> None:
    """Run the leg's pacer for ``slots`` ticks of 20 ms on its manual clock."""
    pacer = leg.pacer
    for _ in range(slots):
        pacer.tick(pacer.next_tick(pacer.now()))
        clock = pacer._clock  # the test's ManualClock
        assert isinstance(clock, ManualClock)
        clock.advance(0.02)


def assert_consecutive(packets: list[RtpPacket]) -> None:
    for before, after in itertools.pairwise(packets):
        assert seq_delta(after.sequence_number, before.sequence_number) == 1
        assert timestamp_delta(after.timestamp, before.timestamp) == 160
        assert after.ssrc == before.ssrc


async def test_a_prompt_is_played_as_20_ms_packets_carrying_the_files_audio(
    ports: PortPool, phone: FarEnd, tmp_path: Path
) -> None:
    first = numbered_prompt(tmp_path / "first.wav", 4)
    second = numbered_prompt(tmp_path / "second.wav", 3, first=100)
    pacer = Pacer()  # the real clock and the real task
    leg = await MediaLeg.open(ports=ports, pacer=pacer)
    leg.configure(phone.agreement())
    async with asyncio.TaskGroup() as group:
        ticking = group.create_task(pacer.run())
        playback = Player().play(leg, [tmp_path / "first.wav", tmp_path / "second.wav"])
        result = await settled(playback.done)
        ticking.cancel()
    packets = await phone.receive(7)

    assert result.ending is PlaybackEnd.FINISHED and result.frames == 7
    assert [packet.payload for packet in packets] == [*first, *second]
    assert {packet.payload_type for packet in packets} == {0}
    assert_consecutive(packets)
    assert packets[0].marker
    assert leg.stream is not None and packets[0].ssrc == leg.stream.ssrc
    leg.close()


async def test_a_pcma_leg_hears_the_ulaw_prompts_converted(
    ports: PortPool, phone: FarEnd, clock: ManualClock
) -> None:
    leg = await MediaLeg.open(ports=ports, pacer=Pacer(clock=clock))
    leg.configure(phone.agreement(codec=Codec.PCMA))
    Player().play(leg, ["beep"])
    tick(leg, 20)
    packets = await phone.receive(20)

    ulaw = read_prompt(PromptCache().path("beep"), Codec.PCMU)
    assert [packet.payload for packet in packets] == [
        Codec.PCMU.transcode(frame, Codec.PCMA) for frame in ulaw
    ]
    assert {packet.payload_type for packet in packets} == {8}
    leg.close()


async def test_a_key_press_interrupts_a_prompt_played_with_barge_in(
    leg: MediaLeg, phone: FarEnd
) -> None:
    playback = Player().play(leg, ["en/welcome"], barge_in=True)
    tick(leg, 3)
    phone.press("3", leg.local_address)
    result = await settled(playback.done)

    assert result.ending is PlaybackEnd.INTERRUPTED and result.digit == "3"
    assert result.frames == 3
    assert (await settled(leg.digits.get())).digit == "3"  # the flow still hears the key
    tick(leg, 2)
    assert leg.output is Output.QUIET


async def test_a_key_press_does_not_interrupt_a_prompt_without_barge_in(
    leg: MediaLeg, phone: FarEnd, tmp_path: Path
) -> None:
    numbered_prompt(tmp_path / "three.wav", 3)
    playback = Player().play(leg, [tmp_path / "three.wav"])
    phone.press("3", leg.local_address)
    await settled(leg.digits.get())
    tick(leg, 3)
    assert (await settled(playback.done)).ending is PlaybackEnd.FINISHED


async def test_hold_music_loops_until_stopped(leg: MediaLeg, phone: FarEnd, tmp_path: Path) -> None:
    frames = numbered_prompt(tmp_path / "tune.wav", 3)
    music = Player().hold_music(leg, [tmp_path / "tune.wav"])
    tick(leg, 8)
    music.stop()
    tick(leg, 2)
    packets = await phone.receive(8)

    assert [packet.payload for packet in packets] == [*frames, *frames, *frames[:2]]
    assert_consecutive(packets)
    assert (await settled(music.done)).ending is PlaybackEnd.STOPPED
    assert len(phone.datagrams) == 8


async def test_a_new_playback_replaces_the_old_one_in_the_same_stream(
    leg: MediaLeg, phone: FarEnd, tmp_path: Path
) -> None:
    old = numbered_prompt(tmp_path / "old.wav", 5)
    new = numbered_prompt(tmp_path / "new.wav", 2, first=50)
    player = Player()
    first = player.play(leg, [tmp_path / "old.wav"])
    tick(leg, 2)
    second = player.play(leg, [tmp_path / "new.wav"])
    tick(leg, 3)
    packets = await phone.receive(4)

    assert (await settled(first.done)).ending is PlaybackEnd.REPLACED
    assert (await settled(second.done)).ending is PlaybackEnd.FINISHED
    assert [packet.payload for packet in packets] == [*old[:2], *new]
    assert_consecutive(packets)
    assert not any(packet.marker for packet in packets[1:])


async def test_prompts_are_read_once_per_codec(leg: MediaLeg) -> None:
    player = Player()
    player.play(leg, ["beep", "beep"])
    player.play(leg, ["beep"])
    assert (player.cache.misses, player.cache.hits) == (1, 2)
    player.cache.preload(["beep"])
    assert player.cache.misses == 2  # the A-law copy


async def test_a_continuous_leg_sends_silence_when_nothing_plays(
    ports: PortPool, phone: FarEnd, clock: ManualClock, tmp_path: Path
) -> None:
    frames = numbered_prompt(tmp_path / "two.wav", 2)
    leg = await MediaLeg.open(ports=ports, pacer=Pacer(clock=clock), continuous=True)
    leg.configure(phone.agreement(codec=Codec.PCMA))
    tick(leg, 2)
    Player().play(leg, [tmp_path / "two.wav"])
    tick(leg, 4)
    packets = await phone.receive(6)

    silence = Codec.PCMA.silence_frame()
    converted = [Codec.PCMU.transcode(frame, Codec.PCMA) for frame in frames]
    assert [packet.payload for packet in packets] == [
        silence,
        silence,
        *converted,
        silence,
        silence,
    ]
    assert_consecutive(packets)
    assert [packet.marker for packet in packets] == [True] + [False] * 5
    leg.close()


async def test_a_far_end_that_put_us_on_hold_hears_nothing_but_the_prompt_takes_its_time(
    leg: MediaLeg, phone: FarEnd, tmp_path: Path
) -> None:
    leg.configure(phone.agreement(direction=Direction.RECVONLY))
    numbered_prompt(tmp_path / "three.wav", 3)
    playback = Player().play(leg, [tmp_path / "three.wav"])
    tick(leg, 2)
    assert not playback.done.done()
    tick(leg, 1)
    assert (await settled(playback.done)).frames == 3
    await asyncio.sleep(0.01)  # give a stray packet the chance to show up
    assert phone.datagrams == []


async def test_playing_to_a_closed_or_unconfigured_leg_is_refused(ports: PortPool) -> None:
    leg = await MediaLeg.open(ports=ports, pacer=Pacer(clock=ManualClock()))
    with pytest.raises(RuntimeError, match="configure"):
        Player().play(leg, ["beep"])
    leg.close()
    with pytest.raises(RuntimeError):
        Player().play(leg, ["beep"])
