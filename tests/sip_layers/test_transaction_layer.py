"""The layer around the transactions: matching, arrival stamping, the cap, timers as data."""

from __future__ import annotations

import pytest

from ivr.sip.message import Request, Response, parse_message, response_to
from ivr.sip.timers import Schedule, TimerName, Timers
from ivr.sip.transactions import (
    AckReceived,
    Output,
    Peer,
    RequestReceived,
    Role,
    ServerState,
    TransactionKey,
    TransactionLayer,
    Transmit,
    new_branch,
    server_key,
)

PHONE = Peer(host="192.0.2.10", port=5060)
NATTED = Peer(host="203.0.113.5", port=40000)


def request(
    method: str = "INVITE",
    *,
    via: str = "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinvite1",
    cseq: int = 1,
    cseq_method: str | None = None,
    to_tag: str | None = None,
    uri: str = "sip:ivr@198.51.100.1",
) -> Request:
    to = "<sip:ivr@198.51.100.1>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@192.0.2.10>;tag=caller\r\n"
        f"To: {to}\r\n"
        "Call-ID: call-1@192.0.2.10\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def received(outputs: list[Output]) -> list[RequestReceived]:
    return [o for o in outputs if isinstance(o, RequestReceived)]


def transmits(outputs: list[Output]) -> list[Transmit]:
    return [o for o in outputs if isinstance(o, Transmit)]


# -- CANCEL (§9.2) ------------------------------------------------------------------


def test_a_cancel_is_a_transaction_of_its_own_that_names_the_invite_it_cancels() -> None:
    layer = TransactionLayer()
    [invite] = received(layer.receive(request(), PHONE, 0.0))

    outputs = layer.receive(request("CANCEL"), PHONE, 1.0)

    [cancel] = received(outputs)
    assert cancel.key != invite.key and cancel.key.method == "CANCEL"
    assert cancel.cancels == invite.key
    assert transmits(outputs) == []  # no 100 for a CANCEL: the TU answers it


def test_a_cancel_for_no_invite_we_know_names_none() -> None:
    layer = TransactionLayer()
    layer.receive(request(), PHONE, 0.0)
    stranger = request("CANCEL", via="SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKelse")

    [cancel] = received(layer.receive(stranger, PHONE, 1.0))

    assert cancel.cancels is None  # the TU answers 481


def test_the_same_branch_from_another_sent_by_is_another_transaction() -> None:
    layer = TransactionLayer()
    other = request(via="SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKinvite1")

    first = received(layer.receive(request(), PHONE, 0.0))
    second = received(layer.receive(other, Peer(host="192.0.2.99", port=5060), 0.0))

    assert len(first) == len(second) == 1 and first[0].key != second[0].key


# -- RFC 2543 peers (§17.2.3) --------------------------------------------------------


def test_an_rfc_2543_invite_retransmission_and_its_ack_find_the_transaction() -> None:
    layer = TransactionLayer()
    old_via = "SIP/2.0/UDP 192.0.2.10:5060"
    [arrival] = received(layer.receive(request(via=old_via), PHONE, 0.0))
    busy = response_to(arrival.request, 486, to_tag="ivr")
    layer.respond(arrival.key, busy, 0.0)

    again = layer.receive(request(via=old_via), PHONE, 0.2)
    ack = layer.receive(request("ACK", via=old_via, to_tag="ivr"), PHONE, 0.3)

    assert received(again) == [] and [t.message for t in transmits(again)] == [busy]
    assert ack == []  # absorbed by the INVITE transaction
    assert layer.state(arrival.key) is ServerState.CONFIRMED
    assert not arrival.key.branch.startswith("z9hG4bK")


def test_rfc_2543_requests_differing_in_cseq_are_different_transactions() -> None:
    layer = TransactionLayer()
    old_via = "SIP/2.0/UDP 192.0.2.10:5060"
    layer.receive(request("OPTIONS", via=old_via, cseq=1), PHONE, 0.0)

    assert len(received(layer.receive(request("OPTIONS", via=old_via, cseq=2), PHONE, 0.1))) == 1


# -- arrival (§18.2.1, RFC 3581) --------------------------------------------------------


def test_a_request_from_behind_nat_is_stamped_and_answered_where_it_came_from() -> None:
    layer = TransactionLayer()
    nat_via = "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKnat;rport"

    outputs = layer.receive(request(via=nat_via), NATTED, 0.0)

    [trying] = transmits(outputs)
    [arrival] = received(outputs)
    via = arrival.request.top_via
    assert via is not None and via.received == "203.0.113.5" and via.rport == 40000
    assert trying.destination == NATTED
    assert isinstance(trying.message, Response) and trying.message.top_via == via


def test_without_rport_the_response_goes_to_the_source_address_and_the_via_port() -> None:
    layer = TransactionLayer()
    outputs = layer.receive(request(via="SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKx"), NATTED, 0.0)

    [trying] = transmits(outputs)
    assert trying.destination == Peer(host="203.0.113.5", port=5070)


def test_a_request_whose_sent_by_is_its_source_is_not_rewritten() -> None:
    layer = TransactionLayer()
    original = request()

    [arrival] = received(layer.receive(original, PHONE, 0.0))

    assert arrival.request is original


# -- the cap and stray traffic --------------------------------------------------------


