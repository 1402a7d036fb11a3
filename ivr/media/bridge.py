"""A bridge: the two legs of a conversation (caller and agent) hear each other.

Theory of operation. A ``Bridge`` takes both legs over (``MediaLeg.begin_relay``
stops what they were playing) and attaches itself to each as a sink: every
packet one leg receives is sent out of the other, re-stamped into the other's
outgoing ``RtpStream`` (``RtpStream.relay``), so each far end keeps hearing
one stream, with one SSRC and unbroken sequence numbers and timestamps, from
the prompts before the bridge, through the bridge, to the music on hold after
it. Audio is not decoded when both legs agreed on the same G.711 law; between
a µ-law and an A-law leg each payload is converted by the G.711 tables
(``Codec.transcode``: one ``bytes.translate``, no linear step). RFC 4733
telephone-events are relayed too, renumbered to the payload type the other
far end knows them by; to a leg whose far end did not agree to
telephone-events they are dropped (and counted): tones are not synthesised
into the audio.

Packets pass one by one, as they arrive: no jitter buffer, no mixing (a
bridge joins exactly two legs; a conference would need a mixer). Closing the
bridge (or either leg closing) hands both legs back (``end_relay``), open and
configured, for music on hold, another prompt or another bridge; ``done``
then resolves. The packets' CSRC list and header extensions are not carried
over.

Timing. Relayed audio is not paced, so it cannot be late against a tick;
what can be late is its arrival. Each direction keeps an ``ArrivalClock``:
a packet's RTP timestamp says when, on its sender's clock, it was due, so
its arrival time minus that (its transit) is constant while nothing delays
it. The packet's lateness is its transit minus the least transit of its
stream over the last one to two seconds of timestamps (``WINDOW``): the
delay variation of RFC 5481 §4.1 against the earliest recent packet, which
takes in whatever held the packet back, above all our event loop reading
the socket late, and the sender's own scheduling. The reference is recent
rather than the least since the call began so that a sender whose clock
slips once (it overslept a period and carries on from there) counts as late
for at most two seconds, not for the rest of the call, as a receiver's
jitter buffer would adapt to it. The lateness goes into the pacer's
``relayed_meter`` (1 ms bins; 20 ms or more is late). A new SSRC or a marker
bit (a new talkspurt, RFC 3551 §4.1) starts the reference again; so does a
lateness beyond ``RESTART_AFTER``, taken as the sender restarting its
timestamps rather than as a packet held that long.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, replace

from ivr.media.leg import MediaLeg
from ivr.media.pacer import LatenessMeter
from ivr.rtp.packet import RtpPacket, timestamp_delta
from ivr.rtp.stream import CLOCK_RATE

RESTART_AFTER = 2.0  # seconds of lateness taken as a restarted timestamp line, not a delay
WINDOW = 1.0  # seconds of timestamps a block of the reference's minimum covers


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeStatistics:
    """What a bridge has passed, each way counted together."""

    relayed: int  # audio packets sent on as they came
    transcoded: int  # audio packets converted between µ-law and A-law
    events: int  # telephone-event packets relayed
    events_dropped: int  # to a far end without telephone-events


class ArrivalClock:
    """How late one stream's packets arrive against their RTP timestamps (sans-IO)."""

    __slots__ = (
        "_block",
        "_block_least",
        "_elapsed",
        "_last_timestamp",
        "_previous_least",
        "_ssrc",
    )

    def __init__(self) -> None:
        self._ssrc: int | None = None
        self._last_timestamp = 0
        self._elapsed = 0.0  # seconds of the sender's clock since the stream's reference
        self._block = 0  # which WINDOW of elapsed time the newest packet fell in
        self._block_least = math.inf  # the least transit (arrival minus elapsed) in that block
        self._previous_least = math.inf  # and in the block before it

    def arrived(self, packet: RtpPacket, now: float, meter: LatenessMeter) -> None:
        """``packet`` arrived at ``now``: its lateness goes into ``meter``."""
        if packet.ssrc != self._ssrc or packet.marker:
            self._restart(packet, now)
            meter.observe(0.0)
            return
        step = timestamp_delta(packet.timestamp, self._last_timestamp) / CLOCK_RATE
        elapsed = self._elapsed + step
        transit = now - elapsed
        if step > 0:  # a reordered packet does not move the line back
            self._elapsed = elapsed
            self._last_timestamp = packet.timestamp
            block = int(elapsed // WINDOW)
            if block != self._block:
                self._previous_least = self._block_least if block == self._block + 1 else math.inf
                self._block_least = math.inf
                self._block = block
        if transit < self._block_least:
            self._block_least = transit
        lateness = transit - min(self._block_least, self._previous_least)
        if lateness > RESTART_AFTER:
            self._restart(packet, now)
            lateness = 0.0
        meter.observe(lateness)

    def _restart(self, packet: RtpPacket, now: float) -> None:
        self._ssrc = packet.ssrc
        self._last_timestamp = packet.timestamp
        self._elapsed = 0.0
        self._block = 0
        self._block_least = now
        self._previous_least = math.inf


class Bridge:
    """Relays RTP between two legs, both ways, until closed."""

    __slots__ = ("_arrivals", "_closed", "_counts", "a", "b", "done")

    def __init__(self, a: MediaLeg, b: MediaLeg) -> None:
        """Bridge ``a`` and ``b`` now: whatever they were playing stops."""
        if a is b:
            raise ValueError("a leg cannot be bridged to itself")
        if a.codec is None or b.codec is None:
            raise RuntimeError("configure both legs before bridging them")
        self.a = a
        self.b = b
        self._closed = False
        self._counts = [0, 0, 0, 0]  # relayed, transcoded, events, events dropped
        self._arrivals = (ArrivalClock(), ArrivalClock())  # from a, from b
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        a.begin_relay(self)
        try:
            b.begin_relay(self)
        except Exception:
            a.end_relay(self)
            raise
        a.attach(self)
        b.attach(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def other(self, leg: MediaLeg) -> MediaLeg:
        return self.b if leg is self.a else self.a

    def audio_received(self, leg: MediaLeg, packet: RtpPacket, now: float) -> None:
        from_a = leg is self.a
        other = self.b if from_a else self.a
        self._arrivals[0 if from_a else 1].arrived(packet, now, leg.pacer.relayed_meter)
        source_codec = leg.codec
        target_codec = other.codec
        if source_codec is target_codec or source_codec is None or target_codec is None:
            self._counts[0] += 1
            other.relay(packet, now, payload_type=other.payload_type)
            return
        self._counts[1] += 1
        payload = source_codec.transcode(packet.payload, target_codec)
        other.relay(replace(packet, payload=payload), now, payload_type=other.payload_type)

    def event_received(self, leg: MediaLeg, packet: RtpPacket, now: float) -> None:
        other = self.b if leg is self.a else self.a
        event_payload_type = other.event_payload_type
        if event_payload_type is None:
            self._counts[3] += 1
            return
        self._counts[2] += 1
        other.relay(packet, now, payload_type=event_payload_type)

    def leg_closed(self, leg: MediaLeg, now: float) -> None:
        self.close()

    def close(self) -> None:
        """Hand both legs back (quiet, or silence if continuous); harmless when closed."""
        if self._closed:
            return
        self._closed = True
        for leg in (self.a, self.b):
            leg.detach(self)
            leg.end_relay(self)
        if not self.done.done():
            self.done.set_result(None)

    def statistics(self) -> BridgeStatistics:
        relayed, transcoded, events, dropped = self._counts
        return BridgeStatistics(
            relayed=relayed, transcoded=transcoded, events=events, events_dropped=dropped
        )
