"""SDP parsing and serializing (RFC 8866), and offer/answer for the call's audio (RFC 3264).

Parsing: what phones send reads into typed fields and serializes back to the
same text, unknown lines and all; malformed bodies (and arbitrary bytes) are
an SdpError and nothing else. Answering: G.711 in the offerer's order,
telephone-event under the offerer's number, every other stream rejected with
port 0, directions mirrored and hold detected (RFC 3264 §6.1, §8.4), the
session version raised only when our description changes. Offering and
accepting an answer, and the two sides of one negotiation agreeing.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.rtp.g711 import Codec
from ivr.sdp import (
    Attribute,
    AudioAgreement,
    Connection,
    Direction,
    LocalSession,
    MediaDescription,
    OfferNotAcceptable,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
)


def sdp(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


PHONE_OFFER = sdp(
    "v=0",
    "o=yealink 1700000000 1700000001 IN IP4 192.0.2.10",
    "s=SDP data",
    "c=IN IP4 192.0.2.10",
    "t=0 0",
    "m=audio 11780 RTP/AVP 0 8 18 9 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:18 G729/8000",
    "a=fmtp:18 annexb=no",
    "a=rtpmap:9 G722/8000",
    "a=fmtp:101 0-15",
    "a=rtpmap:101 telephone-event/8000",
    "a=ptime:20",
    "a=sendrecv",
)


def offer(*media_lines: str, session: tuple[str, ...] = ("c=IN IP4 192.0.2.10",)) -> str:
    return sdp("v=0", "o=- 1 1 IN IP4 192.0.2.10", "s=-", *session, "t=0 0", *media_lines)


def answer_to(text: str, **options: object) -> tuple[SessionDescription, AudioAgreement]:
    local = LocalSession(address="198.51.100.7", session_id=42)
    return local.answer(SessionDescription.parse(text), port=30000, **options)  # type: ignore[arg-type]


def test_a_phones_offer_reads_into_fields() -> None:
    description = SessionDescription.parse(PHONE_OFFER)
    assert description.origin == Origin(
        username="yealink",
        session_id="1700000000",
        session_version=1700000001,
        address="192.0.2.10",
    )
    assert description.session_name == "SDP data"
    assert description.connection == Connection(address="192.0.2.10")
    (audio,) = description.media
    assert (audio.media, audio.port, audio.protocol) == ("audio", 11780, "RTP/AVP")
    assert audio.payload_types == (0, 8, 18, 9, 101)
    assert audio.rtpmaps[101] == RtpMap(
        payload_type=101, encoding="telephone-event", clock_rate=8000
    )
    assert audio.fmtp == {18: "annexb=no", 101: "0-15"}
    assert (audio.ptime, audio.direction) == (20, Direction.SENDRECV)


def test_a_description_serializes_back_to_what_was_read() -> None:
    assert SessionDescription.parse(PHONE_OFFER).serialize() == PHONE_OFFER


def test_unknown_and_untyped_lines_are_kept_in_place() -> None:
    text = sdp(
        "v=0",
        "o=- 7 7 IN IP6 2001:db8::1",
        "s=-",
        "i=a call",
        "e=ops@example.com",
        "c=IN IP6 2001:db8::1",
        "b=AS:84",
        "t=0 0",
        "r=7d 1h 0 25h",
        "a=group:BUNDLE audio",
        "x=experimental",
        "m=audio 4000/2 RTP/AVP 0",
        "i=voice",
        "c=IN IP6 2001:db8::2",
        "b=TIAS:64000",
        "a=rtcp-mux",
        "y=another",
    )
    description = SessionDescription.parse(text)
    assert description.connection == Connection(address="2001:db8::1", address_type="IP6")
    assert description.media[0].port_count == 2
    assert description.media[0].attribute("rtcp-mux") == ""
    assert description.serialize() == text


def test_bare_line_feeds_are_accepted() -> None:
    description = SessionDescription.parse(PHONE_OFFER.replace("\r\n", "\n").encode())
    assert description.serialize() == PHONE_OFFER


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "v=0"),
        (sdp("v=1", "o=- 1 1 IN IP4 h", "s=-", "t=0 0"), "v=0"),
        (sdp("o=- 1 1 IN IP4 h", "v=0"), "v=0"),
        (sdp("v=0", "s=-", "t=0 0"), "no o="),
        (sdp("v=0", "o=- 1 IN IP4 h", "s=-"), "6 fields"),
        (sdp("v=0", "o=- x 1 IN IP4 h", "s=-"), "numeric"),
        (sdp("v=0", "o=- 1 1 IN IP4 h", "o=- 1 1 IN IP4 h"), "more than one o="),
        (sdp("v=0", "o=- 1 1 IN IP4 h", "v=0"), "more than one v="),
        (sdp("v=0", "o=- 1 1 IN IP4 h", "c=IN IP4"), "3 fields"),
        (sdp("v=0", "o=- 1 1 IN IP4 h", "t=now 0"), "two numbers"),
        (sdp("v=0", "o=- 1 1 IN IP4 h", "m=audio 5000 RTP/AVP"), "needs media"),
        (sdp("v=0", "o=- 1 1 IN IP4 h", "m=audio 70000 RTP/AVP 0"), "malformed port"),
        (sdp("v=0", "o=- 1 1 IN IP4 h", "m=audio 1_0 RTP/AVP 0"), "malformed port"),
        (sdp("v=0", "o=- 1 1 IN IP4 h", "a=:x"), "no attribute name"),
        (sdp("v=0", "o=- 1 1 IN IP4 h", "hello"), "not an SDP line"),
        (sdp("v=0", "o=- 1 1 IN IP4 h", "V=0"), "not an SDP line"),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=a\rb\r\n", "CR or NUL"),
    ],
)
def test_malformed_descriptions_are_an_sdp_error(text: str, complaint: str) -> None:
    with pytest.raises(SdpError, match=complaint):
        SessionDescription.parse(text)


def test_a_body_that_is_not_utf8_is_an_sdp_error() -> None:
    with pytest.raises(SdpError, match="UTF-8"):
        SessionDescription.parse(b"v=0\r\no=\xff\xfe 1 1 IN IP4 h\r\n")


@pytest.mark.parametrize(
    "attribute", ["rtpmap:x PCMU/8000", "rtpmap:0 PCMU", "rtpmap:0 PCMU/fast", "rtpmap:200 X/1"]
)
def test_a_malformed_rtpmap_is_an_sdp_error_when_read(attribute: str) -> None:
    media = SessionDescription.parse(offer("m=audio 5000 RTP/AVP 0", f"a={attribute}")).media[0]
    with pytest.raises(SdpError, match="rtpmap"):
        media.rtpmaps  # noqa: B018


@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_sdp_error(body: bytes) -> None:
    try:
        description = SessionDescription.parse(body)
    except SdpError:
        return
    text = description.serialize()
    assert SessionDescription.parse(text).serialize() == text


_LINE = st.sampled_from(
    [
        "v=0",
        "o=- 1 2 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "c=IN IP4 0.0.0.0",
        "t=0 0",
        "m=audio 5000 RTP/AVP 0 8 101",
        "m=audio 0 RTP/AVP 0",
        "m=video 5002 RTP/AVP 96",
        "m=audio 5004 RTP/SAVP 0",
        "m=audio 5006 RTP/AVP 96 x",
        "a=rtpmap:96 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=rtpmap:8 pcma/8000/1",
        "a=rtpmap:0 PCMU/8000/2",
        "a=rtpmap:bad",
        "a=ptime:20",
        "a=ptime:inf",
        "a=sendonly",
        "a=inactive",
        "a=recvonly",
        "b=AS:64",
    ]
)


@given(st.lists(_LINE, max_size=14), st.booleans())
def test_any_offer_is_answered_or_refused_with_an_sdp_error(lines: list[str], lead: bool) -> None:
    text = sdp(*(["v=0", "o=- 1 1 IN IP4 192.0.2.1"] if lead else []), *lines)
    try:
        description = SessionDescription.parse(text)
        answer, agreement = LocalSession(address="198.51.100.7").answer(description, port=4000)
    except SdpError:
        return
    assert len(answer.media) == len(description.media)
    assert SessionDescription.parse(answer.serialize()) == answer
    assert agreement.codec in (Codec.PCMU, Codec.PCMA)


_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-./+:", min_size=1, max_size=12)
_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\0"),
    max_size=20,
)
_ATTRIBUTE = st.builds(
    Attribute,
    name=_TOKEN.filter(lambda name: ":" not in name),
    value=st.none() | _TEXT,
)
_CONNECTION = st.builds(Connection, address=_TOKEN, address_type=st.sampled_from(["IP4", "IP6"]))
_SESSION_ORDER = {"i": 1, "u": 1, "e": 1, "p": 1, "b": 3, "t": 5, "r": 5, "z": 5, "k": 6}
_MEDIA_ORDER = {"i": 1, "b": 3, "k": 4}


def _other(kinds: str, order: dict[str, int]) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    lines = st.lists(st.tuples(st.sampled_from(kinds), _TEXT), max_size=4)
    return lines.map(lambda found: tuple(sorted(found, key=lambda line: order.get(line[0], 9))))


_MEDIA = st.builds(
    MediaDescription,
    media=_TOKEN,
    port=st.integers(0, 65535),
    port_count=st.none() | st.integers(1, 4),
    protocol=_TOKEN,
    formats=st.lists(_TOKEN, min_size=1, max_size=4).map(tuple),
    connection=st.none() | _CONNECTION,
    attributes=st.lists(_ATTRIBUTE, max_size=4).map(tuple),
    other=_other("ibkx", _MEDIA_ORDER),
)
_DESCRIPTION = st.builds(
    SessionDescription,
    origin=st.builds(
        Origin,
        session_id=st.integers(0, 2**64).map(str),
        session_version=st.integers(0, 2**64),
        address=_TOKEN,
        username=_TOKEN,
    ),
    session_name=_TEXT,
    connection=st.none() | _CONNECTION,
    timing=st.tuples(st.integers(0, 2**40), st.integers(0, 2**40)),
    attributes=st.lists(_ATTRIBUTE, max_size=4).map(tuple),
    media=st.lists(_MEDIA, max_size=3).map(tuple),
    other=_other("iuepbtrzkxy", _SESSION_ORDER),
)


@given(_DESCRIPTION)
def test_any_description_round_trips(description: SessionDescription) -> None:
    assert SessionDescription.parse(description.serialize()) == description


def test_a_phones_offer_is_answered_with_pcmu_and_its_telephone_events() -> None:
    answer, agreement = answer_to(PHONE_OFFER)
    assert answer.serialize() == sdp(
        "v=0",
        "o=- 42 1 IN IP4 198.51.100.7",
        "s=-",
        "c=IN IP4 198.51.100.7",
        "t=0 0",
        "m=audio 30000 RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    )
    assert agreement == AudioAgreement(
        codec=Codec.PCMU,
        payload_type=0,
        telephone_event=101,
        remote_address="192.0.2.10",
        remote_port=11780,
        direction=Direction.SENDRECV,
        remote_hold=False,
        ptime=20,
        media_index=0,
    )


def test_the_offerers_order_decides_the_codec() -> None:
    _, agreement = answer_to(offer("m=audio 5000 RTP/AVP 18 8 0"))
    assert (agreement.codec, agreement.payload_type, agreement.telephone_event) == (
        Codec.PCMA,
        8,
        None,
    )


def test_only_the_codecs_we_support_are_chosen() -> None:
    local = LocalSession(address="198.51.100.7", codecs=(Codec.PCMA,))
    _, agreement = local.answer(
        SessionDescription.parse(offer("m=audio 5000 RTP/AVP 0 8")), port=4000
    )
    assert agreement.codec is Codec.PCMA


def test_dynamic_payload_types_are_used_as_the_offerer_numbered_them() -> None:
    answer, agreement = answer_to(
        offer(
            "m=audio 5000 RTP/AVP 96 97 98",
            "a=rtpmap:96 opus/48000/2",
            "a=rtpmap:97 pcmu/8000",
            "a=rtpmap:98 telephone-event/16000",
            "a=rtpmap:99 telephone-event/8000",
        )
    )
    assert (agreement.codec, agreement.payload_type, agreement.telephone_event) == (
        Codec.PCMU,
        97,
        None,  # 99 is mapped but not listed; 98 is at the wrong rate
    )
    assert answer.media[0].formats == ("97",)


def test_telephone_event_keeps_the_offerers_payload_type() -> None:
    answer, agreement = answer_to(
        offer("m=audio 5000 RTP/AVP 8 96", "a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-16")
    )
    assert agreement.telephone_event == 96
    assert answer.media[0].formats == ("8", "96")
    assert answer.media[0].fmtp == {96: "0-15"}


def test_an_offer_without_g711_is_not_acceptable() -> None:
    with pytest.raises(OfferNotAcceptable):
        answer_to(offer("m=audio 5000 RTP/AVP 18 9", "a=rtpmap:18 G729/8000"))


def test_an_offer_of_stereo_or_wideband_g711_is_not_acceptable() -> None:
    with pytest.raises(OfferNotAcceptable):
        answer_to(
            offer("m=audio 5000 RTP/AVP 96 97", "a=rtpmap:96 PCMU/8000/2", "a=rtpmap:97 PCMA/16000")
        )


def test_every_stream_but_one_plain_audio_stream_is_rejected_with_port_zero() -> None:
    answer, agreement = answer_to(
        offer(
            "m=video 6000 RTP/AVP 96",
            "a=rtpmap:96 H264/90000",
            "m=audio 6002 RTP/SAVP 0",
            "m=audio 0 RTP/AVP 0",
            "m=audio 6004 RTP/AVP 8",
            "m=audio 6006 RTP/AVP 0",
        )
    )
    assert [(m.media, m.port, m.protocol, m.formats) for m in answer.media] == [
        ("video", 0, "RTP/AVP", ("96",)),
        ("audio", 0, "RTP/SAVP", ("0",)),
        ("audio", 0, "RTP/AVP", ("0",)),
        ("audio", 30000, "RTP/AVP", ("8",)),
        ("audio", 0, "RTP/AVP", ("0",)),
    ]
    assert (agreement.media_index, agreement.remote_port) == (3, 6004)


@pytest.mark.parametrize(
    ("offered", "answered", "hold"),
    [
        ("a=sendrecv", Direction.SENDRECV, False),
        ("a=sendonly", Direction.RECVONLY, True),
        ("a=recvonly", Direction.SENDONLY, False),
        ("a=inactive", Direction.INACTIVE, True),
    ],
)
def test_the_answer_mirrors_the_offers_direction(
    offered: str, answered: Direction, hold: bool
) -> None:
    answer, agreement = answer_to(offer("m=audio 5000 RTP/AVP 0", offered))
    assert answer.media[0].direction is answered
    assert (agreement.direction, agreement.remote_hold) == (answered, hold)


def test_the_old_hold_address_means_the_peer_will_not_receive() -> None:
    answer, agreement = answer_to(offer("m=audio 5000 RTP/AVP 0", session=("c=IN IP4 0.0.0.0",)))
    assert agreement.remote_hold
    assert agreement.direction is Direction.RECVONLY
    assert answer.media[0].direction is Direction.RECVONLY


def test_a_session_level_direction_applies_to_streams_without_their_own() -> None:
    _, agreement = answer_to(offer("m=audio 5000 RTP/AVP 0", session=("c=IN IP4 h", "a=sendonly")))
    assert agreement.remote_hold
    _, agreement = answer_to(
        offer("m=audio 5000 RTP/AVP 0", "a=sendrecv", session=("c=IN IP4 h", "a=sendonly"))
    )
    assert not agreement.remote_hold


def test_a_streams_own_connection_wins_over_the_sessions() -> None:
    _, agreement = answer_to(
        offer("m=audio 5000 RTP/AVP 0", "c=IN IP6 2001:db8::9", session=("c=IN IP4 0.0.0.0",))
    )
    assert (agreement.remote_address, agreement.remote_hold) == ("2001:db8::9", False)


def test_an_audio_stream_with_nowhere_to_send_is_an_sdp_error() -> None:
    with pytest.raises(SdpError, match="no c= line"):
        answer_to(offer("m=audio 5000 RTP/AVP 0", session=()))


def test_we_can_answer_with_less_than_the_offer_allows() -> None:
    answer, agreement = answer_to(offer("m=audio 5000 RTP/AVP 0"), direction=Direction.SENDONLY)
    assert agreement.direction is Direction.SENDONLY
    assert answer.media[0].direction is Direction.SENDONLY


def test_a_reoffer_keeps_the_codec_in_use_and_the_version_if_nothing_changed() -> None:
    local = LocalSession(address="198.51.100.7", session_id=42)
    first, agreed = local.answer(
        SessionDescription.parse(offer("m=audio 5000 RTP/AVP 8 0")), port=4000
    )
    again, kept = local.answer(
        SessionDescription.parse(offer("m=audio 5000 RTP/AVP 0 8")), port=4000
    )
    assert agreed.codec is kept.codec is Codec.PCMA
    assert again == first
    assert again.origin.session_version == 1


def test_a_hold_reoffer_raises_the_version() -> None:
    local = LocalSession(address="198.51.100.7")
    local.answer(SessionDescription.parse(offer("m=audio 5000 RTP/AVP 0")), port=4000)
    held, agreement = local.answer(
        SessionDescription.parse(offer("m=audio 5000 RTP/AVP 0", "a=sendonly")), port=4000
    )
    assert agreement.remote_hold
    assert held.origin.session_version == 2


def test_our_offer_lists_both_laws_and_telephone_events() -> None:
    local = LocalSession(address="198.51.100.7", session_id=9)
    assert local.offer(port=4000).serialize() == sdp(
        "v=0",
        "o=- 9 1 IN IP4 198.51.100.7",
        "s=-",
        "c=IN IP4 198.51.100.7",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_reoffers_raise_the_version_only_when_something_changed() -> None:
    local = LocalSession(address="2001:db8::7", session_version=5)
    first = local.offer(port=4000)
    assert first.origin.address_type == first.connection.address_type == "IP6"  # type: ignore[union-attr]
    assert local.offer(port=4000).origin.session_version == 5
    hold = local.offer(port=4000, direction=Direction.SENDONLY)
    assert hold.origin.session_version == 6
    assert hold.media[0].direction is Direction.SENDONLY
    assert local.offer(port=4000).origin.session_version == 7


def test_an_answer_to_our_offer_gives_the_agreement() -> None:
    local = LocalSession(address="198.51.100.7")
    local.offer(port=4000)
    agreement = local.accept(
        SessionDescription.parse(offer("m=audio 7000 RTP/AVP 8 101"))  # relies on our rtpmaps
    )
    assert (agreement.codec, agreement.payload_type, agreement.telephone_event) == (
        Codec.PCMA,
        8,
        101,
    )
    assert (agreement.remote_address, agreement.remote_port) == ("192.0.2.10", 7000)
    assert agreement.direction is Direction.SENDRECV


def test_an_answer_to_our_hold_leaves_us_sending_only() -> None:
    local = LocalSession(address="198.51.100.7")
    local.offer(port=4000, direction=Direction.SENDONLY)
    agreement = local.accept(
        SessionDescription.parse(offer("m=audio 7000 RTP/AVP 0", "a=recvonly"))
    )
    assert (agreement.direction, agreement.remote_hold) == (Direction.SENDONLY, False)


def test_answers_that_break_offer_answer_are_refused() -> None:
    local = LocalSession(address="198.51.100.7")
    with pytest.raises(RuntimeError):
        local.accept(SessionDescription.parse(offer("m=audio 7000 RTP/AVP 0")))
    local.offer(port=4000)
    with pytest.raises(OfferNotAcceptable):
        local.accept(SessionDescription.parse(offer("m=audio 0 RTP/AVP 0")))
    with pytest.raises(SdpError, match="streams"):
        local.accept(SessionDescription.parse(offer("m=audio 1 RTP/AVP 0", "m=audio 2 RTP/AVP 0")))
    with pytest.raises(SdpError, match="none of the codecs"):
        local.accept(SessionDescription.parse(offer("m=audio 7000 RTP/AVP 18")))


def test_two_sessions_negotiating_agree_with_each_other() -> None:
    caller = LocalSession(address="192.0.2.1", codecs=(Codec.PCMA, Codec.PCMU))
    callee = LocalSession(address="192.0.2.2", telephone_event=96)
    our_offer = caller.offer(port=4000)
    their_answer, theirs = callee.answer(SessionDescription.parse(our_offer.encode()), port=5000)
    ours = caller.accept(SessionDescription.parse(their_answer.encode()))
    assert ours.codec is theirs.codec is Codec.PCMA
    assert ours.payload_type == theirs.payload_type == 8
    assert ours.telephone_event == theirs.telephone_event == 101  # the offerer's number
    assert (ours.remote_address, ours.remote_port) == ("192.0.2.2", 5000)
    assert (theirs.remote_address, theirs.remote_port) == ("192.0.2.1", 4000)


def test_directions_reverse_and_intersect() -> None:
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.INACTIVE.reversed() is Direction.INACTIVE
    assert Direction.SENDRECV & Direction.RECVONLY is Direction.RECVONLY
    assert Direction.SENDONLY & Direction.RECVONLY is Direction.INACTIVE
