"""A media leg: one call leg's RTP socket, what it hears and what it sends.

Theory of operation. ``MediaLeg.open`` binds a socket from the ``PortPool``
(its port goes into our SDP); ``configure`` applies what offer/answer agreed
(``ivr.sdp.AudioAgreement``: codec, payload types, where to send, who
sends), and may be called again on a re-INVITE.

Receiving. A datagram that is not RTP is counted and dropped, and so is one
from a source the leg does not accept: the leg latches to where the far
end's packets come from (symmetric RTP, for NAT; the rule is
``ivr.media.reception.Latch``'s). Accepted packets are counted per SSRC
(``Reception``: received, expected, lost, duplicates, reordered),
duplicates and strays are dropped, and the rest are dispatched by payload
type: audio and RFC 4733 telephone-events
to the attached ``MediaSink``s (a bridge, a recorder), events also to a
``DtmfReceiver`` that reports each key press exactly once, through the
``digits`` queue and the ``on_digit`` callback. A digit first stops a
playback that asked to be interrupted (barge-in), then is reported, so a flow
reacting to it can start the next prompt.

Sending. One ``RtpStream`` per leg keeps the SSRC, sequence numbers and
timestamps the far end sees, across everything the leg sends. The output is
in one of three states:

* ``QUIET``: nothing to send; the leg is not paced (and the far end hears
  nothing, unless ``continuous``);
* ``PACED``: the leg's own 20 ms frames, sent from the ``Pacer``'s ticks:
  queued key presses (``send_digits``) first, then the playing source
  (``ivr.media.player``), then, when ``continuous``, silence frames for far
  ends that drop a call whose RTP stops (comfort frames, not RFC 3389 CN);
* ``RELAYED``: a bridge sends the other leg's packets through ``relay``;
  when ``continuous``, a relay silent for more than ``FILL_AFTER`` is filled
  with silence frames until packets come again.

Entering ``PACED`` from another state restarts the stream's 20 ms schedule on
the pacer's grid (``RtpStream.reschedule``), so frames never burst to make up
for time the leg was quiet or relaying. When the far end does not receive
(the agreement's direction does not send: it put us on hold) frame slots pass
unsent, so prompts still take their time and flows are not stalled. A tick
that finds more than ``MAX_BURST`` frames due (the loop stalled) restarts the
schedule rather than burst them all.

Not done: RTCP (see ``ivr.media.ports``), SRTP, jitter buffering (sinks get
packets in arrival order).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from ivr.media.pacer import LatenessMeter, Pacer
from ivr.media.ports import PortPool
from ivr.media.reception import Latch, Reception
from ivr.rtp.dtmf import DtmfReceiver, DtmfSender, EventPacket, KeyPressed, event_code
from ivr.rtp.g711 import Codec
from ivr.rtp.packet import RtpError, RtpPacket
from ivr.rtp.stream import RtpStream
from ivr.sdp import AudioAgreement

MAX_BURST = 10  # frames (200 ms): more than this due at one tick, and the schedule restarts
FILL_AFTER = 0.06  # seconds a relay may be silent before a continuous leg fills it
DIGIT_GAP_SLOTS = 3  # 60 ms between two key presses sent
DIGIT_QUEUE_SIZE = 64


class _Enum(Enum):
    __hash__ = object.__hash__


class Output(_Enum):
    """What the leg sends its far end."""

    QUIET = "quiet"
    PACED = "paced"
    RELAYED = "relayed"


class PlaybackEnd(_Enum):
    """Why a source of frames stopped playing."""

    FINISHED = "finished"  # played to its end
    INTERRUPTED = "interrupted"  # a key press, with barge-in
    STOPPED = "stopped"  # stopped on request
    REPLACED = "replaced"  # another playback or a bridge took the leg
    CLOSED = "closed"  # the leg closed


class FrameSource(Protocol):
    """Frames for a leg to send, one per 20 ms slot (a playback)."""

    @property
    def barge_in(self) -> bool:
        """Whether a key press stops it."""
        ...

    def next_frame(self) -> bytes | None:
        """The next payload in the leg's codec, or None when finished."""
        ...

    @property
    def exhausted(self) -> bool:
        """Whether the last frame has been taken (so it ends with that frame's slot)."""
        ...

    def end(self, ending: PlaybackEnd, digit: str | None) -> None:
        """The leg stopped playing it (called once)."""
        ...


