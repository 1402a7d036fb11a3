"""RTP packets on the wire (RFC 3550 §5.1), and the arithmetic of their counters.

A packet is parsed from one UDP datagram and serialized back to one; nothing
here touches a socket. ``RtpPacket.parse`` checks the header's own validity
as RFC 3550 §A.1 lists it (version 2; a CSRC list, header extension and
padding count that fit in the datagram) and raises ``RtpError`` otherwise:
that is the peer breaking the rules, never a bug of ours. Whether the payload
type is one we agreed to is the caller's business. Serializing a packet whose fields are out of
range raises a plain ``ValueError``: that is ours.

Sequence numbers (16 bits) and timestamps (32 bits) wrap. ``seq_delta`` and
``timestamp_delta`` give the signed distance between two values modulo their
width. ``SequenceTracker`` follows one source's sequence numbers in the manner
of RFC 3550 Appendix A.1: it extends them past the wrap with a cycle count,
tells each arrival apart (the next one, one after a gap, a late one, a
duplicate, a stray jump), and keeps the received / expected / lost counts an
RTCP receiver report needs. Unlike A.1 it remembers which of the last
``WINDOW`` numbers it has seen, so a duplicate is recognised rather than
counted twice, and it has no probation period: a phone sends to the port we
negotiated, so its first packet is trusted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum

VERSION = 2
HEADER_SIZE = 12
SEQ_MOD = 1 << 16
TIMESTAMP_MOD = 1 << 32

# RFC 3550 §A.1: the largest forward jump taken as loss, and the largest
# backward step taken as reordering; anything else is a stray (or a restart).
MAX_DROPOUT = 3000
MAX_MISORDER = 100
WINDOW = 128  # how many recent numbers the duplicate check remembers (> MAX_MISORDER)

_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")
_CSRCS = tuple(struct.Struct(f"!{n}I") for n in range(16))


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP packet: the peer broke RFC 3550."""


class _Enum(Enum):
    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderExtension:
    """A header extension (RFC 3550 §5.3.1), kept opaque: its meaning belongs to a profile."""

    profile: int  # the 16 bits "defined by profile"
    data: bytes  # a whole number of 32-bit words


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpPacket:
    """One RTP packet: the fixed header, its CSRC list and extension, and the payload."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: HeaderExtension | None = None
    padding: int = 0  # padding octets after the payload, the count octet included

    @classmethod
    def parse(cls, datagram: bytes | bytearray | memoryview) -> RtpPacket:
        """The packet in ``datagram``; ``RtpError`` when it is not valid RTP."""
        size = len(datagram)
        if size < HEADER_SIZE:
            raise RtpError(f"{size} octets is shorter than the RTP fixed header")
        first, second, seq, timestamp, ssrc = _HEADER.unpack_from(datagram)
        if first >> 6 != VERSION:
            raise RtpError(f"RTP version {first >> 6}, expected {VERSION}")
        offset = HEADER_SIZE
        csrc_count = first & 0x0F
        csrcs: tuple[int, ...] = ()
        if csrc_count:
            end = offset + 4 * csrc_count
            if end > size:
                raise RtpError(f"{csrc_count} CSRCs do not fit in {size} octets")
            csrcs = _CSRCS[csrc_count].unpack_from(datagram, offset)
            offset = end
        extension = None
        if first & 0x10:
            if offset + 4 > size:
                raise RtpError("the header extension does not fit in the datagram")
            profile, words = _EXTENSION_HEADER.unpack_from(datagram, offset)
            start = offset + 4
            offset = start + 4 * words
            if offset > size:
                raise RtpError(f"a header extension of {words} words does not fit")
            extension = HeaderExtension(profile=profile, data=bytes(datagram[start:offset]))
        end = size
        padding = 0
        if first & 0x20:
            # RFC 3550 §5.1: the last octet counts the padding, itself included.
            padding = datagram[-1]
            if padding == 0 or padding > size - offset:
                raise RtpError(f"a padding count of {padding} does not fit after the header")
            end -= padding
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(datagram[offset:end]),
            marker=bool(second & 0x80),
            csrcs=csrcs,
            extension=extension,
            padding=padding,
        )

    def serialize(self) -> bytes:
        """The datagram for this packet; ``ValueError`` if a field does not fit its width."""
        if not 0 <= self.payload_type <= 0x7F:
            raise ValueError(f"payload type {self.payload_type} is not 7 bits")
        if len(self.csrcs) > 15:
            raise ValueError(f"{len(self.csrcs)} CSRCs, at most 15 fit")
        if not 0 <= self.padding <= 0xFF:
            raise ValueError(f"padding of {self.padding} octets, at most 255 fit")
        first = VERSION << 6 | len(self.csrcs)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = self.payload_type | 0x80 if self.marker else self.payload_type
        try:
            header = _HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)
            if not (self.csrcs or self.extension or self.padding):
                return header + self.payload
            parts = [header]
            if self.csrcs:
                parts.append(_CSRCS[len(self.csrcs)].pack(*self.csrcs))
            if self.extension is not None:
                words, rest = divmod(len(self.extension.data), 4)
                if rest:
                    raise ValueError("a header extension must be whole 32-bit words")
                parts.append(_EXTENSION_HEADER.pack(self.extension.profile, words))
                parts.append(self.extension.data)
        except struct.error as exc:
            raise ValueError(f"an RTP header field is out of range: {exc}") from None
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def seq_delta(a: int, b: int) -> int:
    """``a - b`` in sequence-number space: the signed distance, in [-32768, 32767]."""
    return (a - b + 0x8000) % SEQ_MOD - 0x8000


def timestamp_delta(a: int, b: int) -> int:
    """``a - b`` in timestamp space: the signed distance, in [-2**31, 2**31 - 1]."""
    return (a - b + 0x8000_0000) % TIMESTAMP_MOD - 0x8000_0000


class Order(_Enum):
    """Where an arriving packet stands in its source's sequence."""

    FIRST = "first"  # the first packet seen from the source
    NEXT = "next"  # one after the highest so far
    GAP = "gap"  # further ahead: the packets in between are missing, for now
    LATE = "late"  # behind the highest, not seen before: it was reordered
    DUPLICATE = "duplicate"  # seen before: discard
    STRAY = "stray"  # a jump too large to be loss or reordering: discard
    RESTART = "restart"  # a stray confirmed by its successor: the source restarted


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    """How one sequence number fitted, and its extended (unwrapped) value."""

    order: Order
    extended: int | None  # None for a discarded stray

    @property
    def accepted(self) -> bool:
        """Whether the packet is new media (not a duplicate, not a stray)."""
        return self.order is not Order.DUPLICATE and self.order is not Order.STRAY


