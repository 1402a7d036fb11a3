"""The 49 torture messages of RFC 4475, each handled as its section says.

The messages live in ``tests/data/sip/rfc4475`` byte for byte (read with
``open(path, "rb")``: CRLFs, NULs and a binary MIME part included). Each has
one expectation below, registered under its file name and naming its section:
the valid ones parse to the values the RFC's commentary gives, the invalid
ones raise ``ParseError`` or are refused by ``check_request`` with the status
the section names, and the rest get the application-level answer it names.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.sip import (
    AbsoluteUri,
    ParseError,
    Rejection,
    Request,
    Response,
    SipUri,
    StreamFramer,
    check_request,
    error_response,
    parse_message,
    parse_uri,
    serialize,
)
from ivr.sip.grammar import unquote

CORPUS = Path(__file__).resolve().parent.parent / "data" / "sip" / "rfc4475"
FINGERPRINT = "cc2d7fb7a8f8d60a"  # tests/data/sip/rfc4475/README.md
# What this server serves, for the checks where an unknown method matters (§3.1.1.5, §3.1.2.18).
OUR_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO"})


def load(name: str) -> bytes:
    with open(CORPUS / f"{name}.dat", "rb") as file:
        return file.read()


def request_in(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def refused(data: bytes, status: int = 400) -> ParseError:
    """The ParseError the message raises: answered with ``status`` (a request) or dropped."""
    with pytest.raises(ParseError) as caught:
        parse_message(data)
    error = caught.value
    assert error.status == status
    return error


def answered(error: ParseError, status: int) -> None:
    response = error_response(error, to_tag="torture")
    assert response is not None and response.status == status


def rejected(data: bytes, status: int, **options: object) -> Rejection:
    rejection = check_request(request_in(data), **options)  # type: ignore[arg-type]
    assert rejection is not None, "check_request let it through"
    assert rejection.status == status, rejection
    return rejection


def sip(uri: object) -> SipUri:
    assert isinstance(uri, SipUri)
    return uri


EXPECTATIONS: dict[str, Callable[[bytes], None]] = {}
SECTIONS: dict[str, str] = {}


def expects(
    name: str, section: str
) -> Callable[[Callable[[bytes], None]], Callable[[bytes], None]]:
    def register(check: Callable[[bytes], None]) -> Callable[[bytes], None]:
        EXPECTATIONS[name] = check
        SECTIONS[name] = section
        return check

    return register


def test_the_corpus_is_the_rfcs_byte_for_byte() -> None:
    digest = hashlib.sha256()
    for path in sorted(CORPUS.glob("*.dat")):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as file:
            digest.update(file.read())
    assert digest.hexdigest().startswith(FINGERPRINT)


def test_every_torture_message_has_an_expectation() -> None:
    assert set(EXPECTATIONS) == {path.stem for path in CORPUS.glob("*.dat")}
    assert len(EXPECTATIONS) == 49


# -- 3.1.1 valid messages: parsed as well formed ------------------------------------


@expects("wsinv", "3.1.1.1 A Short Tortuous INVITE")
def wsinv_parses_to_the_values_under_all_the_folding_and_white_space(data: bytes) -> None:
    message = request_in(data)
    assert message.method == "INVITE"
    assert "unknownparam" in sip(message.uri).params
    to = message.to_address
    assert to is not None and to.tag == "1918181833n"
    assert to.uri == parse_uri("sip:vivekg@chair-dnrc.example.com")
    sender = message.from_address
    assert (
        sender is not None and sender.display_name == 'J Rosenberg \\"' and sender.tag == "98asjd8"
    )
    assert message.headers.max_forwards() == 68  # 0068: leading zeros
    cseq = message.cseq
    assert cseq is not None and (cseq.number, cseq.method) == (9, "INVITE")
    # one Via field and a compact one holding two values, folded across lines
    assert [(v.transport, v.host, v.branch) for v in message.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert message.headers.get("Subject") == ""  # "s :" with no value
    assert message.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert message.headers.get_all("UnknownHeaderWithUnusualValue") == [";;,,;;,;"]
    (route,) = message.headers.routes()
    assert sip(route.uri).loose_routing and "unknown-no-value" in sip(route.uri).params
    (contact,) = message.headers.contacts()
    assert contact.display_name == 'Quoted string ""'
    assert list(contact.params) == [("newparam", "newvalue"), ("secondparam", None), ("q", "0.33")]
    assert len(message.body) == 150
    assert check_request(message) is None


@expects("intmeth", "3.1.1.2 Wide Range of Valid Characters")
def intmeth_keeps_every_odd_but_legal_character(data: bytes) -> None:
    message = request_in(data)
    assert message.method == "!interesting-Method0123456789_*+`.%indeed'~"
    uri = sip(message.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com"
    assert message.top_via is not None and message.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    to = message.to_address
    assert to is not None and to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    sender = message.from_address
    assert sender is not None and sender.display_name == "token1~` token2'+_ token3*%!.-"
    assert sender.tag == "_token~1'+`*%!-."
    assert unquote(sender.params.get("fromParam''~+*_!.-%") or "") == "работающий"
    assert message.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert message.cseq is not None and message.cseq.method == message.method
    assert message.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert check_request(message) is None


@expects("esc01", "3.1.1.3 Valid Use of the % Escaping Mechanism")
def esc01_reads_escapes_as_the_characters_they_encode(data: bytes) -> None:
    message = request_in(data)
    assert sip(message.uri).user == "sips:user@example.com"
    assert message.to_address is not None and message.to_address.uri == parse_uri(
        "sip:user@example.com"
    )
    assert message.from_address is not None
    assert sip(message.from_address.uri).user == "I have spaces"
    (contact,) = message.headers.contacts()
    uri = sip(contact.uri)
    assert uri.user == "caller"
    assert uri.loose_routing  # %6C%72 is "lr"
    assert uri.params.get("name") == "value%41"  # %25 is "%", and it stops there
    assert check_request(message) is None


@expects("escnull", "3.1.1.4 Escaped Nulls in URIs")
def escnull_keeps_escaped_nuls_and_two_distinct_contacts(data: bytes) -> None:
    message = request_in(data)
    assert message.to_address is not None
    assert sip(message.to_address.uri).user == "null-\x00-null"
    first, second = message.headers.contacts()
    assert sip(first.uri).user == "\x00" and sip(second.uri).user == "\x00\x00"
    assert first.uri != second.uri
    assert check_request(message) is None


@expects("esc02", "3.1.1.5 Use of % When It Is Not an Escape")
def esc02_reads_percent_literally_where_it_is_no_escape(data: bytes) -> None:
    message = request_in(data)
    assert message.method == "RE%47IST%45R"  # not REGISTER
    assert message.to_address is not None and message.to_address.display_name == "%Z%45"
    assert message.top_via is not None and message.top_via.branch == "z9hG4bK209%fzsnel234"
    # two Contact values; C%6Fntact is another, unknown, header field
    assert [str(c.uri) for c in message.headers.contacts()] == [
        "sip:alias1@host1.example.com",
        "sip:alias3@host3.example.com",
    ]
    assert message.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    # "An endpoint would reject this message with a 501."
    assert check_request(message, methods=OUR_METHODS) == (501, "Not Implemented")


@expects("lwsdisp", "3.1.1.6 Message with No LWS between Display Name and <")
def lwsdisp_reads_a_display_name_glued_to_its_uri(data: bytes) -> None:
    message = request_in(data)
    assert message.from_address is not None
    assert (message.from_address.display_name, message.from_address.tag) == ("caller", "323")
    assert check_request(message) is None


@expects("longreq", "3.1.1.7 Long Values in Header Fields")
def longreq_reads_long_values_and_many_vias(data: bytes) -> None:
    message = request_in(data)
    to = message.to_address
    assert to is not None
    assert to.display_name == f"I have a user name of {'extreme' * 10} proportion"
    assert sip(to.uri).port == 6000
    assert sip(to.uri).params.get("unknownparam1") == f"very{'long' * 20}value"
    assert f"very{'long' * 25}ParameterNameWithNoValue" in sip(to.uri).params
    sender = message.from_address
    assert sender is not None and sender.tag == "1" + "298" * 50 + "2424"
    assert message.call_id == f"longreq.one{'really' * 20}longcallid"
    vias = message.vias
    assert len(vias) == 34
    assert [v.host for v in vias[:3]] == [
        "sip33.example.com",
        "sip32.example.com",
        "sip31.example.com",
    ]
    assert vias[-1].received == "192.0.2.5"
    assert vias[-1].branch == f"very{'long' * 50}branchvalue"
    (contact,) = message.headers.contacts()
    assert sip(contact.uri).user == "amazinglylongcallername" * 5
    assert len(message.body) == 150
    assert check_request(message) is None


@expects("dblreq", "3.1.1.8 Extra Trailing Octets in a UDP Datagram")
def dblreq_gives_the_register_and_ignores_the_invite_after_it(data: bytes) -> None:
    message = request_in(data)
    assert message.method == "REGISTER"
    assert message.body == b""
    assert message.headers.content_length() == 0
    assert message.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert b"INVITE" not in serialize(message)


@expects("semiuri", "3.1.1.9 Semicolon-Separated Parameters in URI User Part")
def semiuri_keeps_the_semicolon_in_the_user_part(data: bytes) -> None:
    message = request_in(data)
    uri = sip(message.uri)
    assert (uri.user, uri.host, len(uri.params)) == ("user;par=u@example.net", "example.com", 0)
    assert message.headers.get_all("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]
    assert check_request(message) is None


@expects("transports", "3.1.1.10 Varied and Unknown Transport Types")
def transports_reads_every_transport_known_or_not(data: bytes) -> None:
    message = request_in(data)
    assert [v.transport for v in message.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert check_request(message) is None


@expects("mpart01", "3.1.1.11 Multipart MIME Message")
def mpart01_frames_a_binary_body_with_nuls(data: bytes) -> None:
    message = request_in(data)
    assert message.method == "MESSAGE"
    assert len(message.body) == 553 and b"\x00" in message.body
    assert message.body.startswith(b"--7a9cbec02ceef655\r\n")
    assert message.body.endswith(b"--7a9cbec02ceef655--\r\n")
    content_type = message.headers.content_type()
    assert content_type is not None and content_type.essence == "multipart/mixed"
    assert content_type.params.get("boundary") == "7a9cbec02ceef655"
    framer = StreamFramer()  # framed by Content-Length alone, across any split
    assert framer.feed(data[:700]) == [] and framer.feed(data[700:]) == [message]


@expects("unreason", "3.1.1.12 Unusual Reason Phrase")
def unreason_keeps_a_utf8_reason_phrase(data: bytes) -> None:
    message = parse_message(data)
    assert isinstance(message, Response)
    assert message.status == 200
    assert message.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert len(message.body) == 154


@expects("noreason", "3.1.1.13 Empty Reason Phrase")
def noreason_reads_an_empty_reason_phrase(data: bytes) -> None:
    message = parse_message(data)
    assert isinstance(message, Response)
    assert (message.status, message.reason) == (100, "")


# -- 3.1.2 invalid messages: rejected, or dropped when no response can be built ----------


@expects("badinv01", "3.1.2.1 Extraneous Header Field Separators")
def badinv01_is_a_400(data: bytes) -> None:
    answered(refused(data, 400), 400)


@expects("clerr", "3.1.2.2 Content Length Larger Than Message")
def clerr_is_a_400_over_udp_and_awaits_more_on_a_stream(data: bytes) -> None:
    answered(refused(data, 400), 400)
    framer = StreamFramer()
    assert framer.feed(data) == [] and not framer.broken


@expects("ncl", "3.1.2.3 Negative Content-Length")
def ncl_is_an_error_and_ends_a_stream(data: bytes) -> None:
    answered(refused(data, 400), 400)
    framer = StreamFramer()  # "the framing error is not recoverable"
    (error,) = framer.feed(data)
    assert isinstance(error, ParseError) and framer.broken


@expects("scalar02", "3.1.2.4 Request Scalar Fields with Overlarge Values")
def scalar02_is_a_400_for_its_cseq(data: bytes) -> None:
    error = refused(data, 400)
    assert "CSeq" in error.reason
    answered(error, 400)


@expects("scalarlg", "3.1.2.5 Response Scalar Fields with Overlarge Values")
def scalarlg_is_dropped(data: bytes) -> None:
    error = refused(data)
    assert not error.respondable and error_response(error) is None


@expects("quotbal", "3.1.2.6 Unterminated Quoted String in Display Name")
def quotbal_is_a_400(data: bytes) -> None:
    answered(refused(data, 400), 400)


@expects("ltgtruri", "3.1.2.7 <> Enclosing Request-URI")
def ltgtruri_is_a_400(data: bytes) -> None:
    answered(refused(data, 400), 400)


@expects("lwsruri", "3.1.2.8 Malformed SIP Request-URI (embedded LWS)")
def lwsruri_is_a_400(data: bytes) -> None:
    answered(refused(data, 400), 400)


@expects("lwsstart", "3.1.2.9 Multiple SP Separating Request-Line Elements")
def lwsstart_is_a_400(data: bytes) -> None:
    answered(refused(data, 400), 400)


@expects("trws", "3.1.2.10 SP Characters at End of Request-Line")
def trws_is_a_400(data: bytes) -> None:
    answered(refused(data, 400), 400)


@expects("escruri", "3.1.2.11 Escaped Headers in SIP Request-URI")
def escruri_is_refused_with_a_400(data: bytes) -> None:
    rejection = rejected(data, 400)
    assert "Request-URI" in rejection.reason


@expects("baddate", "3.1.2.12 Invalid Time Zone in Date Header Field")
def baddate_is_refused_with_a_400(data: bytes) -> None:
    rejection = rejected(data, 400)
    assert "Date" in rejection.reason


@expects("regbadct", "3.1.2.13 Failure to Enclose name-addr URI in <>")
def regbadct_is_refused_with_a_400(data: bytes) -> None:
    rejected(data, 400)


@expects("badaspec", "3.1.2.14 Spaces within addr-spec")
def badaspec_is_a_400(data: bytes) -> None:
    answered(refused(data, 400), 400)


@expects("baddn", "3.1.2.15 Non-token Characters in Display Name")
def baddn_is_a_400(data: bytes) -> None:
    error = refused(data, 400)
    assert "display name" in error.reason
    answered(error, 400)


@expects("badvers", "3.1.2.16 Unknown Protocol Version")
def badvers_is_a_505(data: bytes) -> None:
    answered(refused(data, 505), 505)


@expects("mismatch01", "3.1.2.17 Start Line and CSeq Method Mismatch")
def mismatch01_is_refused_with_a_400(data: bytes) -> None:
    rejected(data, 400, methods=OUR_METHODS)


@expects("mismatch02", "3.1.2.18 Unknown Method with CSeq Method Mismatch")
def mismatch02_is_a_501_or_at_least_a_400(data: bytes) -> None:
    rejected(data, 501, methods=OUR_METHODS)  # the section's preference
    rejected(data, 400)  # "also acceptable", when no method list is given


@expects("bigcode", "3.1.2.19 Overlarge Response Code")
def bigcode_is_dropped(data: bytes) -> None:
    error = refused(data)
    assert not error.respondable and error_response(error) is None


# -- 3.2 transaction layer -------------------------------------------------------------


@expects("badbranch", "3.2.1 Missing Transaction Identifier")
def badbranch_parses_and_is_refused_with_a_400(data: bytes) -> None:
    message = request_in(data)  # "A parser must not break when receiving this message."
    assert message.top_via is not None and message.top_via.branch == "z9hG4bK"
    assert not message.top_via.is_rfc3261_branch
    rejection = check_request(message)
    assert rejection is not None and rejection.status == 400


# -- 3.3 application layer --------------------------------------------------------------


@expects("insuf", "3.3.1 Missing Required Header Fields")
def insuf_is_a_400_naming_what_is_missing(data: bytes) -> None:
    rejection = rejected(data, 400)
    assert all(name in rejection.reason for name in ("To", "From", "Call-ID"))


@expects("unkscm", "3.3.2 Request-URI with Unknown Scheme")
def unkscm_is_a_416(data: bytes) -> None:
    assert request_in(data).uri == AbsoluteUri(
        scheme="nobodyknowsthisscheme", opaque="totallyopaquecontent"
    )
    rejected(data, 416)


@expects("novelsc", "3.3.3 Request-URI with Known but Atypical Scheme")
def novelsc_is_a_416(data: bytes) -> None:
    uri = request_in(data).uri
    assert isinstance(uri, AbsoluteUri) and uri.scheme == "soap.beep"
    rejected(data, 416)


@expects("unksm2", "3.3.4 Unknown URI Schemes in Header Fields")
def unksm2_parses_and_a_registrar_refuses_it_with_a_400(data: bytes) -> None:
    message = request_in(data)
    assert message.to_address is not None
    assert message.to_address.uri == AbsoluteUri(scheme="isbn", opaque="2983792873")
    assert message.from_address is not None
    assert message.from_address.uri == AbsoluteUri(scheme="http", opaque="//www.example.com")
    (contact,) = message.headers.contacts()
    assert contact.uri == AbsoluteUri(scheme="name", opaque="John_Smith")
    rejected(data, 400)  # the To of a REGISTER must be a SIP or SIPS address of record


@expects("bext01", "3.3.5 Proxy-Require and Require")
def bext01_is_a_420_listing_the_unknown_extensions(data: bytes) -> None:
    as_uas = rejected(data, 420, supported={"100rel", "timer"})
    assert as_uas.headers == (
        ("Unsupported", "nothingSupportsThis"),
        ("Unsupported", "nothingSupportsThisEither"),
    )
    as_proxy = rejected(data, 420, forwarding=True)
    assert as_proxy.headers == (
        ("Unsupported", "noProxiesSupportThis"),
        ("Unsupported", "norDoAnyProxiesSupportThis"),
    )


@expects("invut", "3.3.6 Unknown Content-Type")
def invut_is_a_415_with_accept(data: bytes) -> None:
    rejection = rejected(data, 415)
    assert rejection.headers == (("Accept", "application/sdp"),)


@expects("regaut01", "3.3.7 Unknown Authorization Scheme")
def regaut01_parses_and_is_left_to_the_registrars_challenge(data: bytes) -> None:
    message = request_in(data)
    assert message.headers.get_all("Authorization") == ["NoOneKnowsThisScheme opaque-data=here"]
    assert check_request(message, methods=OUR_METHODS) is None  # the registrar answers 401


@expects("multi01", "3.3.8 Multiple Values in Single Value Required Fields")
def multi01_is_a_400(data: bytes) -> None:
    rejection = rejected(data, 400)
    assert "more than one" in rejection.reason


@expects("mcl01", "3.3.9 Multiple Content-Length Values")
def mcl01_is_an_error_and_ends_a_stream(data: bytes) -> None:
    answered(refused(data, 400), 400)
    framer = StreamFramer()
    (error,) = framer.feed(data)
    assert isinstance(error, ParseError) and framer.broken


@expects("bcast", "3.3.10 200 OK Response with Broadcast Via Header Field Value")
def bcast_parses_so_the_layer_above_can_drop_it(data: bytes) -> None:
    message = parse_message(data)
    assert isinstance(message, Response) and message.status == 200
    assert [v.host for v in message.vias] == ["192.0.2.198", "255.255.255.255"]


@expects("zeromf", "3.3.11 Max-Forwards of Zero")
def zeromf_is_a_483_for_a_proxy_and_served_by_an_endpoint(data: bytes) -> None:
    message = request_in(data)
    assert message.headers.max_forwards() == 0
    assert check_request(message) is None
    rejected(data, 483, forwarding=True)


@expects("cparam01", "3.3.12 REGISTER with a Contact Header Parameter")
def cparam01_reads_unknownparam_as_a_contact_parameter(data: bytes) -> None:
    (contact,) = request_in(data).headers.contacts()
    assert "unknownparam" in contact.params
    assert len(sip(contact.uri).params) == 0
    assert check_request(request_in(data)) is None


@expects("cparam02", "3.3.13 REGISTER with a URL Parameter")
def cparam02_reads_unknownparam_as_a_uri_parameter(data: bytes) -> None:
    (contact,) = request_in(data).headers.contacts()
    assert "unknownparam" in sip(contact.uri).params
    assert len(contact.params) == 0
    assert check_request(request_in(data)) is None


@expects("regescrt", "3.3.14 REGISTER with a URL Escaped Header")
def regescrt_keeps_the_escaped_route_header_of_the_contact(data: bytes) -> None:
    (contact,) = request_in(data).headers.contacts()
    assert sip(contact.uri).headers == (("Route", "<sip:sip.example.com>"),)
    assert str(contact.uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    assert check_request(request_in(data)) is None


@expects("sdp01", "3.3.15 Unacceptable Accept Offering")
def sdp01_is_a_406(data: bytes) -> None:
    rejected(data, 406)


# -- 3.4 backward compatibility ----------------------------------------------------------


@expects("inv2543", "3.4.1 INVITE with RFC 2543 Syntax")
def inv2543_is_accepted(data: bytes) -> None:
    message = request_in(data)
    assert message.top_via is not None and message.top_via.branch is None
    assert message.from_address is not None and message.from_address.tag is None
    assert "Max-Forwards" not in message.headers
    assert message.body.startswith(b"v=0\r\n") and len(message.body) == 105  # no Content-Length
    assert check_request(message) is None


@pytest.mark.parametrize("name", sorted(EXPECTATIONS), ids=lambda n: f"{n} ({SECTIONS[n]})")
def test_each_torture_message_is_handled_as_its_section_says(name: str) -> None:
    EXPECTATIONS[name](load(name))


def _parsable() -> list[str]:
    names = []
    for path in sorted(CORPUS.glob("*.dat")):
        try:
            parse_message(load(path.stem))
        except ParseError:
            continue
        names.append(path.stem)
    return names


@pytest.mark.parametrize("name", _parsable())
def test_a_parsed_torture_message_reads_back_from_its_canonical_form(name: str) -> None:
    message = parse_message(load(name))
    written = serialize(message)
    assert parse_message(written) == message
    assert serialize(parse_message(written)) == written


# -- never anything but ParseError, never slow -------------------------------------------

_NAMES = sorted(path.stem for path in CORPUS.glob("*.dat"))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A torture message with a few bytes inserted, deleted or replaced."""
    data = bytearray(load(draw(st.sampled_from(_NAMES))))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(
            st.binary(min_size=1, max_size=8)
            | st.sampled_from(
                [b"\r\n", b"\n ", b",", b";", b'"', b"<", b">", b":", b"%", b"\\", b"\x00"]
            )
        )
        if kind == "insert":
            data[at:at] = chunk
        elif kind == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    return bytes(data)


