"""Helpers for testing code that uses the media engine: a fake phone, a manual clock.

``FarEnd`` is a phone's RTP socket made of a plain asyncio datagram endpoint
(nothing of ``ivr.media``): it sends packets built with ``ivr.rtp`` and
collects what arrives, so a test checks our legs from the outside, over real
UDP on the loopback. ``ManualClock`` is a number a test moves by hand; given
to a ``Pacer`` (``Pacer(clock=clock)``) it makes the media clock
deterministic, and the test calls ``pacer.tick(clock.now)`` instead of
running the pacer's task. ``until`` waits (boundedly) for something that the
loopback will deliver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from ivr.rtp.dtmf import DtmfSender
from ivr.rtp.g711 import FRAME_SAMPLES, Codec
from ivr.rtp.packet import RtpPacket
from ivr.rtp.wav import WavAudio, WavFormat, write_wav
from ivr.sdp import AudioAgreement, Direction

TELEPHONE_EVENT = 101


class ManualClock:
    """A clock that moves only when told to."""

    __slots__ = ("now",)

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


async def until(predicate: Callable[[], bool], *, timeout: float = 2.0) -> None:
    """Return once ``predicate()`` holds; ``TimeoutError`` after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.001)


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, far_end: FarEnd) -> None:
        self.far_end = far_end

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.far_end.datagrams.append((data, (str(addr[0]), int(addr[1]))))


class FarEnd:
    """A fake phone's RTP socket on the loopback: sends what it is given, keeps what arrives."""

    def __init__(self, *, ssrc: int) -> None:
        """Use ``FarEnd.open``."""
        self.transport: asyncio.DatagramTransport | None = None
        self.ssrc = ssrc
        self.datagrams: list[tuple[bytes, tuple[str, int]]] = []
        self.seq = 1000
        self.timestamp = 80_000

    @classmethod
    async def open(cls, host: str = "127.0.0.1", *, ssrc: int = 0x5EED0001) -> FarEnd:
        loop = asyncio.get_running_loop()
        far_end = cls(ssrc=ssrc)
        far_end.transport, _ = await loop.create_datagram_endpoint(
            lambda: _Socket(far_end), local_addr=(host, 0)
        )
        return far_end

    def _transport(self) -> asyncio.DatagramTransport:
        if self.transport is None:
            raise RuntimeError("FarEnd.open() it first")
        return self.transport

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._transport().get_extra_info("sockname")[:2]
        return str(host), int(port)

    def agreement(
        self,
        *,
        codec: Codec = Codec.PCMU,
        telephone_event: int | None = TELEPHONE_EVENT,
        direction: Direction = Direction.SENDRECV,
        address: tuple[str, int] | None = None,
    ) -> AudioAgreement:
        """What offer/answer with this phone would agree (``address``: what its SDP said)."""
        host, port = self.address if address is None else address
        return AudioAgreement(
            codec=codec,
            payload_type=codec.payload_type,
            telephone_event=telephone_event,
            remote_address=host,
            remote_port=port,
            direction=direction,
            remote_hold=False,
            ptime=None,
            media_index=0,
        )

    @property
    def packets(self) -> list[RtpPacket]:
        """What has arrived, parsed, in arrival order."""
        return [RtpPacket.parse(data) for data, _ in self.datagrams]

    async def receive(self, count: int, *, timeout: float = 2.0) -> list[RtpPacket]:
        """The first ``count`` packets to arrive, once they have."""
        await until(lambda: len(self.datagrams) >= count, timeout=timeout)
        return self.packets[:count]

    def send(self, packet: RtpPacket, to: tuple[str, int]) -> None:
        self._transport().sendto(packet.serialize(), to)

    def send_audio(
        self, payload: bytes, to: tuple[str, int], *, payload_type: int = 0, marker: bool = False
    ) -> RtpPacket:
        """The next 20 ms audio packet of this phone's stream."""
        packet = RtpPacket(
            payload_type=payload_type,
            sequence_number=self.seq & 0xFFFF,
            timestamp=self.timestamp & 0xFFFF_FFFF,
            ssrc=self.ssrc,
            payload=payload,
            marker=marker,
        )
        self.seq += 1
        self.timestamp += len(payload)
        self.send(packet, to)
        return packet

    def press(
        self, digit: str, to: tuple[str, int], *, payload_type: int = TELEPHONE_EVENT
    ) -> list[RtpPacket]:
        """A whole RFC 4733 key press, sent at once (the timing is not what is tested)."""
        sent = []
        for event in DtmfSender().packets(digit, timestamp=self.timestamp & 0xFFFF_FFFF):
            packet = RtpPacket(
                payload_type=payload_type,
                sequence_number=self.seq & 0xFFFF,
                timestamp=event.timestamp,
                ssrc=self.ssrc,
                payload=event.payload,
                marker=event.marker,
            )
            self.seq += 1
            self.send(packet, to)
            sent.append(packet)
        self.timestamp += 160 * len(sent)
        return sent

    def close(self) -> None:
        self._transport().close()


def numbered_prompt(path: Path, frames: int, *, first: int = 1) -> tuple[bytes, ...]:
    """Write a µ-law prompt of ``frames`` 20 ms frames, frame i all code ``first + i``.

    Returns the frames, so a test can check payloads one by one.
    """
    payloads = tuple(bytes((first + i,)) * FRAME_SAMPLES for i in range(frames))
    write_wav(path, WavAudio(format=WavFormat.ULAW, data=b"".join(payloads)))
    return payloads
