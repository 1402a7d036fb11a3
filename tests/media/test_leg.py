"""A leg's receive side (digits exactly once, the latching rule, loss counts), and keys it sends."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from ivr.media import MediaLeg, Pacer, PortPool
from ivr.media.testing import TELEPHONE_EVENT, FarEnd, ManualClock, until
from ivr.rtp.dtmf import DtmfReceiver, KeyPressed, TelephoneEvent
from ivr.rtp.packet import RtpPacket, seq_delta
from ivr.sdp import Direction

BASE = 24600
SILENCE = b"\xff" * 160


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
async def leg(ports: PortPool, phone: FarEnd) -> AsyncIterator[MediaLeg]:
    opened = await MediaLeg.open(ports=ports, pacer=Pacer(clock=ManualClock()))
    opened.configure(phone.agreement())
    yield opened
    opened.close()


def drain(leg: MediaLeg) -> list[str]:
    digits = []
    while not leg.digits.empty():
        digits.append(leg.digits.get_nowait().digit)
    return digits


async def test_key_presses_sent_to_a_leg_come_out_as_digits_exactly_once(
    leg: MediaLeg, phone: FarEnd
) -> None:
    heard: list[str] = []
    leg.on_digit = lambda _leg, key: heard.append(key.digit)
    to = leg.local_address
    first = phone.press("1", to)
    for packet in first:  # the network duplicates the whole press
        phone.send(packet, to)
    phone.press("1", to)  # the same key again: a new press
    phone.send_audio(SILENCE, to)
    phone.press("#", to)
    await until(lambda: leg.statistics().packets_received == 22)

    assert drain(leg) == ["1", "1", "#"]
    assert heard == ["1", "1", "#"]
    statistics = leg.statistics()
    assert statistics.digits == 3
    assert statistics.duplicates == 7
    assert statistics.packets_lost == 0


async def test_the_leg_latches_to_where_the_first_packets_come_from(
    ports: PortPool, phone: FarEnd
) -> None:
    behind_nat = await FarEnd.open(ssrc=0x0000_0A7A)
    stranger = await FarEnd.open(ssrc=0x0BAD_0BAD)
    leg = await MediaLeg.open(ports=ports, pacer=Pacer(clock=ManualClock()))
    # The SDP names the phone's private address; its packets come from the NAT.
    leg.configure(phone.agreement())
    assert leg.remote == phone.address

    behind_nat.send_audio(SILENCE, leg.local_address)
    await until(lambda: leg.statistics().packets_received == 1)
    assert leg.remote == behind_nat.address
    stranger.send_audio(SILENCE, leg.local_address)
    behind_nat.send_audio(SILENCE, leg.local_address)
    await until(lambda: leg.statistics().packets_received == 2)
    assert leg.statistics().foreign == 1

    # The address the SDP gave is always heard, and wins the latch back.
    phone.send_audio(SILENCE, leg.local_address)
    await until(lambda: leg.statistics().packets_received == 3)
    assert leg.remote == phone.address
    # A re-INVITE with a new address forgets the latch.
    leg.configure(stranger.agreement())
    assert leg.statistics().latched_to is None and leg.remote == stranger.address
    for far_end in (behind_nat, stranger):
        far_end.close()
    leg.close()


async def test_without_latching_only_the_sdp_host_is_heard(ports: PortPool, phone: FarEnd) -> None:
    leg = await MediaLeg.open(ports=ports, pacer=Pacer(clock=ManualClock()), latching=False)
    leg.configure(phone.agreement(address=("127.0.0.2", 4000)))
    phone.send_audio(SILENCE, leg.local_address)  # from 127.0.0.1
    other_port = await FarEnd.open("127.0.0.2")
    other_port.send_audio(SILENCE, leg.local_address)
    await until(lambda: leg.statistics().packets_received == 1)
    await until(lambda: leg.statistics().foreign == 1)
    assert leg.remote == ("127.0.0.2", 4000)
    other_port.close()
    leg.close()


async def test_loss_is_counted_per_source_and_junk_is_dropped(leg: MediaLeg, phone: FarEnd) -> None:
    to = leg.local_address
    phone.send_audio(SILENCE, to)
    phone.seq += 2  # two packets lost
    phone.send_audio(SILENCE, to)
    phone.send(
        RtpPacket(payload_type=13, sequence_number=phone.seq, timestamp=0, ssrc=phone.ssrc), to
    )
    phone.seq += 1
    phone.transport.sendto(b"not RTP", to)  # type: ignore[union-attr]
    phone.ssrc += 1  # the phone restarts its stream: a new count
    phone.send_audio(SILENCE, to)
    await until(lambda: leg.statistics().packets_received == 4)
    await until(lambda: leg.statistics().malformed == 1)

    statistics = leg.statistics()
    assert statistics.packets_expected == 6 and statistics.packets_lost == 2
    assert statistics.unknown_payload == 1  # comfort noise was not agreed
    assert statistics.octets_received == 3 * 160


async def test_a_leg_we_do_not_receive_on_drops_what_arrives(leg: MediaLeg, phone: FarEnd) -> None:
    leg.configure(phone.agreement(direction=Direction.SENDONLY))
    phone.press("5", leg.local_address)
    await until(lambda: leg.statistics().foreign == 7)
    assert leg.statistics().packets_received == 0 and drain(leg) == []


async def test_keys_the_leg_sends_are_rfc_4733_presses_a_receiver_hears_once(
    leg: MediaLeg, phone: FarEnd
) -> None:
    pacer = leg.pacer
    leg.send_digits("42")
    start = pacer.next_tick(pacer.now())
    for n in range(20):  # 7 packets and 3 pause slots per key
        pacer.tick(start + n * 0.02)
    packets = await phone.receive(14)

    assert {packet.payload_type for packet in packets} == {TELEPHONE_EVENT}
    assert all(
        seq_delta(b.sequence_number, a.sequence_number) == 1 for a, b in itertools.pairwise(packets)
    )
    receiver = DtmfReceiver()
    keys = [key for packet in packets if (key := receiver.receive(packet)) is not None]
    assert [key.digit for key in keys] == ["4", "2"]
    assert keys[1].timestamp - keys[0].timestamp == 10 * 160
    assert TelephoneEvent.parse(packets[6].payload).end
    assert isinstance(keys[0], KeyPressed)
    assert leg.pacer.statistics().legs == 0  # done, and quiet again
