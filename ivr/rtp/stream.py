"""One direction of outgoing RTP: our own frames on a 20 ms clock, or another leg's packets relayed.

``RtpStream`` owns what the far end sees of us: one SSRC, one run of sequence
numbers and one timestamp line (RFC 3550 §5.1). It never reads a clock or
touches a socket; times are floats passed in, as everywhere in the core.

Our own audio (prompts, tones, silence) is paced: frame n is due at
``start + n × 20 ms`` and carries timestamp ``t0 + n × 160``, whatever the
time of the tick that sends it, so a late tick never shifts the schedule and
the timestamps never drift from the sample clock. ``due(now)`` says how many
frames have come due; the runtime stamps that many and sleeps until
``next_due``. A frame may be skipped (nothing sent, e.g. silence suppression):
the timestamp line moves on and the next packet gets the marker bit, as the
first packet of a talkspurt must (RFC 3551 §4.1), and so does the first packet
of the stream. Key presses (``ivr.rtp.dtmf``) take frame slots of their own.

Packets relayed from another leg (the agent's voice, once bridged) keep their
payload but get our SSRC, and sequence numbers and timestamps shifted onto our
lines: when the source changes (a new SSRC, or a jump RFC 3550 §A.1 would call
a restart) the offsets are set so that its first packet follows on from the
last one we sent, one sequence number and the elapsed time later, with the
marker bit; after that the source's own spacing, losses and reordering pass
through unchanged. So the far end hears one continuous stream across a switch
from prompts to the agent and back. Payloads are not decoded: relay only
between legs that agreed on the same codec.

After relaying, or after the runtime fell so far behind that it would rather
drop frames than burst them, ``reschedule(now)`` starts the 20 ms clock again
from ``now`` without breaking the lines.
"""

from __future__ import annotations

import secrets

from ivr.rtp.dtmf import EventPacket
from ivr.rtp.packet import (
    MAX_DROPOUT,
    MAX_MISORDER,
    TIMESTAMP_MOD,
    RtpPacket,
    seq_delta,
    timestamp_delta,
)

CLOCK_RATE = 8000
FRAME_SAMPLES = 160
_EPSILON = 1e-9  # slack for float rounding when a tick lands exactly on a due time


