"""DTMF as RTP telephone-events (RFC 4733): the payload, what a sender emits, what a receiver hears.

A key press travels as a run of 4-octet event payloads in the audio stream's
SSRC, sequence space and timestamp base (RFC 4733 §2.5.1.2). Every packet of
one press carries the same RTP timestamp, the instant the press began; the
duration field grows with each update; the first packet has the marker bit;
the last carries the E bit and is sent three times (§2.5.1.4), each copy a new
RTP packet with its own sequence number.

``DtmfSender`` lays out that run for one digit, slot by slot on the 20 ms
packet clock; the stream (``ivr.rtp.stream``) stamps the sequence numbers.

``DtmfReceiver`` turns whatever arrives of such runs into digits, each
exactly once (§2.5.2). A press is known by its timestamp and event code, so:
duplicates and the end-packet copies repeat a known press; a press whose start
packet was lost is reported from the first update or end packet that arrives;
two presses of the same key differ by timestamp; and a packet older than the
newest press (reordered past it) is dropped, so digits are never reported out
of order. A press longer than the 16-bit duration field (about 8 s) is sent in
segments (§2.5.1.3) whose timestamps move on by the previous segment's
duration, without the marker bit; such a segment continues the press rather
than starting a new one. Events other than the sixteen DTMF keys (flash,
event 16, and the rest) are ignored.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from ivr.rtp.packet import RtpPacket, timestamp_delta

DIGITS = "0123456789*#ABCD"  # RFC 4733 §3.2: events 0 to 15
FLASH = 16
MAX_DURATION = 0xFFFF  # the duration field is 16 bits of timestamp units
DEFAULT_VOLUME = 10  # -10 dBm0, a usual DTMF level
END_REPEATS = 3  # RFC 4733 §2.5.1.4: the final packet is sent three times in all

_PAYLOAD = struct.Struct("!BBH")
_RECENT_PRESSES = 16  # how many reported presses the receiver remembers
# A segment boundary only follows a segment that ran close to the maximum duration.
_SEGMENT_SLACK = 0x1000


class DtmfError(ValueError):
    """A telephone-event payload that does not follow RFC 4733 §2.3."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEvent:
    """One telephone-event payload (RFC 4733 §2.3)."""

    event: int  # 0-15 are the DTMF keys
    end: bool = False  # the E bit: this report closes the event
    volume: int = DEFAULT_VOLUME  # power level, in -dBm0 (0 to 63)
    duration: int = 0  # timestamp units since the event began

    @classmethod
    def parse(cls, payload: bytes | bytearray | memoryview) -> TelephoneEvent:
        """The event in an RTP payload; ``DtmfError`` when it is too short to be one."""
        if len(payload) < _PAYLOAD.size:
            raise DtmfError(f"a telephone-event payload is 4 octets, not {len(payload)}")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        # The R bit (0x40) is reserved: ignored on receipt (RFC 4733 §2.3.3).
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def serialize(self) -> bytes:
        """The 4-octet payload; ``ValueError`` if a field does not fit."""
        if not 0 <= self.volume <= 0x3F:
            raise ValueError(f"volume {self.volume} is not in 0..63")
        flags = self.volume | 0x80 if self.end else self.volume
        try:
            return _PAYLOAD.pack(self.event, flags, self.duration)
        except struct.error as exc:
            raise ValueError(f"a telephone-event field is out of range: {exc}") from None

    @property
    def digit(self) -> str | None:
        """The DTMF key for this event, or None for other events."""
        return DIGITS[self.event] if self.event < len(DIGITS) else None


def event_code(digit: str) -> int:
    """The event code of a DTMF key (``"0"``-``"9"``, ``"*"``, ``"#"``, ``"A"``-``"D"``)."""
    code = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"{digit!r} is not a DTMF key")
    return code


@dataclass(frozen=True, slots=True, kw_only=True)
class EventPacket:
    """One packet of a key press, as the sender must stamp it into its stream."""

    slot: int  # which packet interval, counted from the press's first (0)
    timestamp: int  # the press's start: the same in every packet of it
    marker: bool  # set on the first packet only
    event: TelephoneEvent

    @property
    def payload(self) -> bytes:
        return self.event.serialize()


