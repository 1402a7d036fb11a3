"""Digest authentication: published vectors, the server's verdicts, the parser's limits.

The client side (``answer_challenge``) is pinned to RFC 7616 and RFC 2617's
worked examples, then used as the phone in every server test, so both halves
agree with the RFCs rather than merely with each other. Server tests drive
``DigestAuthority`` through challenge → answer → verify with a numeric clock.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.sip.digest import (
    Algorithm,
    DigestAuthority,
    DigestError,
    DigestSyntaxError,
    Outcome,
    answer_challenge,
    choose_challenge,
    ha1,
    hashed_secrets,
    parse_auth_value,
)

REALM = "centre.example"
URI = "sip:centre.example"
SECRET = b"0123456789abcdef0123456789abcdef"
USERS = {"agent17": "correct horse", 'o"brien\\': 'quoted "pass"'}


def lookup(username: str) -> dict[Algorithm, str] | None:
    password = USERS.get(username)
    if password is None:
        return None
    algorithms = list(Algorithm)
    return hashed_secrets(username, REALM, password, algorithms)


def authority(**overrides: object) -> DigestAuthority:
    options: dict[object, object] = {"realm": REALM, "secret": SECRET, "lookup": lookup}
    options.update(overrides)
    return DigestAuthority(**options)  # type: ignore[arg-type]


def param(value: str, name: str) -> str:
    return parse_auth_value(value).params[name]


def login(
    server: DigestAuthority,
    now: float,
    *,
    username: str = "agent17",
    password: str = "correct horse",
    nc: int = 1,
    challenge: str | None = None,
    uri: str = URI,
) -> str:
    """The Authorization a phone sends after the server's first challenge."""
    if challenge is None:
        challenge = server.challenge(now)[0]
    return answer_challenge(
        challenge,
        username=username,
        password=password,
        method="REGISTER",
        uri=uri,
        cnonce="phone-cnonce",
        nc=nc,
    )


def verify(server: DigestAuthority, authorization: str, now: float, uri: str = URI) -> Outcome:
    return server.verify([authorization], method="REGISTER", request_uri=uri, now=now).outcome


# -- published vectors --------------------------------------------------------

RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_the_rfc_7616_example_reproduces_the_published_response(
    algorithm: str, expected: str
) -> None:
    authorization = answer_challenge(
        RFC7616_CHALLENGE.format(alg=algorithm),
        username="Mufasa",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert param(authorization, "response") == expected
    assert param(authorization, "qop") == "auth"
    assert param(authorization, "nc") == "00000001"
    assert param(authorization, "opaque") == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    assert param(authorization, "algorithm") == algorithm


def test_the_rfc_2617_example_reproduces_the_published_response() -> None:
    challenge = (
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    authorization = answer_challenge(
        challenge,
        username="Mufasa",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce="0a4f113b",
    )
    assert param(authorization, "response") == "6629fae49393a05397450978507c4ef1"
    assert "algorithm" not in parse_auth_value(authorization).params  # not in the challenge


def test_a_challenge_without_qop_is_answered_in_the_rfc_2069_form() -> None:
    challenge = 'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"'
    authorization = answer_challenge(
        challenge, username="Mufasa", password="CircleOfLife", method="GET", uri="/dir/index.html"
    )
    params = parse_auth_value(authorization).params
    assert params["response"] == "1949323746fe6a43ef61f9606e7febea"
    assert "nc" not in params and "cnonce" not in params and "qop" not in params


def test_ha1_is_the_hash_of_user_realm_and_password_under_the_base_algorithm() -> None:
    md5 = ha1("Mufasa", "http-auth@example.org", "Circle of Life", Algorithm.MD5)
    assert len(md5) == 32
    assert ha1("Mufasa", "http-auth@example.org", "Circle of Life", Algorithm.MD5_SESS) == md5
    assert len(ha1("a", "b", "c", Algorithm.SHA_512_256)) == 64


# -- challenges ---------------------------------------------------------------


def test_a_request_without_credentials_is_challenged_sha_256_first_then_md5() -> None:
    server = authority()
    verdict = server.verify([], method="REGISTER", request_uri=URI, now=0.0)
    assert verdict.outcome is Outcome.CHALLENGED
    assert (verdict.status, verdict.header_name) == (401, "WWW-Authenticate")
    assert not verdict.outcome.counts_as_failure
    sha, md5 = (parse_auth_value(c) for c in verdict.challenges)
    assert (sha.params["algorithm"], md5.params["algorithm"]) == ("SHA-256", "MD5")
    for challenge in (sha, md5):
        assert challenge.scheme == "Digest"
        assert challenge.params["realm"] == REALM
        assert challenge.params["qop"] == "auth"
        assert challenge.params["opaque"]
        assert "stale" not in challenge.params
    assert sha.params["nonce"] == md5.params["nonce"]


def test_a_proxy_challenges_with_407_and_proxy_authenticate() -> None:
    verdict = authority(proxy=True).verify([], method="INVITE", request_uri=URI, now=0.0)
    assert (verdict.status, verdict.header_name) == (407, "Proxy-Authenticate")


def test_every_challenge_carries_a_new_nonce() -> None:
    server = authority()
    nonces = {param(server.challenge(5.0)[0], "nonce") for _ in range(50)}
    assert len(nonces) == 50


# -- verdicts -----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_the_right_password_is_accepted_under_every_algorithm(algorithm: Algorithm) -> None:
    server = authority(algorithms=[algorithm])
    verdict = server.verify([login(server, 10.0)], method="REGISTER", request_uri=URI, now=11.0)
    assert verdict.outcome is Outcome.ACCEPTED
    assert verdict.username == "agent17"
    assert verdict.status is None and verdict.challenges == ()


def test_a_phone_that_only_speaks_md5_is_accepted_through_the_second_challenge() -> None:
    server = authority()
    md5_challenge = server.challenge(0.0)[1]
    assert verify(server, login(server, 0.0, challenge=md5_challenge), 1.0) is Outcome.ACCEPTED


def test_quotes_and_backslashes_in_a_username_survive_the_round_trip() -> None:
    server = authority()
    authorization = login(server, 0.0, username='o"brien\\', password='quoted "pass"')
    assert verify(server, authorization, 1.0) is Outcome.ACCEPTED


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer() -> None:
    server = authority()
    wrong_password = server.verify(
        [login(server, 0.0, password="guess")], method="REGISTER", request_uri=URI, now=1.0
    )
    unknown_user = server.verify(
        [login(server, 0.0, username="nobody", password="guess")],
        method="REGISTER",
        request_uri=URI,
        now=1.0,
    )
    for verdict in (wrong_password, unknown_user):
        assert verdict.outcome is Outcome.REFUSED
        assert verdict.outcome.counts_as_failure
    assert wrong_password.status == unknown_user.status == 401
    assert wrong_password.reason == unknown_user.reason
    assert wrong_password.header_name == unknown_user.header_name

    def shape(challenges: tuple[str, ...]) -> list[str]:
        return [re.sub(r'nonce="[^"]*"', 'nonce="…"', c) for c in challenges]

    assert shape(wrong_password.challenges) == shape(unknown_user.challenges)


def test_an_unknown_user_is_looked_up_and_checked_like_a_known_one() -> None:
    asked: list[str] = []

    def recording_lookup(username: str) -> dict[Algorithm, str] | None:
        asked.append(username)
        return lookup(username)

    server = authority(lookup=recording_lookup)
    verify(server, login(server, 0.0, username="nobody"), 1.0)
    verify(server, login(server, 0.0, username="agent17", password="guess"), 1.0)
    assert asked == ["nobody", "agent17"]


def test_a_user_without_an_ha1_for_the_chosen_algorithm_is_refused_like_a_wrong_password() -> None:
    server = authority(lookup=lambda u: {Algorithm.SHA_256: ha1(u, REALM, "pw", Algorithm.SHA_256)})
    md5 = server.challenge(0.0)[1]
    answer = login(server, 0.0, username="x", password="pw", challenge=md5)
    assert verify(server, answer, 1.0) is Outcome.REFUSED


def test_an_expired_nonce_with_the_right_password_is_rechallenged_as_stale() -> None:
    server = authority(nonce_lifetime=300)
    verdict = server.verify([login(server, 0.0)], method="REGISTER", request_uri=URI, now=301.0)
    assert verdict.outcome is Outcome.STALE
    assert not verdict.outcome.counts_as_failure
    assert all(param(c, "stale") == "true" for c in verdict.challenges)
    retry = login(server, 301.0, challenge=verdict.challenges[0])
    assert verify(server, retry, 302.0) is Outcome.ACCEPTED


def test_an_expired_nonce_with_a_wrong_password_is_refused_not_stale() -> None:
    server = authority(nonce_lifetime=300)
    verdict = server.verify(
        [login(server, 0.0, password="guess")], method="REGISTER", request_uri=URI, now=301.0
    )
    assert verdict.outcome is Outcome.REFUSED
    assert all("stale" not in parse_auth_value(c).params for c in verdict.challenges)


def test_a_nonce_is_good_until_the_end_of_its_lifetime() -> None:
    server = authority(nonce_lifetime=300)
    assert verify(server, login(server, 0.0), 300.0) is Outcome.ACCEPTED


@pytest.mark.parametrize(
    "tamper",
    [
        lambda nonce: ("A" if nonce[5] != "A" else "B").join((nonce[:5], nonce[6:])),
        lambda nonce: nonce[:-4],
        lambda nonce: "not a nonce at all",
        lambda nonce: "é" * len(nonce),
    ],
)
def test_a_forged_nonce_earns_a_fresh_challenge_and_no_password_check(
    tamper: Callable[[str], str],
) -> None:
    server = authority()
    challenge = server.challenge(0.0)[0]
    nonce = param(challenge, "nonce")
    forged = challenge.replace(nonce, tamper(nonce))
    verdict = server.verify(
        [login(server, 0.0, challenge=forged)], method="REGISTER", request_uri=URI, now=1.0
    )
    assert verdict.outcome is Outcome.CHALLENGED
    assert verdict.reason == "nonce is not ours"


def test_a_nonce_from_another_secret_or_realm_is_not_ours() -> None:
    server = authority()
    other_secret = authority(secret=b"another secret of 32 bytes......")
    other_realm = authority(realm="other.example")
    for issuer in (other_secret, other_realm):
        challenge = issuer.challenge(0.0)[0].replace(f'"{issuer.realm}"', f'"{REALM}"')
        assert verify(server, login(server, 0.0, challenge=challenge), 1.0) is Outcome.CHALLENGED


def test_a_replayed_authorization_is_not_accepted_twice() -> None:
    server = authority()
    authorization = login(server, 0.0)
    assert verify(server, authorization, 1.0) is Outcome.ACCEPTED
    assert verify(server, authorization, 2.0) is Outcome.STALE


def test_a_nonce_may_be_reused_with_a_rising_count_but_not_a_falling_one() -> None:
    server = authority()
    challenge = server.challenge(0.0)[0]
    assert verify(server, login(server, 0.0, challenge=challenge, nc=1), 1.0) is Outcome.ACCEPTED
    assert verify(server, login(server, 0.0, challenge=challenge, nc=3), 2.0) is Outcome.ACCEPTED
    assert verify(server, login(server, 0.0, challenge=challenge, nc=2), 3.0) is Outcome.STALE
    assert verify(server, login(server, 0.0, challenge=challenge, nc=4), 4.0) is Outcome.ACCEPTED


def test_a_nonce_dropped_from_the_count_table_is_stale_rather_than_replayable() -> None:
    server = authority(max_tracked_nonces=2)
    first = server.challenge(0.0)[0]
    assert verify(server, login(server, 0.0, challenge=first), 0.5) is Outcome.ACCEPTED
    for t in (1.0, 2.0):
        assert verify(server, login(server, t), t + 0.5) is Outcome.ACCEPTED
    # The first nonce's count was dropped to make room: a replay must not pass as new.
    assert verify(server, login(server, 0.0, challenge=first), 3.0) is Outcome.STALE
    assert verify(server, login(server, 0.0, challenge=first, nc=9), 3.0) is Outcome.STALE


def test_credentials_for_another_realm_are_ignored_and_ours_are_used() -> None:
    server = authority()
    foreign = 'Digest username="x", realm="elsewhere", nonce="n", uri="sip:x", response="00"'
    verdict = server.verify(
        [foreign, login(server, 0.0)], method="REGISTER", request_uri=URI, now=1.0
    )
    assert verdict.outcome is Outcome.ACCEPTED
    alone = server.verify([foreign, "Bearer abc"], method="REGISTER", request_uri=URI, now=1.0)
    assert alone.outcome is Outcome.CHALLENGED


def test_the_uri_is_compared_with_scheme_and_host_case_folded() -> None:
    server = authority()
    authorization = login(server, 0.0, uri="SIP:Centre.EXAMPLE;transport=tcp")
    assert verify(server, authorization, 1.0, uri="sip:centre.example;transport=tcp") is (
        Outcome.ACCEPTED
    )


def test_a_retargeted_request_uri_is_accepted_when_the_uri_check_is_relaxed() -> None:
    server = authority(strict_uri=False)
    authorization = login(server, 0.0, uri="sip:agent17@centre.example")
    assert verify(server, authorization, 1.0, uri="sip:agent17@10.0.0.5") is Outcome.ACCEPTED
    assert verify(authority(), authorization, 1.0, uri="sip:agent17@10.0.0.5") is (
        Outcome.MALFORMED
    )


def substitute(authorization: str, name: str, value: str | None) -> str:
    params = dict(parse_auth_value(authorization).params)
    if value is None:
        del params[name]
    else:
        params[name] = value
    return "Digest " + ", ".join(f'{k}="{v}"' for k, v in params.items())


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("response", None, "missing response"),
        ("nc", None, "missing nc"),
        ("username", None, "no username"),
        ("uri", "sip:someone-else.example", "uri does not match the Request-URI"),
        ("algorithm", "SHA-512-256", "algorithm was not offered"),
        ("algorithm", "ROT13", "algorithm was not offered"),
        ("qop", "auth-int", "qop must be auth"),
        ("nc", "1", "nc must be 8 hex digits, not zero"),
        ("nc", "00000000", "nc must be 8 hex digits, not zero"),
        ("response", "zz", "response is not a digest"),
        ("opaque", "someone else's", "opaque is not ours"),
        ("cnonce", "", "empty cnonce"),
        ("userhash", "true", "userhash was not offered"),
    ],
)
def test_credentials_that_do_not_answer_our_challenge_are_a_bad_request(
    name: str, value: str | None, reason: str
) -> None:
    server = authority()
    authorization = substitute(login(server, 0.0), name, value)
    verdict = server.verify([authorization], method="REGISTER", request_uri=URI, now=1.0)
    assert (verdict.outcome, verdict.status, verdict.reason) == (Outcome.MALFORMED, 400, reason)
    assert verdict.challenges == ()
    assert verdict.outcome.counts_as_failure