class SequenceTracker:
    """One source's sequence numbers, extended past the wrap (RFC 3550 §A.1)."""

    __slots__ = (
        "_bad_seq",
        "_base",
        "_cycles",
        "_max_seq",
        "_seen",
        "duplicates",
        "received",
        "reordered",
        "strays",
    )

    def __init__(self) -> None:
        self._max_seq: int | None = None
        self._cycles = 0
        self._base = 0  # the lowest extended number seen since the last (re)start
        self._seen = 0  # bit i set: extended number (highest - i) has arrived
        self._bad_seq: int | None = None
        self.received = 0  # distinct packets accepted since the first (or a restart)
        self.duplicates = 0
        self.reordered = 0
        self.strays = 0

    @property
    def highest(self) -> int | None:
        """The highest extended sequence number accepted, or None before the first."""
        return None if self._max_seq is None else self._cycles + self._max_seq

    @property
    def expected(self) -> int:
        """How many packets the source sent from the first to the highest (RFC 3550 §A.3)."""
        highest = self.highest
        return 0 if highest is None else highest - self._base + 1

    @property
    def lost(self) -> int:
        """Packets expected but not (yet) received."""
        return self.expected - self.received

    def receive(self, seq: int) -> Arrival:
        """Take the sequence number of an arriving packet, and say where it fits."""
        max_seq = self._max_seq
        if max_seq is None:
            return self._restart(seq, Order.FIRST)
        udelta = (seq - max_seq) & 0xFFFF
        if 0 < udelta < MAX_DROPOUT:
            if seq < max_seq:
                self._cycles += SEQ_MOD  # wrapped
            self._max_seq = seq
            self._seen = ((self._seen << udelta) | 1) & ((1 << WINDOW) - 1)
            self._bad_seq = None
            self.received += 1
            return Arrival(order=Order.NEXT if udelta == 1 else Order.GAP, extended=self.highest)
        behind = SEQ_MOD - udelta if udelta else 0
        if behind < MAX_MISORDER:
            extended = self._cycles + max_seq - behind
            bit = 1 << behind
            if self._seen & bit:
                self.duplicates += 1
                return Arrival(order=Order.DUPLICATE, extended=extended)
            self._seen |= bit
            self._base = min(self._base, extended)
            self.received += 1
            self.reordered += 1
            return Arrival(order=Order.LATE, extended=extended)
        # RFC 3550 §A.1: a very large jump. Believe it only when the next
        # packet follows on from it; until then it may be a stray.
        if seq == self._bad_seq:
            return self._restart(seq, Order.RESTART)
        self._bad_seq = (seq + 1) & 0xFFFF
        self.strays += 1
        return Arrival(order=Order.STRAY, extended=None)

    def _restart(self, seq: int, order: Order) -> Arrival:
        # RFC 3550 §A.1 init_seq: counting starts again from this packet.
        self._max_seq = seq
        self._cycles = 0
        self._base = seq
        self._seen = 1
        self._bad_seq = None
        self.received = 1
        return Arrival(order=order, extended=seq)
