"""Recording what a leg hears to a WAV file: voicemail.

Theory of operation. A ``Recording`` attaches to a leg as a sink and writes
each audio payload the leg accepts to a µ-law WAV file (``WavRecorder``; an
A-law leg's payloads are converted by the G.711 tables). The file keeps time
with the call, so that a message with pauses plays back with its pauses:

* within one source, a jump in RTP timestamps beyond the samples written
  (lost packets, or a phone that stops sending in silence, RFC 3551 §4.1) is
  filled with that many samples of silence; a jump of more than
  ``MAX_TIMESTAMP_GAP`` is taken for a broken clock and the gap is measured
  on the wall clock instead;
* before the first packet, after a change of source (a new SSRC), and at the
  end, the gap is measured on the wall clock: from the start of the
  recording, from the last packet, until the recording stops;
* a packet that arrives behind what is written (reordered) is dropped, as
  there is no jitter buffer to put it back in its place.

The recording stops when ``stop()`` is called, when ``max_seconds`` of audio
have been written (or have passed on the wall clock, if the caller went
quiet: the recording asks the leg's ``Pacer`` to tick it, so that time, like
all media time, comes from the pacer's clock), or when the leg closes; the file is then
padded to the wall-clock length (never beyond the maximum), its header
patched and closed, and ``done`` resolves with a ``RecordingResult``.
Telephone-events are not audio and are not written (a flow that ends the
message on ``#`` watches the leg's digits and calls ``stop``). Writes are
plain buffered file writes from the event loop: 8 kB a second per recording.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ivr.media.leg import MediaLeg
from ivr.media.pacer import LatenessMeter
from ivr.rtp.g711 import SAMPLE_RATE, Codec
from ivr.rtp.packet import RtpPacket, timestamp_delta
from ivr.rtp.wav import WavRecorder

DEFAULT_MAX_SECONDS = 120.0
MAX_TIMESTAMP_GAP = 10 * SAMPLE_RATE  # 10 s of samples: beyond that, trust the wall clock
_SILENCE = Codec.PCMU.silence


class RecordingEnd(Enum):
    """Why a recording stopped."""

    __hash__ = object.__hash__

    STOPPED = "stopped"
    MAX_DURATION = "max_duration"
    CLOSED = "closed"  # the leg closed (the caller hung up)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingResult:
    """A finished recording."""

    path: Path
    ending: RecordingEnd
    seconds: float  # the length of the file's audio
    packets: int  # audio packets written
    filled: int  # samples of silence inserted for gaps
    dropped: int  # packets dropped: reordered behind what was written


class Recording:
    """Writes what a leg receives to a µ-law WAV file until stopped."""

    __slots__ = (
        "_anchor",
        "_deadline",
        "_dropped",
        "_filled",
        "_limit",
        "_next_timestamp",
        "_packets",
        "_ssrc",
        "_start",
        "_wav",
        "done",
        "leg",
        "path",
    )

    def __init__(
        self, leg: MediaLeg, path: str | Path, *, max_seconds: float = DEFAULT_MAX_SECONDS
    ) -> None:
        """Start recording ``leg`` into a new file at ``path`` now."""
        if leg.codec is None:
            raise RuntimeError("configure the leg before recording it")
        if max_seconds <= 0:
            raise ValueError("a recording needs a positive maximum duration")
        loop = asyncio.get_running_loop()
        self.leg = leg
        self.path = Path(path)
        self._wav = WavRecorder.create(self.path, Codec.PCMU)
        self._limit = round(max_seconds * SAMPLE_RATE)  # in samples
        self._start = leg.pacer.now()
        self._anchor = (self._start, 0)  # (wall time, samples written by then)
        self._ssrc: int | None = None
        self._next_timestamp = 0  # the RTP timestamp of the next sample expected
        self._packets = 0
        self._filled = 0
        self._dropped = 0
        self.done: asyncio.Future[RecordingResult] = loop.create_future()
        self._deadline = self._start + max_seconds
        leg.attach(self)
        leg.pacer.add(self)

    @property
    def samples(self) -> int:
        return self._wav.samples

    def audio_received(self, leg: MediaLeg, packet: RtpPacket, now: float) -> None:
        codec = leg.codec
        if codec is None or self.done.done():
            return
        payload = packet.payload
        if packet.ssrc == self._ssrc:
            gap = timestamp_delta(packet.timestamp, self._next_timestamp)
            if gap < 0:
                self._dropped += 1
                return
            if gap > MAX_TIMESTAMP_GAP:
                gap = self._wall_gap(now, len(payload))
        else:
            self._ssrc = packet.ssrc
            gap = self._wall_gap(now, len(payload))
        self._next_timestamp = (packet.timestamp + len(payload)) & 0xFFFF_FFFF
        self._fill(gap)
        self._write(codec.transcode(payload, Codec.PCMU) if codec is not Codec.PCMU else payload)
        self._packets += 1
        self._anchor = (now, self._wav.samples)
        if self._wav.samples >= self._limit:
            self._finish(RecordingEnd.MAX_DURATION, None)

    def pace(self, now: float, meter: LatenessMeter) -> bool:
        """The pacer's tick: stop at the maximum duration even if no packet comes."""
        if self.done.done():
            return False
        if now >= self._deadline:
            self._finish(RecordingEnd.MAX_DURATION, min(now, self._deadline))
            return False
        return True

    def event_received(self, leg: MediaLeg, packet: RtpPacket, now: float) -> None:
        pass  # key presses are not audio

    def leg_closed(self, leg: MediaLeg, now: float) -> None:
        self._finish(RecordingEnd.CLOSED, now)

    def stop(self) -> None:
        """Stop now: pad to the time elapsed, close the file; harmless once stopped."""
        self._finish(RecordingEnd.STOPPED, None)

    def _wall_gap(self, now: float, arriving: int) -> int:
        # The packet arriving now ends now: the silence before it is what the
        # wall clock says has passed since the anchor, less its own length.
        anchor_time, anchor_samples = self._anchor
        elapsed = round((now - anchor_time) * SAMPLE_RATE)
        return max(elapsed - (self._wav.samples - anchor_samples) - arriving, 0)

    def _fill(self, samples: int) -> None:
        samples = min(samples, self._limit - self._wav.samples)
        if samples > 0:
            self._wav.write(bytes((_SILENCE,)) * samples)
            self._filled += samples

    def _write(self, payload: bytes) -> None:
        room = self._limit - self._wav.samples
        if room > 0:
            self._wav.write(payload[:room])

    def _finish(self, ending: RecordingEnd, now: float | None) -> None:
        if self.done.done():
            return
        if now is None:
            now = self.leg.pacer.now()
        self.leg.detach(self)
        self.leg.pacer.discard(self)
        self._fill(self._wall_gap(now, 0))
        self._wav.close()
        self.done.set_result(
            RecordingResult(
                path=self.path,
                ending=ending,
                seconds=self._wav.samples / SAMPLE_RATE,
                packets=self._packets,
                filled=self._filled,
                dropped=self._dropped,
            )
        )
