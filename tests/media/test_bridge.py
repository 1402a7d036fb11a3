"""Two legs bridged: each far end hears the other, in one continuous stream of its own."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.media import Bridge, MediaLeg, Output, Pacer, PlaybackEnd, Player, PortPool
from ivr.media.testing import FarEnd, ManualClock, numbered_prompt, until
from ivr.rtp.g711 import Codec
from ivr.rtp.packet import RtpPacket, seq_delta, timestamp_delta

BASE = 24700
CALLER = 0xCA11_0001
AGENT = 0xA6E7_0002


@pytest.fixture
async def ports() -> AsyncIterator[PortPool]:
    pool = PortPool(host="127.0.0.1", first=BASE, last=BASE + 99)
    yield pool
    await until(lambda: pool.in_use == 0)


@pytest.fixture
def pacer() -> Pacer:
    return Pacer(clock=ManualClock(700.0))


@pytest.fixture
async def phones() -> AsyncIterator[tuple[FarEnd, FarEnd]]:
    caller = await FarEnd.open(ssrc=CALLER)
    agent = await FarEnd.open(ssrc=AGENT)
    yield caller, agent
    caller.close()
    agent.close()


async def open_leg(ports: PortPool, pacer: Pacer, phone: FarEnd, **agreed: object) -> MediaLeg:
    leg = await MediaLeg.open(ports=ports, pacer=pacer)
    leg.configure(phone.agreement(**agreed))  # type: ignore[arg-type]
    return leg


def tick(pacer: Pacer, slots: int) -> None:
    clock = pacer._clock
    assert isinstance(clock, ManualClock)
    for _ in range(slots):
        pacer.tick(pacer.next_tick(clock.now))
        clock.advance(0.02)


def payloads(packets: list[RtpPacket]) -> list[bytes]:
    return [packet.payload for packet in packets]


def frame(code: int) -> bytes:
    return bytes((code,)) * 160


async def test_what_each_far_end_sends_reaches_the_other_with_the_same_payload(
    ports: PortPool, pacer: Pacer, phones: tuple[FarEnd, FarEnd]
) -> None:
    caller, agent = phones
    a = await open_leg(ports, pacer, caller)
    b = await open_leg(ports, pacer, agent)
    bridge = Bridge(a, b)

    sent_by_caller = [caller.send_audio(frame(n), a.local_address).payload for n in (1, 2, 3)]
    sent_by_agent = [agent.send_audio(frame(n), b.local_address).payload for n in (7, 8)]
    heard_by_agent = await agent.receive(3)
    heard_by_caller = await caller.receive(2)

    assert payloads(heard_by_agent) == sent_by_caller
    assert payloads(heard_by_caller) == sent_by_agent
    assert b.stream is not None and {p.ssrc for p in heard_by_agent} == {b.stream.ssrc}
    assert a.stream is not None and {p.ssrc for p in heard_by_caller} == {a.stream.ssrc}
    assert [
        seq_delta(p.sequence_number, heard_by_agent[0].sequence_number) for p in heard_by_agent
    ] == [0, 1, 2]
    assert bridge.statistics().relayed == 5
    bridge.close()
    a.close()
    b.close()


async def test_the_caller_hears_one_stream_from_the_prompt_through_the_bridge_to_hold_music(
    ports: PortPool, pacer: Pacer, phones: tuple[FarEnd, FarEnd], tmp_path: Path
) -> None:
    caller, agent = phones
    welcome = numbered_prompt(tmp_path / "welcome.wav", 3)
    music = numbered_prompt(tmp_path / "music.wav", 2, first=60)
    player = Player()
    a = await open_leg(ports, pacer, caller)
    b = await open_leg(ports, pacer, agent)
    prompt = player.play(a, [tmp_path / "welcome.wav"])
    tick(pacer, 3)
    await until(lambda: len(caller.datagrams) == 3)

    bridge = Bridge(a, b)
    for n in (20, 21, 22):
        agent.send_audio(frame(n), b.local_address)
    await until(lambda: len(caller.datagrams) == 6)
    bridge.close()
    hold = player.hold_music(a, [tmp_path / "music.wav"])
    tick(pacer, 2)
    heard = await caller.receive(8)

    assert payloads(heard) == [*welcome, frame(20), frame(21), frame(22), *music]
    assert len({packet.ssrc for packet in heard}) == 1
    assert [seq_delta(p.sequence_number, heard[0].sequence_number) for p in heard] == list(range(8))
    assert all(
        timestamp_delta(b.timestamp, a.timestamp) >= 160 for a, b in itertools.pairwise(heard)
    )
    # Each change of source starts a talkspurt.
    assert [packet.marker for packet in heard] == [
        True,
        False,
        False,
        True,
        False,
        False,
        True,
        False,
    ]
    assert (await asyncio.wait_for(prompt.done, 2)).ending is PlaybackEnd.FINISHED
    await asyncio.wait_for(bridge.done, 2)
    hold.stop()
    a.close()
    b.close()


async def test_a_ulaw_leg_bridged_to_an_alaw_leg_is_transcoded_both_ways(
    ports: PortPool, pacer: Pacer, phones: tuple[FarEnd, FarEnd]
) -> None:
    caller, agent = phones
    a = await open_leg(ports, pacer, caller, codec=Codec.PCMU)
    b = await open_leg(ports, pacer, agent, codec=Codec.PCMA)
    bridge = Bridge(a, b)
    voice = bytes(range(256))[:160]

    caller.send_audio(voice, a.local_address)
    agent.send_audio(voice, b.local_address, payload_type=8)
    (to_agent,) = await agent.receive(1)
    (to_caller,) = await caller.receive(1)

    assert to_agent.payload_type == 8
    assert to_agent.payload == Codec.PCMU.transcode(voice, Codec.PCMA)
    assert to_caller.payload_type == 0
    assert to_caller.payload == Codec.PCMA.transcode(voice, Codec.PCMU)
    assert bridge.statistics().transcoded == 2
    bridge.close()
    a.close()
    b.close()


async def test_key_presses_are_relayed_under_the_payload_type_the_other_side_knows(
    ports: PortPool, pacer: Pacer, phones: tuple[FarEnd, FarEnd]
) -> None:
    caller, agent = phones
    a = await open_leg(ports, pacer, caller, telephone_event=101)
    b = await open_leg(ports, pacer, agent, telephone_event=96)
    bridge = Bridge(a, b)

    pressed = caller.press("7", a.local_address)
    relayed = await agent.receive(len(pressed))

    assert {packet.payload_type for packet in relayed} == {96}
    assert payloads(relayed) == payloads(pressed)
    assert len({packet.timestamp for packet in relayed}) == 1  # one press, one timestamp
    assert (await asyncio.wait_for(a.digits.get(), 2)).digit == "7"  # heard on the way through
    assert bridge.statistics().events == len(pressed)
    bridge.close()
    a.close()
    b.close()


async def test_key_presses_to_a_far_end_without_telephone_events_are_dropped(
    ports: PortPool, pacer: Pacer, phones: tuple[FarEnd, FarEnd]
) -> None:
    caller, agent = phones
    a = await open_leg(ports, pacer, caller)
    b = await open_leg(ports, pacer, agent, telephone_event=None)
    bridge = Bridge(a, b)
    pressed = caller.press("9", a.local_address)
    caller.send_audio(frame(5), a.local_address)
    (heard,) = await agent.receive(1)

    assert heard.payload == frame(5)
    assert bridge.statistics().events_dropped == len(pressed)
    bridge.close()
    a.close()
    b.close()


async def test_a_leg_hanging_up_ends_the_bridge_and_frees_the_other_leg(
    ports: PortPool, pacer: Pacer, phones: tuple[FarEnd, FarEnd], tmp_path: Path
) -> None:
    caller, agent = phones
    a = await open_leg(ports, pacer, caller)
    b = await open_leg(ports, pacer, agent)
    bridge = Bridge(a, b)
    with pytest.raises(RuntimeError, match="bridged"):
        Bridge(a, b)
    with pytest.raises(RuntimeError, match="bridged"):
        Player().play(a, ["beep"])

    b.close()
    assert bridge.closed and bridge.done.done()
    assert a.output is Output.QUIET
    numbered_prompt(tmp_path / "one.wav", 1)
    Player().play(a, [tmp_path / "one.wav"])
    tick(pacer, 1)
    assert len(await caller.receive(1)) == 1
    a.close()


async def test_a_continuous_leg_fills_a_silent_bridge_with_silence(
    ports: PortPool, pacer: Pacer, phones: tuple[FarEnd, FarEnd]
) -> None:
    caller, agent = phones
    a = await MediaLeg.open(ports=ports, pacer=pacer, continuous=True)
    a.configure(caller.agreement())
    b = await open_leg(ports, pacer, agent)
    tick(pacer, 1)  # one frame of silence before the bridge
    bridge = Bridge(a, b)
    agent.send_audio(frame(30), b.local_address)
    await until(lambda: len(caller.datagrams) == 2)
    tick(pacer, 5)  # 100 ms of quiet from the agent: filled once 60 ms have passed
    agent.send_audio(frame(31), b.local_address)
    heard = await caller.receive(5)

    silence = Codec.PCMU.silence_frame()
    assert payloads(heard) == [silence, frame(30), silence, silence, frame(31)]
    assert [seq_delta(p.sequence_number, heard[0].sequence_number) for p in heard] == list(range(5))
    assert [packet.marker for packet in heard] == [True, True, True, False, True]
    bridge.close()
    a.close()
    b.close()


async def test_relayed_packets_are_timed_against_their_timestamps_and_a_held_one_is_late(
    ports: PortPool, pacer: Pacer, phones: tuple[FarEnd, FarEnd]
) -> None:
    caller, agent = phones
    clock = pacer._clock
    assert isinstance(clock, ManualClock)
    a = await open_leg(ports, pacer, caller)
    b = await open_leg(ports, pacer, agent)
    Bridge(a, b)

    # Packets 20 ms apart by their timestamps; they reach us 20, 20, then 45.5 and 7 ms apart.
    for n, gap in enumerate((0.0, 0.020, 0.020, 0.0455, 0.007)):
        clock.advance(gap)
        caller.send_audio(frame(n), a.local_address)
        await agent.receive(n + 1)
    relayed = pacer.relayed_statistics()
    a.close()
    b.close()

    assert relayed.frames == 5
    assert relayed.late_frames == 1  # the fourth: 25.5 ms after its timestamp's place
    assert relayed.histogram[25] == 1 and relayed.histogram[12] == 1  # the fifth catching up
    assert relayed.histogram[0] == 3
    assert abs(relayed.max_lateness - 0.0255) < 1e-9


async def test_a_new_talkspurt_restarts_the_reference_so_silence_is_not_lateness(
    ports: PortPool, pacer: Pacer, phones: tuple[FarEnd, FarEnd]
) -> None:
    caller, agent = phones
    clock = pacer._clock
    assert isinstance(clock, ManualClock)
    a = await open_leg(ports, pacer, caller)
    b = await open_leg(ports, pacer, agent)
    Bridge(a, b)

    caller.send_audio(frame(1), a.local_address)
    await agent.receive(1)
    clock.advance(1.0)  # a second of silence: the phone sent nothing, its timestamps stood still
    caller.send_audio(frame(2), a.local_address, marker=True)
    clock.advance(0.020)
    caller.send_audio(frame(3), a.local_address)
    await agent.receive(3)

    relayed = pacer.relayed_statistics()
    a.close()
    b.close()
    assert (relayed.frames, relayed.late_frames, relayed.max_lateness) == (3, 0, 0.0)


async def test_a_sender_whose_clock_slipped_once_is_late_for_two_seconds_at_most(
    ports: PortPool, pacer: Pacer, phones: tuple[FarEnd, FarEnd]
) -> None:
    caller, agent = phones
    clock = pacer._clock
    assert isinstance(clock, ManualClock)
    a = await open_leg(ports, pacer, caller)
    b = await open_leg(ports, pacer, agent)
    Bridge(a, b)

    # Four seconds of packets 20 ms apart; after the tenth the phone oversleeps 30 ms
    # and carries on from there, 20 ms apart again.
    for n in range(200):
        clock.advance(0.050 if n == 10 else 0.020)
        caller.send_audio(frame(1), a.local_address)
        await agent.receive(n + 1)
    late_then = pacer.relayed_statistics().late_frames
    for n in range(200, 250):
        clock.advance(0.020)
        caller.send_audio(frame(1), a.local_address)
        await agent.receive(n + 1)
    relayed = pacer.relayed_statistics()
    a.close()
    b.close()

    assert 0 < late_then <= 100  # within two seconds of the slip, then its new pace is the norm
    assert relayed.late_frames == late_then  # a whole second later: nothing more is late
