"""SIP messages: parsing, limits, header fields, writing, responses, stream framing, checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.sip import (
    MAX_HEADER_LINES,
    MAX_LINE_LENGTH,
    MAX_MESSAGE_SIZE,
    MAX_VIAS,
    AbsoluteUri,
    Headers,
    ParseError,
    Request,
    Response,
    SipUri,
    StreamFramer,
    check_request,
    error_response,
    parse_message,
    response_to,
    serialize,
)

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)


def invite(*extra: str, body: bytes = SDP, length: int | None = None) -> bytes:
    """An INVITE as a phone would send it, with ``extra`` header lines added."""
    lines = [
        "INVITE sip:queue-sales@acd.example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport",
        "Max-Forwards: 70",
        'From: "Alice" <sip:alice@example.com>;tag=1928301774',
        "To: <sip:queue-sales@acd.example.com>",
        "Call-ID: a84b4c76e66710@pc33.example.com",
        "CSeq: 314159 INVITE",
        "Contact: <sip:alice@192.0.2.1:5060>",
        "Content-Type: application/sdp",
        *extra,
        f"Content-Length: {len(body) if length is None else length}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def request(data: bytes, **kwargs: bool) -> Request:
    message = parse_message(data, **kwargs)
    assert isinstance(message, Request)
    return message


# -- reading ------------------------------------------------------------------


def test_an_invite_is_read_with_its_uri_fields_and_body() -> None:
    message = request(invite())
    assert message.method == "INVITE"
    assert message.uri == SipUri(user="queue-sales", host="acd.example.com")
    via = message.top_via
    assert via is not None
    assert (via.transport, via.host, via.port, via.branch) == (
        "UDP",
        "192.0.2.1",
        5060,
        "z9hG4bK776asdhds",
    )
    assert via.wants_rport and via.rport is None
    assert message.cseq is not None and (message.cseq.number, message.cseq.method) == (
        314159,
        "INVITE",
    )
    assert message.call_id == "a84b4c76e66710@pc33.example.com"
    assert message.from_address is not None and message.from_address.tag == "1928301774"
    assert message.from_address.display_name == "Alice"
    assert message.to_address is not None and message.to_address.tag is None
    assert message.headers.max_forwards() == 70
    content_type = message.headers.content_type()
    assert content_type is not None and content_type.essence == "application/sdp"
    assert message.body == SDP


def test_bare_line_feeds_read_like_crlf() -> None:
    head, _, body = invite().partition(b"\r\n\r\n")
    bare = head.replace(b"\r\n", b"\n") + b"\n\n" + body
    assert parse_message(bare) == parse_message(invite())


def test_crlfs_before_the_start_line_are_ignored() -> None:
    assert parse_message(b"\r\n\r\n" + invite()) == parse_message(invite())


def test_a_folded_header_reads_as_one_line() -> None:
    folded = invite("Subject: I know you're there,\r\n   pick up the phone\r\n\tand talk to me!")
    assert request(folded).headers.get("subject") == (
        "I know you're there, pick up the phone and talk to me!"
    )


def test_compact_names_read_as_their_long_forms() -> None:
    data = (
        b"OPTIONS sip:acd.example.com SIP/2.0\r\nv: SIP/2.0/TCP h.example.com;branch=z9hG4bKx\r\n"
        b"f: <sip:a@example.com>;tag=1\r\nt: <sip:acd.example.com>\r\ni: cid-1\r\n"
        b"CSeq: 1 OPTIONS\r\nk: timer, 100rel\r\nm: <sip:a@h.example.com>\r\nl: 0\r\n\r\n"
    )
    message = request(data)
    assert [name for name, _ in message.headers] == [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Supported",
        "Supported",
        "Contact",
        "Content-Length",
    ]
    assert message.headers.option_tags("Supported") == ("timer", "100rel")


def test_header_names_are_case_insensitive_and_spelt_canonically() -> None:
    message = request(invite("cALL-iNFO: <http://example.com/alice.png>;purpose=icon"))
    assert message.headers.get("CALL-info") == "<http://example.com/alice.png>;purpose=icon"
    assert ("Call-Info", "<http://example.com/alice.png>;purpose=icon") in list(message.headers)


def test_repeated_fields_and_comma_joined_values_mean_the_same() -> None:
    joined = request(
        invite("Allow: INVITE, ACK,BYE", "Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>")
    )
    apart = request(
        invite(
            "Allow: INVITE",
            "Allow: ACK",
            "Allow: BYE",
            "Route: <sip:p1.example.com;lr>",
            "Route: <sip:p2.example.com;lr>",
        )
    )
    assert (
        joined.headers.get_all("Allow")
        == apart.headers.get_all("Allow")
        == [
            "INVITE",
            "ACK",
            "BYE",
        ]
    )
    assert joined.headers.routes() == apart.headers.routes()
    assert len(joined.headers.routes()) == 2


def test_commas_inside_quotes_or_brackets_do_not_split_a_list() -> None:
    contact = 'Contact: "Doe, John" <sip:jd,x@example.com;x=a>;expires=60, <sip:jd@192.0.2.9>'
    contacts = request(with_field(contact)).headers.contacts()
    assert [c.display_name for c in contacts] == ["Doe, John", None]
    assert [str(c.uri) for c in contacts] == ["sip:jd,x@example.com;x=a", "sip:jd@192.0.2.9"]
    warning = (
        'Warning: 399 acd.example.com "Queue full, try later", 301 x.example.com "no, not yet"'
    )
    assert request(invite(warning)).headers.get_all("Warning") == [
        '399 acd.example.com "Queue full, try later"',
        '301 x.example.com "no, not yet"',
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WWW-Authenticate", 'Digest realm="acd", nonce="abc", qop="auth,auth-int"'),
        ("Authorization", 'Digest username="alice", realm="acd", uri="sip:acd.example.com"'),
        ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
        ("User-Agent", "SoftPhone/1.0 (build 7, beta)"),
        ("X-Unknown", "a, b, c"),
    ],
)
def test_fields_that_are_not_comma_lists_are_never_split(name: str, value: str) -> None:
    assert request(invite(f"{name}: {value}")).headers.get_all(name) == [value]


def test_an_ipv6_sent_by_keeps_its_port() -> None:
    message = request(
        invite().replace(
            b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport",
            b"Via: SIP/2.0/UDP [2001:db8::10]:5070;branch=z9hG4bKv6"
            b";received=2001:db8::9;rport=5070",
        )
    )
    via = message.top_via
    assert via is not None
    assert (via.host, via.port, via.received, via.rport) == (
        "2001:db8::10",
        5070,
        "2001:db8::9",
        5070,
    )
    assert via.sent_by == "[2001:db8::10]:5070"


def test_quoted_strings_keep_their_escapes_apart_from_the_text() -> None:
    message = request(invite().replace(b'"Alice"', b'"Alice \\"Al\\" O\\\\Brien"'))
    assert message.from_address is not None
    assert message.from_address.display_name == 'Alice "Al" O\\Brien'


def test_method_names_are_case_sensitive() -> None:
    message = request(
        invite().replace(b"INVITE sip:", b"invite sip:").replace(b"314159 INVITE", b"314159 invite")
    )
    assert message.method == "invite"
    assert check_request(message, methods={"INVITE", "ACK"}) == (501, "Not Implemented")


def test_a_udp_body_is_cut_to_its_content_length() -> None:
    message = request(invite(length=5))
    assert message.body == SDP[:5]


def test_without_content_length_a_udp_body_is_the_rest_of_the_datagram() -> None:
    data = invite().replace(f"Content-Length: {len(SDP)}\r\n".encode(), b"")
    assert request(data).body == SDP


def test_a_content_length_larger_than_the_datagram_is_refused() -> None:
    with pytest.raises(ParseError) as caught:
        parse_message(invite(length=len(SDP) + 1))
    assert caught.value.status == 400 and caught.value.respondable


def test_a_body_is_kept_as_bytes_even_when_it_is_not_text() -> None:
    body = bytes(range(256))
    assert request(invite(body=body)).body == body


def test_an_unknown_uri_scheme_reads_as_an_absolute_uri_for_the_application_to_refuse() -> None:
    message = request(
        invite().replace(b"sip:queue-sales@acd.example.com SIP/2.0", b"tel:+15551234 SIP/2.0")
    )
    assert message.uri == AbsoluteUri(scheme="tel", opaque="+15551234")
    assert check_request(message) == (416, "Unsupported URI Scheme")


def test_a_response_is_read_with_its_status_and_reason() -> None:
    data = (
        b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\n"
        b"Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    message = parse_message(data)
    assert isinstance(message, Response)
    assert (message.status, message.reason) == (486, "Busy Here")


@pytest.mark.parametrize(
    ("start_line", "status"),
    [
        (b"INVITE sip:a@example.com SIP/3.0", 505),
        (b"INVITE sip:a@example.com HTTP/1.1", 400),
        (b"INVITE  sip:a@example.com SIP/2.0", 400),
        (b"INVITE sip:a@example.com SIP/2.0 ", 400),
        (b"INV(ITE sip:a@example.com SIP/2.0", 400),
        (b"INVITE <sip:a@example.com> SIP/2.0", 400),
    ],
)
def test_a_malformed_request_line_is_answered_with_the_status_it_calls_for(
    start_line: bytes, status: int
) -> None:
    data = invite().replace(b"INVITE sip:queue-sales@acd.example.com SIP/2.0", start_line)
    with pytest.raises(ParseError) as caught:
        parse_message(data)
    assert caught.value.status == status
    assert caught.value.respondable


# -- errors the transport edge can answer --------------------------------------


def test_a_broken_request_carries_what_a_400_needs() -> None:
    with pytest.raises(ParseError) as caught:
        parse_message(invite("Expires 3600"))
    error = caught.value
    assert error.respondable
    assert error.headers is not None
    assert [name for name, _ in error.headers] == ["Via", "From", "To", "Call-ID", "CSeq"]
    response = error_response(error, to_tag="x1")
    assert response is not None
    assert (response.status, response.reason) == (400, "Bad Request")
    assert response.headers.get("To") == "<sip:queue-sales@acd.example.com>;tag=x1"
    assert response.headers.get("Via") == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport"


def test_a_broken_request_without_a_call_id_is_dropped() -> None:
    data = invite("Expires 3600").replace(b"Call-ID: a84b4c76e66710@pc33.example.com\r\n", b"")
    with pytest.raises(ParseError) as caught:
        parse_message(data)
    assert not caught.value.respondable
    assert error_response(caught.value) is None


def test_a_broken_response_is_dropped() -> None:
    data = b"SIP/2.0 200 OK\r\nVia: nonsense\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(ParseError) as caught:
        parse_message(data)
    assert not caught.value.respondable


# -- limits -------------------------------------------------------------------


def test_a_message_over_the_size_limit_is_refused_unread() -> None:
    with pytest.raises(ParseError) as caught:
        parse_message(invite(body=b"x" * MAX_MESSAGE_SIZE))
    assert caught.value.status == 513


def test_too_many_header_lines_are_refused() -> None:
    extra = [f"X-Filler: {n}" for n in range(MAX_HEADER_LINES)]
    with pytest.raises(ParseError) as caught:
        parse_message(invite(*extra))
    assert caught.value.status == 513


def test_a_header_field_over_the_line_limit_is_refused_even_when_folded() -> None:
    folded = "X-Long: " + "\r\n ".join(["y" * 100] * (MAX_LINE_LENGTH // 100 + 1))
    with pytest.raises(ParseError) as caught:
        parse_message(invite(folded))
    assert caught.value.status == 513


def test_too_many_vias_are_refused() -> None:
    vias = ", ".join(f"SIP/2.0/UDP h{n}.example.com;branch=z9hG4bK{n}" for n in range(MAX_VIAS))
    with pytest.raises(ParseError) as caught:
        parse_message(invite(f"Via: {vias}"))
    assert caught.value.status == 513


HOSTILE = [
    "X-Spaces: " + " " * 8000 + "x",
    "X-Quotes: " + '"' * 8000,
    "Contact: " + "<" * 4000 + "," * 4000,
    "Contact: " + '"\\' * 4000,
    "Contact: " + '"a",' * 2000,
    "Via: " + ";" * 8000,
    "Via: SIP/2.0/UDP h;" + "x;" * 4000,
    "Route: " + "<sip:a@b>," * 700,
    "Accept: " + "a/b;q=1," * 1000,
    "To: " + "a " * 4000 + "<sip:x@y>",
    "X-Fold: a" + "\r\n \t" * 200,
]


@settings(max_examples=len(HOSTILE) * 2, deadline=timedelta(milliseconds=500))
@given(st.sampled_from(HOSTILE))
def test_hostile_header_values_cost_time_linear_in_their_length(hostile: str) -> None:
    try:
        message = parse_message(invite(hostile))
    except ParseError:
        return
    assert isinstance(message, Request)
    check_request(message)  # reads every field it knows, and reports rather than raises


# -- header fields ------------------------------------------------------------


def test_headers_keep_order_and_compare_names_case_insensitively() -> None:
    headers = Headers([("v", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("X-Thing", "1"), ("x-thing", "2")])
    headers.add("Via", "SIP/2.0/UDP b;branch=z9hG4bK2", first=True)
    assert headers.get_all("VIA") == [
        "SIP/2.0/UDP b;branch=z9hG4bK2",
        "SIP/2.0/UDP a;branch=z9hG4bK1",
    ]
    assert headers.get("X-THING") == "1" and headers.get_all("x-Thing") == ["1", "2"]
    assert headers.first("via") == "SIP/2.0/UDP b;branch=z9hG4bK2"
    assert "x-thing" in headers and "Route" not in headers
    assert headers.get("Route") is None and headers.get("Route", "none") == "none"
    with pytest.raises(KeyError):
        headers.first("Route")
    headers.replace("X-Thing", ["3", "4", "5"])
    assert list(headers)[2:] == [("X-Thing", "3"), ("X-Thing", "4"), ("X-Thing", "5")]
    assert headers.remove_first("Via") == "SIP/2.0/UDP b;branch=z9hG4bK2"
    assert headers.remove("x-thing") == 3
    assert list(headers) == [("Via", "SIP/2.0/UDP a;branch=z9hG4bK1")]
    assert len(headers) == 1


def test_typed_reads_follow_changes_to_the_fields() -> None:
    headers = Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1")])
    assert headers.top_via() is not None
    top = headers.top_via()
    assert top is not None and top.host == "a"
    headers.add("Via", "SIP/2.0/TCP b:5061;branch=z9hG4bK2", first=True)
    top = headers.top_via()
    assert top is not None and (top.host, top.port, top.transport) == ("b", 5061, "TCP")


def test_a_header_value_with_a_line_break_cannot_be_added() -> None:
    headers = Headers()
    with pytest.raises(ValueError):
        headers.add("Subject", "hi\r\nVia: SIP/2.0/UDP evil")
    with pytest.raises(ValueError):
        headers.add("Bad Name", "x")


def test_a_via_is_written_back_in_canonical_form_with_added_parameters() -> None:
    message = request(invite())
    via = message.top_via
    assert via is not None
    assert str(via.with_param("received", "198.51.100.7").with_param("rport", "40000")) == (
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport=40000;received=198.51.100.7"
    )


# -- writing ------------------------------------------------------------------


def test_a_message_is_written_with_crlf_long_names_and_a_true_content_length() -> None:
    data = (
        b"MESSAGE sip:agent@acd.example.com SIP/2.0\nv: SIP/2.0/TCP h;branch=z9hG4bK1\n"
        b"f: <sip:a@example.com>;tag=1\nt: <sip:agent@acd.example.com>\ni: c1\nCSeq: 7 MESSAGE\n"
        b"l: 2\nc: text/plain\n\nhi"
    )
    message = request(data, stream=True)
    assert serialize(message) == (
        b"MESSAGE sip:agent@acd.example.com SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:agent@acd.example.com>\r\nCall-ID: c1\r\n"
        b"CSeq: 7 MESSAGE\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nhi"
    )
    assert bytes(message) == serialize(message)


def test_writing_rewrites_a_content_length_that_the_body_contradicts() -> None:
    message = request(invite(length=5))
    out = serialize(
        Request(method=message.method, uri=message.uri, headers=message.headers, body=b"abc")
    )
    assert b"\r\nContent-Length: 3\r\n" in out and out.endswith(b"\r\n\r\nabc")
    assert out.count(b"Content-Length") == 1


def test_reading_what_was_written_gives_the_same_message() -> None:
    message = request(invite("Subject: caf\u00e9 \u2615", 'Warning: 399 h "x, y"'))
    assert parse_message(serialize(message)) == message


# -- responses ----------------------------------------------------------------


def test_a_response_copies_vias_from_to_call_id_and_cseq_and_tags_the_to() -> None:
    message = request(invite("Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp", "Subject: x"))
    response = response_to(message, 486, to_tag="t-99", headers=[("Retry-After", "30")])
    assert (response.status, response.reason) == (486, "Busy Here")
    assert response.headers.get_all("Via") == message.headers.get_all("Via")
    assert response.headers.get("From") == message.headers.get("From")
    assert response.headers.get("Call-ID") == message.headers.get("Call-ID")
    assert response.headers.get("CSeq") == "314159 INVITE"
    assert response.to_address is not None and response.to_address.tag == "t-99"
    assert response.headers.get("Retry-After") == "30"
    assert "Subject" not in response.headers and "Contact" not in response.headers


def test_a_100_trying_never_gets_a_to_tag_but_echoes_the_timestamp() -> None:
    message = request(invite("Timestamp: 54"))
    trying = response_to(message, 100, to_tag="t-1")
    assert trying.to_address is not None and trying.to_address.tag is None
    assert trying.headers.get("Timestamp") == "54"
    assert "Timestamp" not in response_to(message, 180, to_tag="t-1").headers


def test_a_to_that_already_has_a_tag_keeps_it() -> None:
    message = request(
        invite().replace(
            b"To: <sip:queue-sales@acd.example.com>", b"To: <sip:q@acd.example.com>;tag=old"
        )
    )
    response = response_to(message, 200, to_tag="new")
    assert response.to_address is not None and response.to_address.tag == "old"


# -- TCP framing ----------------------------------------------------------------


def test_a_stream_delivers_messages_whole_however_the_bytes_arrive() -> None:
    first, second = invite(), invite("Subject: second")
    stream = first + second
    framer = StreamFramer()
    delivered: list[object] = []
    for at in range(0, len(stream), 7):
        delivered += framer.feed(stream[at : at + 7])
    assert delivered == [parse_message(first), parse_message(second)]


def test_two_messages_in_one_read_come_out_in_order() -> None:
    framer = StreamFramer()
    out = framer.feed(invite() + invite("Subject: 2") + invite()[:20])
    assert [m.headers.get("Subject") for m in out if isinstance(m, Request)] == [None, "2"]
    assert framer.feed(invite()[20:]) == [parse_message(invite())]


def test_a_double_crlf_ping_is_owed_a_pong_and_skipped() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r") == []
    assert framer.feed(b"\n") == []
    assert framer.take_pongs() == 1
    assert framer.take_pongs() == 0
    assert framer.feed(b"\r\n" + invite()) == [parse_message(invite())]
    assert framer.take_pongs() == 0  # one stray CRLF is not a ping


def test_a_message_without_content_length_breaks_the_stream() -> None:
    framer = StreamFramer()
    data = invite().replace(f"Content-Length: {len(SDP)}\r\n".encode(), b"")
    out = framer.feed(data + invite())
    assert len(out) == 1 and isinstance(out[0], ParseError)
    assert out[0].respondable
    assert framer.broken
    assert framer.feed(invite()) == []


def test_a_malformed_but_framed_message_leaves_the_stream_in_step() -> None:
    framer = StreamFramer()
    out = framer.feed(invite("Expires 3600") + invite())
    assert isinstance(out[0], ParseError) and out[0].respondable
    assert out[1] == parse_message(invite())
    assert not framer.broken


def test_a_header_block_that_never_ends_is_an_error_not_a_growing_buffer() -> None:
    framer = StreamFramer()
    assert framer.feed(b"INVITE sip:a@example.com SIP/2.0\r\n") == []
    out: list[object] = []
    chunk = b"X-Forever: " + b"z" * 1000 + b"\r\n"
    for _ in range(MAX_MESSAGE_SIZE // len(chunk) + 2):
        out += framer.feed(chunk)
    assert len(out) == 1 and isinstance(out[0], ParseError) and out[0].status == 513
    assert framer.broken
    assert framer.feed(chunk) == []


def test_a_content_length_beyond_the_limit_breaks_the_stream_at_once() -> None:
    framer = StreamFramer()
    out = framer.feed(invite(body=b"", length=MAX_MESSAGE_SIZE))
    assert len(out) == 1 and isinstance(out[0], ParseError) and out[0].status == 513


# -- request checks -------------------------------------------------------------


def test_a_sound_request_passes_the_checks() -> None:
    assert check_request(request(invite()), methods={"INVITE", "ACK", "BYE", "CANCEL"}) is None


@pytest.mark.parametrize("name", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_a_missing_mandatory_field_is_a_400_that_names_it(name: str) -> None:
    data = b"\r\n".join(
        line
        for line in invite().split(b"\r\n")
        if not line.lower().startswith(name.lower().encode() + b":")
    )
    rejection = check_request(request(data))
    assert rejection is not None and rejection.status == 400 and name in rejection.reason


def test_max_forwards_is_required_only_when_asked() -> None:
    data = invite().replace(b"Max-Forwards: 70\r\n", b"")
    assert check_request(request(data)) is None
    rejection = check_request(request(data), require_max_forwards=True)
    assert rejection is not None and rejection.status == 400 and "Max-Forwards" in rejection.reason


def test_a_cseq_method_other_than_the_request_method_is_a_400() -> None:
    rejection = check_request(request(invite().replace(b"314159 INVITE", b"314159 BYE")))
    assert rejection is not None and rejection.status == 400


def test_max_forwards_zero_is_483_only_for_a_request_we_would_forward() -> None:
    message = request(invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 0"))
    assert check_request(message) is None
    assert check_request(message, forwarding=True) == (483, "Too Many Hops")


def test_an_unknown_required_extension_is_420_listing_it_as_unsupported() -> None:
    message = request(invite("Require: 100rel, foo"))
    rejection = check_request(message, supported={"100rel", "timer"})
    assert rejection == (420, "Bad Extension")
    assert rejection is not None and rejection.headers == (("Unsupported", "foo"),)
    response = rejection.response(message, to_tag="t")
    assert response.status == 420 and response.headers.get_all("Unsupported") == ["foo"]
    assert check_request(message, supported={"100rel", "FOO"}) is None


def test_a_body_we_cannot_read_is_415_with_what_we_accept() -> None:
    message = request(invite().replace(b"application/sdp", b"application/x-fax"))
    rejection = check_request(message)
    assert rejection == (415, "Unsupported Media Type")
    assert rejection is not None and rejection.headers == (("Accept", "application/sdp"),)
    encoded = request(invite("Content-Encoding: gzip"))
    rejection = check_request(encoded)
    assert rejection is not None and rejection.status == 415
    assert rejection.headers == (("Accept-Encoding", "identity"),)


def test_a_method_we_do_not_serve_is_405_if_sip_defines_it_and_501_if_not() -> None:
    served = {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"}
    subscribe = request(invite().replace(b"INVITE", b"SUBSCRIBE"))
    rejection = check_request(subscribe, methods=served)
    assert rejection == (405, "Method Not Allowed")
    assert rejection is not None and rejection.headers == (
        ("Allow", "ACK, BYE, CANCEL, INVITE, OPTIONS"),
    )
    frobnicate = request(invite().replace(b"INVITE", b"FROBNICATE"))
    assert check_request(frobnicate, methods=served) == (501, "Not Implemented")


def with_field(line: str) -> bytes:
    """The INVITE with ``line`` in place of its field of that name (or added)."""
    name = line.partition(":")[0].encode()
    kept = [old for old in invite().split(b"\r\n") if not old.startswith(name + b":")]
    kept.insert(1, line.encode())
    return b"\r\n".join(kept)


@pytest.mark.parametrize(
    "line",
    [
        "Max-Forwards: 256",
        "Expires: 4294967296",
        "Contact: <sip:x@example.com>;expires=99999999999",
        "Contact: sip:x@example.com?Route=%3Csip:p.example.com%3E",
        "Content-Type: sdp",
        "Require: a b",
        "Route: sip:proxy.example.com",
        "Date: Sat, 13 Nov 2010 23:29:00 UTC",
    ],
)
def test_a_field_out_of_range_or_malformed_is_a_400(line: str) -> None:
    rejection = check_request(request(with_field(line)))
    assert rejection is not None and rejection.status == 400


def test_a_malformed_accept_on_an_invite_is_a_400_not_an_exception() -> None:
    rejection = check_request(request(invite("Accept: sdp, application/sdp")))
    assert rejection is not None and rejection.status == 400


@pytest.mark.parametrize(
    "line", ["To: <sip:other@acd.example.com>", "CSeq: 1 INVITE", "Call-ID: 2"]
)
def test_a_single_valued_field_given_twice_is_a_400(line: str) -> None:
    rejection = check_request(request(invite(line)))
    assert rejection is not None and rejection.status == 400 and "more than one" in rejection.reason


# -- robustness ---------------------------------------------------------------


@settings(max_examples=300, deadline=timedelta(milliseconds=500))
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_nothing_but_parse_error(data: bytes) -> None:
    try:
        message = parse_message(data)
    except ParseError:
        return
    if isinstance(message, Request):
        check_request(message)
    serialize(message)


@settings(max_examples=100, deadline=timedelta(milliseconds=500))
@given(st.lists(st.binary(max_size=64), max_size=40))
def test_arbitrary_bytes_on_a_stream_raise_nothing(chunks: list[bytes]) -> None:
    framer = StreamFramer()
    for chunk in chunks:
        for item in framer.feed(chunk):
            assert isinstance(item, Request | Response | ParseError)