def test_two_sets_of_credentials_for_our_realm_are_a_bad_request() -> None:
    server = authority()
    verdict = server.verify(
        [login(server, 0.0), login(server, 0.0)], method="REGISTER", request_uri=URI, now=1.0
    )
    assert verdict.outcome is Outcome.MALFORMED


def test_unparseable_credentials_are_a_bad_request() -> None:
    server = authority()
    verdict = server.verify(
        ['Digest username="unterminated'], method="REGISTER", request_uri=URI, now=1.0
    )
    assert (verdict.outcome, verdict.status) == (Outcome.MALFORMED, 400)


@pytest.mark.parametrize(
    "options",
    [
        {"realm": ""},
        {"realm": "bad\r\nrealm"},
        {"secret": b"short"},
        {"algorithms": []},
        {"algorithms": [Algorithm.MD5, Algorithm.MD5]},
        {"nonce_lifetime": 0},
        {"max_tracked_nonces": 0},
    ],
)
def test_a_misconfigured_authority_fails_at_construction(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        authority(**options)


# -- the parser ---------------------------------------------------------------


def test_the_parser_reads_quoted_strings_escapes_tokens_and_case_insensitive_names() -> None:
    value = parse_auth_value(
        'digest  USERNAME="a, \\"b\\"" ,Realm=x.example,\tnc=00000001 , uri=sip:a@b;x=1'
    )
    assert value.scheme == "digest"
    assert dict(value.params) == {
        "username": 'a, "b"',
        "realm": "x.example",
        "nc": "00000001",
        "uri": "sip:a@b;x=1",
    }


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Digest realm",
        'Digest realm="a", realm="b"',
        'Digest realm="a", REALM="b"',
        'Digest realm="a',
        'Digest realm="a\\',
        "Digest realm=",
        "Digest =x",
        "Digest realm=a,",
        "Digest realm=a,,nonce=b",
        "Digest realm=a nonce=b",
        'Digest realm="a\r\nVia: injected"',
        "Digest realm=\x00",
        'Digest,realm="a"',
        "Digest realm=é",
        'Digest realm="\ud800"',
        "Digest " + "x" * 9000,
    ],
)
def test_the_parser_refuses_malformed_values_with_its_own_error(text: str) -> None:
    with pytest.raises(DigestSyntaxError):
        parse_auth_value(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_the_parser_raises_nothing_but_its_own_error_on_arbitrary_text(text: str) -> None:
    with contextlib.suppress(DigestSyntaxError):
        parse_auth_value(text)


_PIECES = st.sampled_from(
    [
        "Digest ",
        "username=",
        "realm=",
        "nonce=",
        "uri=",
        "response=",
        "nc=",
        "cnonce=",
        "qop=",
        "algorithm=",
        '"',
        "\\",
        ",",
        " ",
        "=",
        "auth",
        "MD5",
        "SHA-256",
        "00000001",
        REALM,
        URI,
        "é",
        "\t",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_PIECES, max_size=30).map("".join) | st.text(max_size=50), max_size=3))
