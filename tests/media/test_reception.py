"""The latching rule and the reception counts, as plain objects: no sockets, no clock."""

from __future__ import annotations

from ivr.media.reception import Latch, Reception
from ivr.rtp.packet import RtpPacket

SDP = ("10.0.0.5", 4000)  # the phone's private address, from its SDP
NAT = ("203.0.113.9", 61000)  # where its packets really come from
STRANGER = ("198.51.100.7", 5004)


def test_before_any_packet_the_leg_sends_where_the_sdp_said() -> None:
    latch = Latch()
    latch.signal(SDP)
    assert latch.target == SDP and latch.latched is None


def test_the_first_agreed_packet_latches_and_then_only_its_source_is_heard() -> None:
    latch = Latch()
    latch.signal(SDP)
    assert not latch.admits(NAT, agreed=False)  # a payload type we never agreed: no latch
    assert latch.admits(NAT, agreed=True)
    assert latch.target == NAT
    assert not latch.admits(STRANGER, agreed=True)
    assert latch.admits(NAT, agreed=False)  # the latched source, whatever it sends


def test_the_signalled_address_always_wins_the_latch() -> None:
    latch = Latch()
    latch.signal(SDP)
    latch.admits(NAT, agreed=True)
    assert latch.admits(SDP, agreed=True)
    assert latch.target == SDP
    assert not latch.admits(NAT, agreed=True)


def test_a_new_sdp_address_forgets_the_latch_and_the_same_one_keeps_it() -> None:
    latch = Latch()
    latch.signal(SDP)
    latch.admits(NAT, agreed=True)
    latch.signal(SDP)  # a re-INVITE that changes nothing
    assert latch.target == NAT
    latch.signal(STRANGER)
    assert latch.latched is None and latch.target == STRANGER


def test_without_latching_only_the_sdp_host_is_heard_and_the_target_never_moves() -> None:
    latch = Latch(latching=False)
    latch.signal(SDP)
    assert latch.admits(("10.0.0.5", 4002), agreed=True)  # the same host, another port
    assert not latch.admits(NAT, agreed=True)
    assert latch.target == SDP


def packet(seq: int, ssrc: int = 1) -> RtpPacket:
    return RtpPacket(
        payload_type=0, sequence_number=seq, timestamp=seq * 160, ssrc=ssrc, payload=b"x"
    )


def test_reception_counts_loss_and_refuses_duplicates_across_a_change_of_ssrc() -> None:
    reception = Reception()
    assert [reception.receive(packet(seq)) for seq in (10, 11, 11, 14)] == [True, True, False, True]
    assert [reception.receive(packet(seq, ssrc=2)) for seq in (500, 501)] == [True, True]
    assert (reception.packets, reception.octets) == (5, 5)
    assert (reception.expected, reception.lost, reception.duplicates) == (7, 2, 1)
