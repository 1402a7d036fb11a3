"""What a leg accepts from the network, and how much of it arrived (sans-IO).

Theory of operation. ``Latch`` decides which source address a leg listens
to and sends to. Phones behind NAT put their private address in the SDP and
their packets arrive from the NAT's public one, so the leg follows the
packets ("latching", RFC 7362), relying on the phone to send and receive on
one port (symmetric RTP, RFC 4961):

* until the first packet arrives we send to the address in the SDP;
* the first packet of an agreed payload type, from any address, *latches*
  the leg: from then on we send to where it came from, and accept only that
  source;
* packets from the SDP address itself are always accepted, and latch the
  leg to it: an address the peer signalled beats one we guessed;
* a new SDP address (a re-INVITE) forgets the latch.

With ``latching=False`` only packets from the SDP host (any port) are
accepted, and we always send to the SDP address. RFC 7362 lists what
latching risks: whoever sends to the port first takes the audio. Latching
once, and only on an agreed payload type, narrows that to the moments before
the phone's first packet. Not done: re-latching when the latched source
falls silent and another appears (a NAT rebinding mid-call is followed only
if the peer re-INVITEs), for the same reason.

``Reception`` counts what an accepted source sent, through a
``SequenceTracker`` per SSRC (RFC 3550 §A.1, §A.3); a new SSRC starts a new
count (RFC 3550 §8), the old one's totals kept. Duplicates and strays are
refused so that nothing downstream sees them.
"""

from __future__ import annotations

from ivr.rtp.packet import RtpPacket, SequenceTracker

Address = tuple[str, int]


class Latch:
    """Which source address a leg accepts packets from, and so where it sends."""

    __slots__ = ("latched", "latching", "signalled")

    def __init__(self, *, latching: bool = True) -> None:
        self.latching = latching
        self.signalled: Address | None = None  # what the SDP said
        self.latched: Address | None = None  # where the packets come from

    @property
    def target(self) -> Address | None:
        """Where to send: the latched source, else the signalled address."""
        return self.latched or self.signalled

    def signal(self, address: Address) -> None:
        """The SDP's address (again, on a re-INVITE); a new one forgets the latch."""
        if address != self.signalled:
            self.signalled = address
            self.latched = None

    def admits(self, source: Address, *, agreed: bool) -> bool:
        """Whether a packet from ``source`` is heard; ``agreed``: its payload type was agreed."""
        if source == self.latched:
            return True
        if source == self.signalled:
            self.latched = source
            return True
        if not self.latching:
            return self.signalled is not None and source[0] == self.signalled[0]
        if self.latched is None and agreed:
            self.latched = source
            return True
        return False


class Reception:
    """Packets and octets received from the accepted source, and loss, per SSRC and in total."""

    __slots__ = ("_past", "_ssrc", "_tracker", "octets", "packets")

    def __init__(self) -> None:
        self._ssrc: int | None = None
        self._tracker = SequenceTracker()
        self._past = (0, 0, 0, 0, 0)  # expected, lost, duplicates, reordered, strays
        self.packets = 0  # accepted packets, all sources
        self.octets = 0  # their payload octets

    def receive(self, packet: RtpPacket) -> bool:
        """Count ``packet``; False when it is a duplicate or a stray, to be dropped."""
        if packet.ssrc != self._ssrc:
            self._past = self._totals()
            self._ssrc = packet.ssrc
            self._tracker = SequenceTracker()
        if not self._tracker.receive(packet.sequence_number).accepted:
            return False
        self.packets += 1
        self.octets += len(packet.payload)
        return True

    def _totals(self) -> tuple[int, int, int, int, int]:
        tracker = self._tracker
        expected, lost, duplicates, reordered, strays = self._past
        return (
            expected + tracker.expected,
            lost + tracker.lost,
            duplicates + tracker.duplicates,
            reordered + tracker.reordered,
            strays + tracker.strays,
        )

    @property
    def expected(self) -> int:
        return self._totals()[0]

    @property
    def lost(self) -> int:
        return self._totals()[1]

    @property
    def duplicates(self) -> int:
        return self._totals()[2]

    @property
    def reordered(self) -> int:
        return self._totals()[3]

    @property
    def strays(self) -> int:
        return self._totals()[4]
