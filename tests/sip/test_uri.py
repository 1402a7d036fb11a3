"""SIP URIs: parsing, canonical writing, and comparison as RFC 3261 §19.1.4 defines it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.sip import AbsoluteUri, ParseError, SipUri, parse_uri
from ivr.sip.grammar import Params


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


def test_a_sip_uri_is_read_into_its_components() -> None:
    uri = sip(
        "sips:alice:secret@Atlanta.example.com:5061;transport=TCP;lr?Subject=hi&Priority=urgent"
    )
    assert uri.scheme == "sips"
    assert uri.user == "alice"
    assert uri.password == "secret"
    assert uri.host == "Atlanta.example.com"
    assert uri.port == 5061
    assert uri.transport == "tcp"
    assert uri.loose_routing
    assert uri.params.get("TRANSPORT") == "TCP"
    assert uri.headers == (("Subject", "hi"), ("Priority", "urgent"))
    assert uri.host_port == "Atlanta.example.com:5061"


def test_escapes_in_the_user_part_are_decoded() -> None:
    uri = sip("sip:sips%3Auser%40example.com@example.net")
    assert uri.user == "sips:user@example.com"
    assert uri.host == "example.net"


def test_an_ipv6_reference_is_held_without_brackets_and_written_with_them() -> None:
    uri = sip("sip:bob@[2001:db8::10]:5070;maddr=[2001:db8::9]")
    assert uri.host == "2001:db8::10"
    assert uri.port == 5070
    assert uri.maddr == "[2001:db8::9]"
    assert str(uri) == "sip:bob@[2001:db8::10]:5070;maddr=[2001:db8::9]"
    assert uri.host_port == "[2001:db8::10]:5070"


def test_an_ipv6_host_compares_in_canonical_form() -> None:
    assert sip("sip:bob@[2001:db8::10]") == sip("sip:bob@[2001:DB8:0:0:0:0:0:10]")


def test_a_uri_without_user_is_just_a_host() -> None:
    uri = sip("sip:registrar.example.com")
    assert uri.user is None and uri.password is None and uri.port is None


@pytest.mark.parametrize(
    "text",
    [
        "tel:+1-201-555-0123",
        "mailto:alice@example.com",
        "nobodyKnowsThisScheme:totallyopaquecontent",
        "soap.beep://192.0.2.103:3002",
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    ],
)
def test_any_other_scheme_is_an_opaque_absolute_uri(text: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteUri)
    scheme, _, opaque = text.partition(":")
    assert uri.scheme == scheme.lower()
    assert uri.opaque == opaque
    assert parse_uri(str(uri)) == uri


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip",
        "<sip:user@example.com>",
        "sip:user@example.com;",
        "sip:user@example.com;;lr",
        "sip:user@exa mple.com",
        "sip:user@example.com:99999",
        "sip:user@example.com:",
        "sip:user@[2001:db8::zz]",
        "sip:user@[2001:db8::1",
        "sip:us%2er@%zz.example.com",
        "sip:us%Zr@example.com",
        "sip:@example.com",
        "sip:user@example.com?",
        "sip:user@example.com?=x",
        "1sip:user@example.com",
        "tel:",
        "tel:+1 555",
    ],
)
def test_what_is_not_a_uri_raises_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_uri(text)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # RFC 3261 §19.1.4, the URIs of each pair are equivalent
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
    ],
)
def test_uris_the_rfc_calls_equivalent_compare_equal(a: str, b: str) -> None:
    assert sip(a) == sip(b)
    assert hash(sip(a)) == hash(sip(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # RFC 3261 §19.1.4, the URIs of each pair are not equivalent
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:alice@example.com", "sips:alice@example.com"),
        ("sip:alice@example.com;user=phone", "sip:alice@example.com"),
        ("sip:alice@example.com;maddr=192.0.2.1", "sip:alice@example.com"),
        ("sip:alice@example.com;lr", "sip:alice@example.com;lr=on"),
    ],
)
def test_uris_the_rfc_calls_different_compare_unequal(a: str, b: str) -> None:
    assert sip(a) != sip(b)


def test_writing_a_uri_escapes_only_what_each_component_requires() -> None:
    uri = SipUri(
        user="I have spaces;and semicolons",
        password="p@ss:word",
        host="example.com",
        params=Params([("name", "value%41"), ("lr", None)]),
        headers=(("Route", "<sip:example.com>"),),
    )
    text = str(uri)
    assert text == (
        "sip:I%20have%20spaces;and%20semicolons:p%40ss%3Aword@example.com"
        ";name=value%2541;lr?Route=%3Csip:example.com%3E"
    )
    assert parse_uri(text) == uri
    assert sip(text).password == "p@ss:word"


def test_an_escaped_nul_survives_decoding_and_writing() -> None:
    uri = sip("sip:null-%00-null@example.com")
    assert uri.user == "null-\x00-null"
    assert str(uri) == "sip:null-%00-null@example.com"


_user_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), min_size=1, max_size=12)
_token = st.from_regex(r"[a-z][a-z0-9\-]{0,8}", fullmatch=True)


@given(
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.none() | _user_text,
    password=st.none() | st.text(max_size=6),
    host=st.sampled_from(["example.com", "192.0.2.7", "2001:db8::1", "h-1.example"]),
    port=st.none() | st.integers(0, 65535),
    params=st.lists(
        st.tuples(_token, st.none() | _user_text), max_size=3, unique_by=lambda p: p[0]
    ),
    headers=st.lists(st.tuples(_token, st.text(max_size=6)), max_size=2),
)
def test_any_sip_uri_reads_back_from_its_text(
    scheme: str,
    user: str | None,
    password: str | None,
    host: str,
    port: int | None,
    params: list[tuple[str, str | None]],
    headers: list[tuple[str, str]],
) -> None:
    uri = SipUri(
        scheme=scheme,
        user=user,
        password=password if user is not None else None,
        host=host,
        port=port,
        params=Params(params),
        headers=tuple(headers),
    )
    again = parse_uri(str(uri))
    assert again == uri
    assert isinstance(again, SipUri)
    assert (again.user, again.password, again.params, again.headers) == (
        uri.user,
        uri.password,
        uri.params,
        uri.headers,
    )