class DtmfSender:
    """Lays out the packets of one key press on the packet clock (RFC 4733 §2.5.1)."""

    __slots__ = ("duration", "interval", "volume")

    def __init__(
        self, *, duration: int = 800, interval: int = 160, volume: int = DEFAULT_VOLUME
    ) -> None:
        if not 0 < duration <= MAX_DURATION:
            raise ValueError(f"a tone of {duration} units needs segments; keep it under 8 s")
        if interval <= 0:
            raise ValueError("the packet interval must be positive")
        self.duration = duration  # timestamp units (800: 100 ms at 8 kHz)
        self.interval = interval  # timestamp units between packets (160: 20 ms)
        self.volume = volume

    def packets(self, digit: str, *, timestamp: int) -> tuple[EventPacket, ...]:
        """The packets for ``digit`` pressed at RTP ``timestamp``, one per interval.

        Each update reports the duration reached at the end of its interval,
        as if it stood in for that interval's audio frame; the final report
        has the E bit and is repeated until it has been sent three times.
        """
        code = event_code(digit)
        updates = -(-self.duration // self.interval)  # the last one is the final report
        packets = []
        for slot in range(updates + END_REPEATS - 1):
            final = slot >= updates - 1
            event = TelephoneEvent(
                event=code,
                end=final,
                volume=self.volume,
                duration=self.duration if final else (slot + 1) * self.interval,
            )
            packets.append(
                EventPacket(slot=slot, timestamp=timestamp, marker=slot == 0, event=event)
            )
        return tuple(packets)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyPressed:
    """A DTMF key press heard in the stream: reported once, on its first packet to arrive."""

    digit: str
    timestamp: int  # the press's RTP timestamp
    ssrc: int


class DtmfReceiver:
    """Digits from one stream's telephone-event packets, each exactly once (RFC 4733 §2.5.2)."""

    __slots__ = (
        "_duration",
        "_event",
        "_recent",
        "_ssrc",
        "_timestamp",
        "duplicates",
        "ignored",
        "malformed",
        "stale",
    )

    def __init__(self) -> None:
        self._ssrc: int | None = None
        self._timestamp = 0  # the newest press's (or segment's) timestamp
        self._event = -1  # its event code (-1: none yet)
        self._duration = 0  # the longest duration reported for it
        self._recent: deque[tuple[int, int]] = deque(maxlen=_RECENT_PRESSES)
        self.duplicates = 0  # packets of a press already reported
        self.stale = 0  # packets older than the newest press
        self.ignored = 0  # events that are not DTMF keys
        self.malformed = 0  # payloads too short to be telephone events

    def receive(self, packet: RtpPacket) -> KeyPressed | None:
        """Take one telephone-event packet; the key press it reveals, if it is a new one."""
        try:
            event = TelephoneEvent.parse(packet.payload)
        except DtmfError:
            self.malformed += 1
            return None
        digit = event.digit
        if digit is None:
            self.ignored += 1
            return None
        if packet.ssrc != self._ssrc:
            # A new source (RFC 3550 §8): what we knew of the old one says nothing.
            self._ssrc = packet.ssrc
            self._event = -1
            self._recent.clear()
        timestamp = packet.timestamp
        key = (timestamp, event.event)
        if self._event >= 0:
            ahead = timestamp_delta(timestamp, self._timestamp)
            if ahead < 0:
                self.stale += 1
                return None
            if key in self._recent:
                self.duplicates += 1
                if timestamp == self._timestamp:
                    self._duration = max(self._duration, event.duration)
                return None
            if self._continues(event, ahead, packet.marker):
                self._timestamp = timestamp
                self._duration = event.duration
                self._recent.append(key)
                self.duplicates += 1
                return None
        self._timestamp = timestamp
        self._event = event.event
        self._duration = event.duration
        self._recent.append(key)
        return KeyPressed(digit=digit, timestamp=timestamp, ssrc=packet.ssrc)

    def _continues(self, event: TelephoneEvent, ahead: int, marker: bool) -> bool:
        # RFC 4733 §2.5.1.3: a new segment of a long press starts where the
        # previous segment's duration ended, with the same event and no marker.
        # Its final reports may all be lost, so "where it ended" is a lower bound.
        return (
            event.event == self._event
            and not marker
            and self._duration > MAX_DURATION - _SEGMENT_SLACK
            and self._duration <= ahead <= MAX_DURATION
        )
