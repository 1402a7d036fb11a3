"""Agents' phones registering: digest, the throttle, one's own address, notices for the core."""

from __future__ import annotations

from acd.ids import AgentId
from ivr.registrations import PhoneRegistered, PhoneUnregistered, Registrations
from ivr.sip import Request, Response, parse_message
from ivr.sip.accounts import SipAccount, SipAccounts
from ivr.sip.digest import answer_challenge, hashed_secrets
from ivr.sip.throttle import FailureThrottle
from ivr.sip.transport import Peer

PHONE = Peer("127.0.0.1", 5062, "udp")
REALM = "acd"


def centre() -> Registrations:
    accounts = SipAccounts(
        [
            SipAccount(
                agent_id=AgentId("ann"),
                username="ann",
                ha1=hashed_secrets("ann", REALM, "pa55word"),
            )
        ]
    )
    return Registrations(
        accounts, realm=REALM, secret=b"k" * 32, throttle=FailureThrottle(max_failures=3, window=60)
    )


def register(user: str, cseq: int, *, expires: int = 300, auth: str | None = None) -> Request:
    lines = [
        "REGISTER sip:127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-r{cseq}",
        "Max-Forwards: 70",
        f"From: <sip:{user}@127.0.0.1>;tag=f1",
        f"To: <sip:{user}@127.0.0.1>",
        "Call-ID: reg-1@127.0.0.1",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{user}@127.0.0.1:5062>;expires={expires}",
    ]
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    message = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def with_credentials(
    challenge: Response, user: str, password: str, cseq: int, **kw: int
) -> Request:
    value = answer_challenge(
        challenge.headers.get_all("WWW-Authenticate")[0],
        username=user,
        password=password,
        method="REGISTER",
        uri="sip:127.0.0.1",
    )
    return register(user, cseq, auth=value, **kw)


def test_a_phone_registers_after_a_digest_challenge_and_the_agent_becomes_reachable() -> None:
    registrations = centre()
    first = registrations.register(register("ann", 1), PHONE, 0.0)
    assert first.response is not None and first.response.status == 401
    challenges = first.response.headers.get_all("WWW-Authenticate")
    assert "SHA-256" in challenges[0] and "MD5" in challenges[1]  # RFC 8760: strongest first
    second = registrations.register(
        with_credentials(first.response, "ann", "pa55word", 2), PHONE, 1.0
    )
    assert second.response is not None and second.response.status == 200
    assert "expires=300" in second.response.headers.get("Contact", "")
    assert [type(n) for n in second.notices] == [PhoneRegistered]
    binding = registrations.locate(AgentId("ann"), 2.0)
    assert binding is not None and (binding.source.host, binding.source.port) == ("127.0.0.1", 5062)


def test_unknown_users_and_wrong_passwords_get_the_same_401() -> None:
    registrations = centre()
    challenge = registrations.register(register("ann", 1), PHONE, 0.0).response
    assert challenge is not None
    wrong = registrations.register(with_credentials(challenge, "ann", "guess", 2), PHONE, 1.0)
    nobody = registrations.register(with_credentials(challenge, "zed", "guess", 2), PHONE, 1.0)
    for answer in (wrong, nobody):
        assert answer.response is not None and answer.response.status == 401
        assert len(answer.response.headers.get_all("WWW-Authenticate")) == 2
        assert answer.notices == ()


def test_a_source_that_keeps_failing_is_ignored_while_another_still_registers() -> None:
    registrations = centre()
    attacker = Peer("127.0.0.9", 5060, "udp")
    challenge = registrations.register(register("ann", 1), attacker, 0.0).response
    assert challenge is not None
    for n in range(3):
        registrations.register(
            with_credentials(challenge, "ann", f"guess{n}", 2 + n), attacker, 1.0
        )
    dropped = registrations.register(
        with_credentials(challenge, "ann", "pa55word", 9), attacker, 2.0
    )
    assert dropped.response is None  # over UDP a refused source hears nothing
    fresh = registrations.register(register("ann", 1), PHONE, 2.0).response
    assert fresh is not None
    ok = registrations.register(with_credentials(fresh, "ann", "pa55word", 2), PHONE, 2.5)
    assert ok.response is not None and ok.response.status == 200