def test_verification_answers_any_header_values_without_raising(values: list[str]) -> None:
    verdict = authority().verify(values, method="REGISTER", request_uri=URI, now=1.0)
    assert verdict.outcome is not Outcome.ACCEPTED


@settings(max_examples=200, deadline=None)
@given(
    username=st.text(
        st.characters(min_codepoint=0x20, exclude_characters="\x7f", exclude_categories=["Cs"]),
        min_size=1,
    ),
    password=st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
)
def test_any_printable_username_and_password_round_trip(username: str, password: str) -> None:
    def single_user(name: str) -> dict[Algorithm, str] | None:
        return hashed_secrets(username, REALM, password) if name == username else None

    server = authority(lookup=single_user)
    authorization = login(server, 0.0, username=username, password=password)
    assert verify(server, authorization, 1.0) is Outcome.ACCEPTED


# -- the client side ----------------------------------------------------------


def test_the_client_answers_the_strongest_challenge_even_when_md5_is_on_top() -> None:
    md5 = 'Digest realm="r", nonce="n1", algorithm=MD5, qop="auth"'
    sha = 'Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth"'
    sha512 = 'Digest realm="r", nonce="n3", algorithm=SHA-512-256, qop="auth"'
    assert choose_challenge([md5, sha]) == sha
    assert choose_challenge([md5, sha512, sha]) == sha512
    assert choose_challenge([md5]) == md5