def test_past_the_cap_a_new_request_is_refused_503_statelessly_and_never_reaches_the_tu() -> None:
    layer = TransactionLayer(max_server_transactions=1, retry_after=7)
    layer.receive(request(), PHONE, 0.0)
    extra = request("OPTIONS", via="SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKextra")

    first = layer.receive(extra, PHONE, 0.1)
    again = layer.receive(extra, PHONE, 0.6)

    assert received(first) == [] and len(layer) == 1
    [refusal] = transmits(first)
    assert isinstance(refusal.message, Response) and refusal.message.status == 503
    assert refusal.message.headers.get("Retry-After") == "7"
    assert refusal.message == transmits(again)[0].message  # the same To tag (§8.2.7)
    assert layer.statistics().refused == 2


def test_an_ack_is_never_refused_even_past_the_cap() -> None:
    layer = TransactionLayer(max_server_transactions=0)
    ack = request("ACK", via="SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKack", to_tag="t")

    assert layer.receive(ack, PHONE, 0.0) == [AckReceived(request=ack, source=PHONE)]


def test_a_request_without_via_or_cseq_is_dropped() -> None:
    layer = TransactionLayer()
    no_cseq = parse_message(
        b"OPTIONS sip:ivr@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"
    )

    assert layer.receive(no_cseq, PHONE, 0.0) == []


def test_a_2xx_retransmitted_after_the_transaction_ended_goes_out_statelessly() -> None:
    layer = TransactionLayer()
    [arrival] = received(layer.receive(request(), NATTED, 0.0))
    ok = response_to(arrival.request, 200, to_tag="ivr")
    layer.respond(arrival.key, ok, 0.0)
    layer.advance(32.0)  # timer L
    assert len(layer) == 0

    [late] = layer.respond(arrival.request, ok, 33.0)

    assert isinstance(late, Transmit) and late.key is None
    assert late.destination == Peer(host="203.0.113.5", port=5060)  # received, Via port


def test_a_failure_for_a_transaction_that_has_ended_is_dropped() -> None:
    layer = TransactionLayer()
    [arrival] = received(layer.receive(request(), PHONE, 0.0))
    layer.transport_failed(arrival.key, 0.1)

    assert layer.respond(arrival.key, response_to(arrival.request, 486, to_tag="t"), 0.2) == []


def test_a_response_for_another_method_is_a_bug_in_the_tu() -> None:
    layer = TransactionLayer()
    [arrival] = received(layer.receive(request(), PHONE, 0.0))
    bye = request("BYE", to_tag="t")

    with pytest.raises(ValueError, match="CSeq"):
        layer.respond(arrival.key, response_to(bye, 200), 0.1)


def test_server_keys_map_an_ack_to_its_invite() -> None:
    invite_key = server_key(request())
    ack_key = server_key(request("ACK", to_tag="t"))

    assert (
        invite_key
        == ack_key
        == TransactionKey(
            role=Role.SERVER, branch="z9hG4bKinvite1", method="INVITE", sent_by="192.0.2.10:5060"
        )
    )


def test_new_branches_carry_the_magic_cookie_and_differ() -> None:
    branches = {new_branch() for _ in range(100)}

    assert len(branches) == 100
    assert all(b.startswith("z9hG4bK") and len(b) > 20 for b in branches)


# -- timers as data ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timer", "udp", "tcp"),
    [
        (TimerName.B, 32.0, 32.0),
        (TimerName.D, 32.0, 0.0),
        (TimerName.F, 32.0, 32.0),
        (TimerName.H, 32.0, 32.0),
        (TimerName.I, 5.0, 0.0),
        (TimerName.J, 32.0, 0.0),
        (TimerName.K, 5.0, 0.0),
        (TimerName.L, 32.0, 32.0),
        (TimerName.M, 32.0, 32.0),
    ],
)
def test_timer_durations_follow_rfc_3261_appendix_a(
    timer: TimerName, udp: float, tcp: float
) -> None:
    timers = Timers()

    assert timers.duration(timer, reliable=False) == udp
    assert timers.duration(timer, reliable=True) == tcp


def test_retransmission_timers_start_at_t1_and_are_not_used_on_tcp() -> None:
    timers = Timers(t1=0.1, t2=1.0, t4=2.0)

    assert [timers.duration(t, reliable=False) for t in (TimerName.A, TimerName.E)] == [0.1, 0.1]
    with pytest.raises(ValueError):
        timers.duration(TimerName.G, reliable=True)
    assert timers.backed_off(0.8) == 1.0 and timers.backed_off(0.8, cap=False) == 1.6


def test_a_shorter_t1_shortens_every_timeout() -> None:
    layer = TransactionLayer(timers=Timers(t1=0.05))
    [arrival] = received(layer.receive(request(), PHONE, 0.0))
    layer.respond(arrival.key, response_to(arrival.request, 486, to_tag="t"), 0.0)

    layer.advance(3.2)  # H = 64 * 0.05

    assert layer.state(arrival.key) is None


def test_impossible_timer_constants_are_refused() -> None:
    with pytest.raises(ValueError):
        Timers(t1=5.0, t2=4.0)


def test_a_schedule_re_armed_many_times_keeps_its_heap_small() -> None:
    schedule: Schedule[str, str] = Schedule()
    for n in range(10_000):
        schedule.arm("dialog", "2xx", float(n))
        schedule.arm(f"t{n}", "x", float(n))
        schedule.cancel(f"t{n}", "x")

    assert len(schedule) == 1 and schedule.entries <= 2 * len(schedule) + 65
    assert schedule.next_deadline() == 9_999.0
    assert schedule.pop_due(9_998.0) is None
    assert schedule.pop_due(9_999.0) == ("dialog", "2xx") and len(schedule) == 0