def test_an_agent_may_register_only_their_own_address() -> None:
    registrations = centre()
    challenge = registrations.register(register("bob", 1), PHONE, 0.0).response
    assert challenge is not None
    value = answer_challenge(
        challenge.headers.get_all("WWW-Authenticate")[0],
        username="ann",
        password="pa55word",
        method="REGISTER",
        uri="sip:127.0.0.1",
    )
    answer = registrations.register(register("bob", 2, auth=value), PHONE, 1.0)
    assert answer.response is not None and answer.response.status == 403


def test_unregistering_or_lapsing_makes_the_phone_unreachable() -> None:
    registrations = centre()
    challenge = registrations.register(register("ann", 1), PHONE, 0.0).response
    assert challenge is not None
    registrations.register(
        with_credentials(challenge, "ann", "pa55word", 2, expires=60), PHONE, 0.0
    )
    assert registrations.next_deadline() == 60.0
    (gone,) = registrations.expire(60.0)
    assert isinstance(gone, PhoneUnregistered) and gone.reason == "expired"
    assert registrations.locate(AgentId("ann"), 61.0) is None


def test_a_centre_with_older_phones_offers_md5_alone() -> None:
    from ivr.sip.digest import Algorithm

    accounts = SipAccounts(
        [
            SipAccount(
                agent_id=AgentId("ann"),
                username="ann",
                ha1=hashed_secrets("ann", REALM, "pa55word"),
            )
        ]
    )
    registrations = Registrations(accounts, realm=REALM, algorithms=(Algorithm.MD5,))
    challenge = registrations.register(register("ann", 1), PHONE, 0.0).response
    assert challenge is not None
    (only,) = challenge.headers.get_all("WWW-Authenticate")
    assert "MD5" in only and "SHA-256" not in only
    answer = registrations.register(with_credentials(challenge, "ann", "pa55word", 2), PHONE, 1.0)
    assert answer.response is not None and answer.response.status == 200


def test_refusals_are_reported_for_the_audit_log_but_a_first_challenge_is_not() -> None:
    registrations = centre()
    attacker = Peer("127.0.0.9", 5060, "udp")
    first = registrations.register(register("ann", 1), attacker, 0.0)
    assert first.refused is None  # every phone is challenged once: not a failure
    challenge = first.response
    assert challenge is not None
    refusals = [
        registrations.register(
            with_credentials(challenge, "ann", f"guess{n}", 2 + n), attacker, 1.0
        ).refused
        for n in range(3)
    ]
    assert [r.username if r else None for r in refusals] == ["ann", "ann", "ann"]
    assert all(r is not None and r.peer == attacker and r.status == 401 for r in refusals)
    assert [r.banned if r else None for r in refusals] == [False, False, True]
    assert all(r is not None and "guess" not in r.reason for r in refusals)
    dropped = registrations.register(with_credentials(challenge, "ann", "x", 9), attacker, 2.0)
    assert dropped.response is None and dropped.refused is None  # a ban's packets: no record each


def test_registering_someone_elses_address_is_reported_as_refused() -> None:
    registrations = centre()
    challenge = registrations.register(register("bob", 1), PHONE, 0.0).response
    assert challenge is not None
    value = answer_challenge(
        challenge.headers.get_all("WWW-Authenticate")[0],
        username="ann",
        password="pa55word",
        method="REGISTER",
        uri="sip:127.0.0.1",
    )
    answer = registrations.register(register("bob", 2, auth=value), PHONE, 1.0)
    assert answer.refused is not None
    assert (answer.refused.username, answer.refused.status) == ("ann", 403)