class RtpStream:
    """Stamps our frames and relayed packets into one outgoing RTP stream (sans-IO)."""

    __slots__ = (
        "_frame",
        "_frame_duration",
        "_last_time",
        "_last_timestamp",
        "_marker_pending",
        "_relaying",
        "_seq",
        "_seq_offset",
        "_source",
        "_source_seq",
        "_start",
        "_timestamp_offset",
        "_timestamp_start",
        "clock_rate",
        "event_payload_type",
        "frame_samples",
        "octets_sent",
        "packets_sent",
        "payload_type",
        "ssrc",
    )

    def __init__(
        self,
        *,
        payload_type: int,
        start: float,
        event_payload_type: int | None = None,
        ssrc: int | None = None,
        sequence_number: int | None = None,
        timestamp: int | None = None,
        clock_rate: int = CLOCK_RATE,
        frame_samples: int = FRAME_SAMPLES,
    ) -> None:
        # RFC 3550 §5.1, §8: the SSRC and the first sequence number and
        # timestamp are random, unless a test pins them.
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.payload_type = payload_type
        self.event_payload_type = event_payload_type
        self.clock_rate = clock_rate
        self.frame_samples = frame_samples
        self._frame_duration = frame_samples / clock_rate
        self._seq = secrets.randbits(16) if sequence_number is None else sequence_number
        self._start = start
        self._frame = 0  # the next frame slot, counted from _start
        self._timestamp_start = secrets.randbits(32) if timestamp is None else timestamp
        self._marker_pending = True  # the first packet starts a talkspurt
        self._last_timestamp: int | None = None  # where the line stood at the newest packet
        self._last_time = start  # and when it got there
        self._relaying = False
        self._source: int | None = None  # the SSRC being relayed
        self._source_seq = 0  # its highest sequence number so far
        self._seq_offset = 0
        self._timestamp_offset = 0
        self.packets_sent = 0  # RFC 3550 §6.4.1 sender's packet count
        self.octets_sent = 0  # and payload octet count

    @property
    def next_due(self) -> float:
        """When the next frame of our own is due."""
        return self._start + self._frame * self._frame_duration

    @property
    def next_timestamp(self) -> int:
        """The RTP timestamp the next frame of our own will carry."""
        return (self._timestamp_start + self._frame * self.frame_samples) % TIMESTAMP_MOD

    @property
    def next_sequence_number(self) -> int:
        return self._seq

    def due(self, now: float) -> int:
        """How many frames of our own have come due by ``now`` and are not yet stamped."""
        elapsed = (now - self._start) / self._frame_duration
        if elapsed < -_EPSILON:
            return 0
        return max(int(elapsed + _EPSILON) + 1 - self._frame, 0)

    def stamp(self, payload: bytes, *, marker: bool = False) -> RtpPacket:
        """Our next frame as a packet: the next sequence number, the frame's timestamp."""
        return self._emit(payload, self.payload_type, self.next_timestamp, marker)

    def skip(self) -> None:
        """Let the next frame pass unsent; the next packet will start a talkspurt."""
        self._check_paced()
        self._frame += 1
        self._marker_pending = True

    def stamp_event(self, event: EventPacket) -> RtpPacket:
        """One packet of a key press, in the frame slot it stands for (RFC 4733 §2.5.1.2)."""
        if self.event_payload_type is None:
            raise ValueError("the far end did not agree to telephone-events")
        marker_pending = self._marker_pending
        self._marker_pending = False
        packet = self._emit(event.payload, self.event_payload_type, event.timestamp, event.marker)
        self._marker_pending = marker_pending  # the audio after the press keeps its own
        return packet

    def reschedule(self, now: float) -> None:
        """Start the 20 ms clock again at ``now``, the timestamp line continuing through the gap."""
        if self._last_timestamp is not None:
            elapsed = max(round((now - self._last_time) * self.clock_rate), self.frame_samples)
            self._timestamp_start = (self._last_timestamp + elapsed) % TIMESTAMP_MOD
        else:
            self._timestamp_start = self.next_timestamp
        self._start = now
        self._frame = 0
        self._marker_pending = True
        self._relaying = False
        self._source = None

    def relay(self, packet: RtpPacket, now: float, *, payload_type: int | None = None) -> RtpPacket:
        """``packet`` from another leg, rewritten into this stream.

        ``payload_type`` is the number this leg's far end knows the payload by,
        when the two legs numbered it differently (telephone-events often).
        """
        seq = packet.sequence_number
        marker = packet.marker
        if packet.ssrc != self._source or not self._continues(seq):
            self._rebase(packet, now)
            marker = True
        elif seq_delta(seq, self._source_seq) > 0:
            self._source_seq = seq
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_timestamp = (packet.timestamp + self._timestamp_offset) % TIMESTAMP_MOD
        if seq_delta(out_seq, self._seq) >= 0:  # the newest yet, not a late one
            self._seq = (out_seq + 1) & 0xFFFF
            # A key press's packets all carry its first timestamp: the line is
            # anchored where a timestamp last moved on, and when.
            last = self._last_timestamp
            if last is None or timestamp_delta(out_timestamp, last) > 0:
                self._last_timestamp = out_timestamp
                self._last_time = now
        self.packets_sent += 1
        self.octets_sent += len(packet.payload)
        return RtpPacket(
            payload_type=packet.payload_type if payload_type is None else payload_type,
            sequence_number=out_seq,
            timestamp=out_timestamp,
            ssrc=self.ssrc,
            payload=packet.payload,
            marker=marker,
        )

    def _continues(self, seq: int) -> bool:
        # RFC 3550 §A.1: within the dropout and misorder limits it is the same run.
        return -MAX_MISORDER < seq_delta(seq, self._source_seq) < MAX_DROPOUT

    def _rebase(self, packet: RtpPacket, now: float) -> None:
        if self._last_timestamp is None:
            timestamp = self.next_timestamp
        else:
            # Follow on from the last packet sent by the time since, and at
            # least by one frame, so the two runs never overlap.
            elapsed = max(round((now - self._last_time) * self.clock_rate), self.frame_samples)
            timestamp = (self._last_timestamp + elapsed) % TIMESTAMP_MOD
        self._source = packet.ssrc
        self._source_seq = packet.sequence_number
        self._seq_offset = (self._seq - packet.sequence_number) & 0xFFFF
        self._timestamp_offset = (timestamp - packet.timestamp) % TIMESTAMP_MOD
        self._relaying = True

    def _check_paced(self) -> None:
        if self._relaying:
            raise RuntimeError("the stream is relaying: reschedule(now) before sending frames")

    def _emit(self, payload: bytes, payload_type: int, timestamp: int, marker: bool) -> RtpPacket:
        self._check_paced()
        packet = RtpPacket(
            payload_type=payload_type,
            sequence_number=self._seq,
            timestamp=timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=marker or self._marker_pending,
        )
        # Where the timestamp line stands: the slot's, even for a key press's
        # packets, which all carry the press's first timestamp.
        self._last_time = self.next_due
        self._last_timestamp = self.next_timestamp
        self._seq = (self._seq + 1) & 0xFFFF
        self._frame += 1
        self._marker_pending = False
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return packet