def test_the_client_skips_challenges_it_cannot_answer() -> None:
    assert (
        choose_challenge(
            [
                "Basic realm=x",
                'Digest realm="r", nonce="n", algorithm=ROT13',
                'Digest realm="r", nonce="n", qop="auth-conf"',
                "garbage\x00",
            ]
        )
        is None
    )


@pytest.mark.parametrize(
    "challenge",
    [
        'Basic realm="r"',
        'Digest nonce="n"',
        'Digest realm="r"',
        'Digest realm="r", nonce="n", algorithm=ROT13',
        'Digest realm="r", nonce="n", qop="auth-conf"',
        'Digest realm="r", nonce="n", algorithm=MD5-sess',
    ],
)
def test_the_client_refuses_a_challenge_it_cannot_answer(challenge: str) -> None:
    with pytest.raises(DigestError):
        answer_challenge(challenge, username="u", password="p", method="INVITE", uri="sip:x")


def test_the_client_answers_auth_int_over_the_body_when_that_is_all_that_is_offered() -> None:
    challenge = 'Digest realm="r", nonce="n", qop="auth-int", algorithm=SHA-256'
    with_body = answer_challenge(
        challenge,
        username="u",
        password="p",
        method="INVITE",
        uri="sip:x",
        cnonce="c",
        body=b"v=0\r\n",
    )
    without = answer_challenge(
        challenge, username="u", password="p", method="INVITE", uri="sip:x", cnonce="c"
    )
    assert param(with_body, "qop") == "auth-int"
    assert param(with_body, "response") != param(without, "response")


def test_the_client_refuses_a_username_that_would_inject_a_header() -> None:
    with pytest.raises(DigestError):
        answer_challenge(
            'Digest realm="r", nonce="n"',
            username="u\r\nX: y",
            password="p",
            method="INVITE",
            uri="sip:x",
        )