class MediaSink(Protocol):
    """Takes what a leg receives: a bridge, a recorder."""

    def audio_received(self, leg: MediaLeg, packet: RtpPacket, now: float) -> None: ...

    def event_received(self, leg: MediaLeg, packet: RtpPacket, now: float) -> None: ...

    def leg_closed(self, leg: MediaLeg, now: float) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class LegStatistics:
    """What a leg has received and sent since it opened."""

    packets_received: int  # accepted: not duplicates, strays, or from foreign sources
    octets_received: int  # payload octets
    packets_expected: int  # RFC 3550 §A.3, summed over the sources (SSRCs) heard
    packets_lost: int
    duplicates: int
    reordered: int
    strays: int
    malformed: int  # datagrams that are not RTP
    foreign: int  # from a source not accepted, or while not receiving (unconfigured, held)
    unknown_payload: int  # payload types not agreed (comfort noise and the like)
    digits: int  # key presses reported
    digits_dropped: int  # reported while the digit queue was full
    packets_sent: int
    octets_sent: int
    send_errors: int  # socket errors (ICMP unreachable and the like)
    latched_to: tuple[str, int] | None


def _normal_address(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise ValueError(
            f"{address!r} is not an IP address: resolve it before configuring"
        ) from None


def _unspecified(address: str) -> bool:
    return ipaddress.ip_address(address).is_unspecified  # RFC 3264 §8.4: "0.0.0.0" is hold


class _Endpoint(asyncio.DatagramProtocol):
    """The asyncio end of a leg's socket: hands datagrams on, returns the port when closed."""

    def __init__(self, ports: PortPool) -> None:
        self.ports = ports
        self.port = 0
        self.leg: MediaLeg | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.leg is not None:
            self.leg.datagram_received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        if self.leg is not None:
            self.leg.send_errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.ports.release(self.port)


class MediaLeg:
    """One call leg's RTP endpoint: latching receive, digits heard, paced or relayed send."""

    __slots__ = (
        "_closed",
        "_codec",
        "_continuous",
        "_digit_sender",
        "_dtmf",
        "_event_payload_type",
        "_filling",
        "_foreign",
        "_last_relayed",
        "_latch",
        "_malformed",
        "_output",
        "_pacer",
        "_payload_type",
        "_pending_digits",
        "_press",
        "_receives",
        "_reception",
        "_relay_owner",
        "_sends",
        "_sinks",
        "_source",
        "_stream",
        "_transport",
        "_unknown",
        "digits",
        "digits_dropped",
        "digits_reported",
        "on_digit",
        "port",
        "send_errors",
    )

    def __init__(
        self,
        *,
        transport: asyncio.DatagramTransport,
        port: int,
        pacer: Pacer,
        continuous: bool = False,
        latching: bool = True,
    ) -> None:
        """Wrap a bound socket; use ``MediaLeg.open`` rather than this."""
        self._transport = transport
        self.port = port
        self._pacer = pacer
        self._continuous = continuous
        self._latch = Latch(latching=latching)
        self._closed = False
        self._codec: Codec | None = None
        self._payload_type = -1
        self._event_payload_type: int | None = None
        self._sends = False
        self._receives = False
        self._stream: RtpStream | None = None
        self._output = Output.QUIET
        self._source: FrameSource | None = None
        self._sinks: list[MediaSink] = []
        self._relay_owner: object | None = None
        self._last_relayed = 0.0
        self._filling = False
        self._digit_sender = DtmfSender()
        self._pending_digits: deque[str] = deque()
        self._press: deque[EventPacket | None] = deque()  # None: a pause slot
        self._dtmf = DtmfReceiver()
        self._reception = Reception()
        self._malformed = 0
        self._foreign = 0
        self._unknown = 0
        self.send_errors = 0
        self.digits: asyncio.Queue[KeyPressed] = asyncio.Queue(DIGIT_QUEUE_SIZE)
        self.digits_reported = 0
        self.digits_dropped = 0
        self.on_digit: Callable[[MediaLeg, KeyPressed], None] | None = None

    @classmethod
    async def open(
        cls, *, ports: PortPool, pacer: Pacer, continuous: bool = False, latching: bool = True
    ) -> MediaLeg:
        """A leg on the next free port of ``ports``; ``PortsExhausted`` when none is."""
        transport, endpoint, port = await ports.bind(lambda: _Endpoint(ports))
        endpoint.port = port
        leg = cls(
            transport=transport, port=port, pacer=pacer, continuous=continuous, latching=latching
        )
        endpoint.leg = leg
        return leg

    # ---------------------------------------------------------------- set-up

    @property
    def local_address(self) -> tuple[str, int]:
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    @property
    def pacer(self) -> Pacer:
        """The pacer the leg sends by, whose clock is the leg's media clock."""
        return self._pacer

    @property
    def codec(self) -> Codec | None:
        return self._codec

    @property
    def payload_type(self) -> int:
        return self._payload_type

    @property
    def event_payload_type(self) -> int | None:
        return self._event_payload_type

    @property
    def remote(self) -> tuple[str, int] | None:
        """Where the leg sends: the latched source, else the SDP address."""
        return self._latch.target

    @property
    def output(self) -> Output:
        return self._output

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def stream(self) -> RtpStream | None:
        """The outgoing stream (its SSRC and counters), once configured."""
        return self._stream

    def configure(self, agreement: AudioAgreement) -> None:
        """Apply what offer/answer agreed; again on every re-INVITE."""
        address = _normal_address(agreement.remote_address)
        self._latch.signal((address, agreement.remote_port))
        self._codec = agreement.codec
        self._payload_type = agreement.payload_type
        self._event_payload_type = agreement.telephone_event
        reachable = agreement.remote_port != 0 and not _unspecified(address)
        self._sends = agreement.direction.sends and reachable
        self._receives = agreement.direction.receives
        stream = self._stream
        if stream is None:
            now = self._pacer.now()
            self._stream = RtpStream(
                payload_type=agreement.payload_type,
                event_payload_type=agreement.telephone_event,
                start=self._pacer.next_tick(now),
            )
        else:
            stream.payload_type = agreement.payload_type
            stream.event_payload_type = agreement.telephone_event
        if self._continuous and self._output is Output.QUIET:
            self._start_pacing()

    def attach(self, sink: MediaSink) -> None:
        """Hand what the leg receives to ``sink`` too."""
        if sink not in self._sinks:
            self._sinks.append(sink)

    def detach(self, sink: MediaSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    def close(self) -> None:
        """Stop everything, tell the sinks, close the socket (its port returns to the pool)."""
        if self._closed:
            return
        self._closed = True
        now = self._pacer.now()
        self._end_source(PlaybackEnd.CLOSED, None)
        for sink in tuple(self._sinks):
            sink.leg_closed(self, now)
        self._sinks.clear()
        self._pacer.discard(self)
        self._output = Output.QUIET
        self._transport.close()

    # ------------------------------------------------------------- receiving

    def datagram_received(self, data: bytes, source: tuple[str, int]) -> None:
        """One datagram from ``source`` (the socket's protocol calls this)."""
        if self._codec is None or not self._receives or self._closed:
            self._foreign += 1
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            self._malformed += 1
            return
        pt = packet.payload_type
        agreed = pt == self._payload_type or pt == self._event_payload_type
        if not self._latch.admits(source, agreed=agreed):
            self._foreign += 1
            return
        if not self._reception.receive(packet):
            return
        now = self._pacer.now()
        if pt == self._payload_type:
            for sink in tuple(self._sinks):
                sink.audio_received(self, packet, now)
        elif pt == self._event_payload_type:
            key = self._dtmf.receive(packet)
            if key is not None:
                self._report(key)
            for sink in tuple(self._sinks):
                sink.event_received(self, packet, now)
        else:
            self._unknown += 1

    def _report(self, key: KeyPressed) -> None:
        source = self._source
        if source is not None and source.barge_in:
            self._end_source(PlaybackEnd.INTERRUPTED, key.digit)
        self.digits_reported += 1
        try:
            self.digits.put_nowait(key)
        except asyncio.QueueFull:
            self.digits_dropped += 1
        if self.on_digit is not None:
            self.on_digit(self, key)

    # --------------------------------------------------------------- sending

    def play(self, source: FrameSource) -> None:
        """Send ``source``'s frames from the next tick, replacing what was playing."""
        self._check_open()
        if self._output is Output.RELAYED:
            raise RuntimeError("the leg is bridged: close the bridge before playing to it")
        if self._stream is None:
            raise RuntimeError("configure the leg before playing to it")
        self._end_source(PlaybackEnd.REPLACED, None)
        self._source = source
        self._start_pacing()

    def stop(self, source: FrameSource) -> None:
        """Stop ``source`` if it is the one playing."""
        if self._source is source:
            self._end_source(PlaybackEnd.STOPPED, None)

    @property
    def playing(self) -> FrameSource | None:
        return self._source

    def send_digits(self, digits: str) -> None:
        """Queue key presses to send as RFC 4733 events; they pause the playback while sent."""
        self._check_open()
        if self._event_payload_type is None or self._stream is None:
            raise RuntimeError("the far end did not agree to telephone-events")
        if self._output is Output.RELAYED:
            raise RuntimeError("the leg is bridged: its far end hears the other leg's keys")
        for digit in digits:
            event_code(digit)  # a ValueError now, not at a tick
            self._pending_digits.append(digit)
        self._start_pacing()

    def pace(self, now: float, meter: LatenessMeter) -> bool:
        """Send the frames due by ``now`` (the pacer calls this); False when idle."""
        stream = self._stream
        if stream is None or self._closed:
            return self._go_quiet()
        if self._output is Output.RELAYED:
            if not self._continuous:
                return False
            if not self._filling:
                if now - self._last_relayed < FILL_AFTER:
                    return True
                stream.reschedule(self._pacer.align(now))
                self._filling = True
        elif self._output is not Output.PACED:
            return False
        due = stream.due(now)
        if due > MAX_BURST:
            stream.reschedule(self._pacer.align(now))
            due = stream.due(now)
        for _ in range(due):
            due_at = stream.next_due
            if not self._send_frame(stream):
                return self._go_quiet()
            meter.frame(due_at)
        return True

    def _send_frame(self, stream: RtpStream) -> bool:
        if self._output is Output.PACED and (self._press or self._pending_digits):
            if not self._press:
                digit = self._pending_digits.popleft()
                self._press.extend(
                    self._digit_sender.packets(digit, timestamp=stream.next_timestamp)
                )
                self._press.extend([None] * DIGIT_GAP_SLOTS)
            event = self._press.popleft()
            if event is not None:
                if self._sends:
                    self._send(stream.stamp_event(event))
                else:
                    stream.skip()
                return True
        payload: bytes | None = None
        source = self._source
        if source is not None:
            payload = source.next_frame()
            if payload is None or source.exhausted:
                self._end_source(PlaybackEnd.FINISHED, None)
        if (
            payload is None
            and self._codec is not None
            and (self._continuous or self._output is Output.RELAYED)
        ):
            payload = self._codec.silence_frame()
        if payload is None:
            if self._press or self._pending_digits:
                stream.skip()  # a pause between key presses
                return True
            return False
        if self._sends:
            self._send(stream.stamp(payload))
        else:
            stream.skip()
        return True

    def _go_quiet(self) -> bool:
        if self._output is Output.PACED:
            self._output = Output.QUIET
        return False

    def _start_pacing(self) -> None:
        if self._output is Output.QUIET and self._stream is not None:
            now = self._pacer.now()
            self._stream.reschedule(self._pacer.next_tick(now))
            self._output = Output.PACED
        if self._output is Output.PACED:
            self._pacer.add(self)

    def _end_source(self, ending: PlaybackEnd, digit: str | None) -> None:
        source = self._source
        if source is not None:
            self._source = None
            source.end(ending, digit)

    def _send(self, packet: RtpPacket) -> None:
        target = self._latch.target
        if target is not None and not self._transport.is_closing():
            self._transport.sendto(packet.serialize(), target)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the leg is closed")

    # -------------------------------------------------------------- relaying

    def begin_relay(self, owner: object) -> None:
        """Let ``owner`` (a bridge) send through this leg; stops what was playing."""
        self._check_open()
        if self._output is Output.RELAYED:
            raise RuntimeError("the leg is already bridged")
        if self._stream is None:
            raise RuntimeError("configure the leg before bridging it")
        self._end_source(PlaybackEnd.REPLACED, None)
        self._pending_digits.clear()
        self._press.clear()
        self._relay_owner = owner
        self._output = Output.RELAYED
        self._filling = False
        self._last_relayed = self._pacer.now()
        if self._continuous:
            self._pacer.add(self)
        else:
            self._pacer.discard(self)

    def relay(self, packet: RtpPacket, now: float, *, payload_type: int | None = None) -> None:
        """Send another leg's ``packet`` to our far end, re-stamped into our stream."""
        stream = self._stream
        if self._output is not Output.RELAYED or stream is None:
            return
        self._filling = False  # the stream rebases on the relayed source by itself
        self._last_relayed = now
        if self._sends:
            self._send(stream.relay(packet, now, payload_type=payload_type))

    def end_relay(self, owner: object) -> None:
        """``owner`` hands the leg back: quiet, or silence if continuous, until something plays."""
        if self._relay_owner is not owner or self._output is not Output.RELAYED:
            return
        self._relay_owner = None
        self._output = Output.QUIET
        self._filling = False
        self._pacer.discard(self)
        if self._continuous and not self._closed:
            self._start_pacing()

    # ------------------------------------------------------------ statistics

    def statistics(self) -> LegStatistics:
        reception = self._reception
        stream = self._stream
        return LegStatistics(
            packets_received=reception.packets,
            octets_received=reception.octets,
            packets_expected=reception.expected,
            packets_lost=reception.lost,
            duplicates=reception.duplicates,
            reordered=reception.reordered,
            strays=reception.strays,
            malformed=self._malformed,
            foreign=self._foreign,
            unknown_payload=self._unknown,
            digits=self.digits_reported,
            digits_dropped=self.digits_dropped,
            packets_sent=0 if stream is None else stream.packets_sent,
            octets_sent=0 if stream is None else stream.octets_sent,
            send_errors=self.send_errors,
            latched_to=self._latch.latched,
        )