@settings(max_examples=400, deadline=timedelta(milliseconds=500))
@given(mutated())
def test_a_mutated_torture_message_raises_nothing_but_parse_error(data: bytes) -> None:
    try:
        message = parse_message(data)
    except ParseError:
        return
    if isinstance(message, Request):
        check_request(message, methods=OUR_METHODS, forwarding=True)
    for read in (message.headers.contacts, message.headers.routes, message.headers.accept):
        with contextlib.suppress(ParseError):
            read()
    assert parse_message(serialize(message)) == message


@settings(max_examples=100, deadline=timedelta(milliseconds=500))
@given(st.sampled_from(_NAMES), st.lists(st.integers(1, 200), min_size=1, max_size=20))
def test_a_torture_message_on_a_stream_frames_the_same_however_it_is_cut(
    name: str, cuts: list[int]
) -> None:
    data = load(name)
    whole = StreamFramer().feed(data)
    framer, pieces, at = StreamFramer(), [], 0
    for size in cuts:
        pieces += framer.feed(data[at : at + size])
        at += size
    pieces += framer.feed(data[at:])
    assert [type(p) for p in pieces] == [type(w) for w in whole]
    assert [p for p in pieces if not isinstance(p, ParseError)] == [
        w for w in whole if not isinstance(w, ParseError)
    ]
