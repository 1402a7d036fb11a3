"""The pacer: one timer for every sending leg, frames on a schedule that never drifts.

Most tests hold the media clock in their hands (``ManualClock``) and tick the
pacer themselves: the packets still go over real UDP to a fake phone. The
last one runs the real pacer task with 50 legs and reports how late the
frames went, without asserting on it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.media import MediaLeg, Output, Pacer, PlaybackEnd, Player, PortPool, PromptCache
from ivr.media.leg import MAX_BURST
from ivr.media.pacer import LatenessMeter
from ivr.media.testing import FarEnd, ManualClock, numbered_prompt, until
from ivr.rtp.packet import RtpPacket, seq_delta, timestamp_delta

BASE = 24200


@pytest.fixture
async def ports() -> AsyncIterator[PortPool]:
    pool = PortPool(host="127.0.0.1", first=BASE, last=BASE + 299)
    yield pool
    await until(lambda: pool.in_use == 0)


def assert_one_stream(packets: list[RtpPacket]) -> None:
    """One SSRC, sequence numbers one apart, timestamps 160 apart."""
    assert len({packet.ssrc for packet in packets}) == 1
    for before, after in itertools.pairwise(packets):
        assert seq_delta(after.sequence_number, before.sequence_number) == 1
        assert timestamp_delta(after.timestamp, before.timestamp) == 160


async def test_a_late_tick_sends_every_frame_due_and_the_schedule_does_not_drift(
    ports: PortPool, tmp_path: Path
) -> None:
    clock = ManualClock(1000.0)
    pacer = Pacer(clock=clock)
    phone = await FarEnd.open()
    leg = await MediaLeg.open(ports=ports, pacer=pacer)
    leg.configure(phone.agreement())
    frames = numbered_prompt(tmp_path / "ten.wav", 10)
    Player(PromptCache()).play(leg, [tmp_path / "ten.wav"])
    start = pacer.next_tick(clock.now)

    pacer.tick(start)  # frame 0
    pacer.tick(start + 0.050)  # 30 ms late for frame 1, 10 ms for frame 2
    pacer.tick(start + 0.060)  # frame 3, on time: the late tick did not shift it
    packets = await phone.receive(4)

    assert [packet.payload for packet in packets] == list(frames[:4])
    assert_one_stream(packets)
    assert packets[0].marker and not any(packet.marker for packet in packets[1:])
    statistics = pacer.statistics()
    assert statistics.frames == 4
    assert statistics.max_lateness == pytest.approx(0.030, abs=1e-6)
    assert statistics.mean_lateness == pytest.approx(0.010, abs=1e-6)
    assert statistics.histogram[30] == 1 and statistics.histogram[10] == 1
    leg.close()
    phone.close()


async def test_after_a_stall_the_schedule_restarts_instead_of_bursting(
    ports: PortPool, tmp_path: Path
) -> None:
    clock = ManualClock(2000.0)
    pacer = Pacer(clock=clock)
    phone = await FarEnd.open()
    leg = await MediaLeg.open(ports=ports, pacer=pacer)
    leg.configure(phone.agreement())
    numbered_prompt(tmp_path / "ten.wav", 10)
    Player().play(leg, [tmp_path / "ten.wav"])
    start = pacer.next_tick(clock.now)

    pacer.tick(start)
    pacer.tick(start + 1.0)  # 50 frames due: more than a burst
    pacer.tick(start + 1.02)
    first, after_stall, next_one = await phone.receive(3)

    assert MAX_BURST < 50
    assert [
        seq_delta(p.sequence_number, first.sequence_number) for p in (after_stall, next_one)
    ] == [
        1,
        2,
    ]
    # The timestamp line runs on through the stall (a gap the far end's jitter
    # buffer plays out as silence), and the new talkspurt has the marker.
    assert timestamp_delta(after_stall.timestamp, first.timestamp) == 8000
    assert after_stall.marker
    assert timestamp_delta(next_one.timestamp, after_stall.timestamp) == 160
    assert [p.payload[0] for p in (first, after_stall, next_one)] == [1, 2, 3]
    leg.close()
    phone.close()


async def test_a_leg_with_nothing_left_to_send_leaves_the_pacer(
    ports: PortPool, tmp_path: Path
) -> None:
    clock = ManualClock(3000.0)
    pacer = Pacer(clock=clock)
    phone = await FarEnd.open()
    leg = await MediaLeg.open(ports=ports, pacer=pacer)
    leg.configure(phone.agreement())
    numbered_prompt(tmp_path / "two.wav", 2)
    playback = Player().play(leg, [tmp_path / "two.wav"])
    start = pacer.next_tick(clock.now)
    assert leg in pacer and leg.output.value == "paced"

    for n in range(3):
        pacer.tick(start + n * 0.02)

    assert playback.done.result().ending is PlaybackEnd.FINISHED
    assert leg not in pacer and len(pacer) == 0
    assert leg.output is Output.QUIET
    assert len(await phone.receive(2)) == 2
    leg.close()
    phone.close()


async def test_the_running_pacer_keeps_fifty_legs_on_schedule(
    ports: PortPool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = numbered_prompt(tmp_path / "ten.wav", 10)
    pacer = Pacer()
    player = Player()
    phones = [await FarEnd.open() for _ in range(50)]
    legs = [await MediaLeg.open(ports=ports, pacer=pacer) for _ in phones]
    for leg, phone in zip(legs, phones, strict=True):
        leg.configure(phone.agreement())

    async with asyncio.TaskGroup() as group:
        ticking = group.create_task(pacer.run())
        playbacks = [player.play(leg, [tmp_path / "ten.wav"]) for leg in legs]
        results = await asyncio.wait_for(asyncio.gather(*(p.done for p in playbacks)), 5.0)
        for phone in phones:
            packets = await phone.receive(10)
            assert [packet.payload for packet in packets] == list(frames)
            assert_one_stream(packets)
        ticking.cancel()

    assert all(result.ending is PlaybackEnd.FINISHED for result in results)
    statistics = pacer.statistics()
    assert statistics.frames == 500
    assert player.cache.misses == 1 and player.cache.hits == 49
    with capsys.disabled():  # a measurement to read, not a bound to assert
        print(
            f"\n50 legs x 10 frames: {statistics.ticks} ticks, frame lateness "
            f"mean {statistics.mean_lateness * 1e3:.2f} ms, "
            f"p99 <= {statistics.percentile(0.99) * 1e3:.0f} ms, "
            f"max {statistics.max_lateness * 1e3:.2f} ms, "
            f"{statistics.late_frames} frames 20 ms or more late; "
            f"max tick lateness {statistics.max_tick_lateness * 1e3:.2f} ms"
        )
    for leg in legs:
        leg.close()
    for phone in phones:
        phone.close()


class _Overloaded:
    """A paced leg whose every tick costs more than a whole period: an overloaded server.

    It counts the ticks in a row that ran without anything else running in
    between, and gives up (failing the pacer's task) at three, so that a
    starved loop fails the test instead of hanging it.
    """

    def __init__(self) -> None:
        self.ticks = 0
        self.in_a_row = 0

    def pace(self, now: float, meter: LatenessMeter) -> bool:
        self.ticks += 1
        self.in_a_row += 1
        if self.in_a_row >= 3:
            raise AssertionError("three ticks in a row with nothing else run between them")
        time.sleep(0.03)  # 30 ms of work in a 20 ms period, holding the loop
        return True


async def test_an_overloaded_pacer_still_lets_the_rest_of_the_loop_run() -> None:
    """Ticks that overrun their period must not starve SIP, HTTP and the sockets."""
    pacer = Pacer()
    leg = _Overloaded()
    pacer.add(leg)
    async with asyncio.TaskGroup() as group:
        ticking = group.create_task(pacer.run())
        while leg.ticks < 10:
            leg.in_a_row = 0  # the rest of the loop ran
            await asyncio.sleep(0)
        ticking.cancel()
    assert leg.ticks >= 10
