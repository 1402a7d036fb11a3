"""Server transactions (RFC 3261 §17.2, RFC 6026), driven through the layer on a numeric clock."""

from __future__ import annotations

import pytest

from ivr.sip.message import Request, Response, parse_message, response_to
from ivr.sip.transactions import (
    AckReceived,
    InvalidTransition,
    Output,
    Peer,
    RequestReceived,
    ServerState,
    Terminated,
    TransactionKey,
    TransactionLayer,
    TransactionTimedOut,
    Transmit,
    TransportError,
)

PHONE = Peer(host="192.0.2.10", port=5060)
PHONE_TCP = Peer(host="192.0.2.10", port=49152, transport="tcp")


def request(
    method: str = "INVITE",
    *,
    branch: str = "z9hG4bKinvite1",
    cseq: int = 1,
    cseq_method: str | None = None,
    to_tag: str | None = None,
    transport: str = "UDP",
) -> Request:
    to = "<sip:ivr@198.51.100.1>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} sip:ivr@198.51.100.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 192.0.2.10:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@192.0.2.10>;tag=caller\r\n"
        f"To: {to}\r\n"
        "Call-ID: call-1@192.0.2.10\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Contact: <sip:alice@192.0.2.10>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def sent(outputs: list[Output]) -> list[Response | Request]:
    return [o.message for o in outputs if isinstance(o, Transmit)]


def statuses(outputs: list[Output]) -> list[int]:
    return [m.status for m in sent(outputs) if isinstance(m, Response)]


def received(outputs: list[Output]) -> list[RequestReceived]:
    return [o for o in outputs if isinstance(o, RequestReceived)]


def new_invite(layer: TransactionLayer, source: Peer = PHONE) -> tuple[TransactionKey, Request]:
    transport = "TCP" if source.reliable else "UDP"
    [arrival] = received(layer.receive(request(transport=transport), source, 0.0))
    return arrival.key, arrival.request


def fire_until(layer: TransactionLayer, end: float) -> list[tuple[float, Output]]:
    """Every output of the timers due up to ``end``, with the time each fired."""
    timeline: list[tuple[float, Output]] = []
    while (deadline := layer.next_deadline()) is not None and deadline <= end:
        timeline += [(deadline, output) for output in layer.advance(deadline)]
    return timeline


# -- INVITE -----------------------------------------------------------------------


def test_a_new_invite_is_answered_100_trying_at_once_and_passed_up_once() -> None:
    layer = TransactionLayer()

    outputs = layer.receive(request(), PHONE, 0.0)

    assert statuses(outputs) == [100]
    assert isinstance(outputs[0], Transmit) and outputs[0].destination == PHONE
    trying = outputs[0].message
    assert isinstance(trying, Response) and trying.to_address is not None
    assert trying.to_address.tag is None  # §17.2.1: a 100 carries no To tag
    assert len(received(outputs)) == 1


def test_a_retransmitted_invite_is_absorbed_and_the_100_re_sent_each_time() -> None:
    layer = TransactionLayer()
    first = layer.receive(request(), PHONE, 0.0)

    again = [layer.receive(request(), PHONE, 0.1 * n) for n in (1, 2, 3)]

    assert len(received(first)) == 1
    for outputs in again:
        assert received(outputs) == []
        assert statuses(outputs) == [100]
    assert len(layer) == 1


def test_a_retransmitted_invite_gets_the_latest_provisional_response() -> None:
    layer = TransactionLayer()
    key, invite = new_invite(layer)
    layer.respond(key, response_to(invite, 180, to_tag="ivr"), 0.2)

    assert statuses(layer.receive(request(), PHONE, 0.5)) == [180]


def test_a_failure_is_re_sent_on_timer_g_doubling_up_to_t2_until_the_ack() -> None:
    layer = TransactionLayer()
    key, invite = new_invite(layer)
    assert statuses(layer.respond(key, response_to(invite, 486, to_tag="ivr"), 0.0)) == [486]

    timeline = fire_until(layer, 12.0)
    ack_outputs = layer.receive(request("ACK", to_tag="ivr"), PHONE, 12.0)

    assert [t for t, o in timeline if isinstance(o, Transmit)] == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert ack_outputs == []  # absorbed: the ACK of a failure is the transaction's
    assert layer.state(key) is ServerState.CONFIRMED
    assert layer.next_deadline() == 12.0 + 5.0  # timer I = T4; G and H are gone
    assert fire_until(layer, 17.0) == [(17.0, Terminated(key=key))]
    assert len(layer) == 0


def test_a_retransmitted_invite_after_a_failure_gets_the_failure_again() -> None:
    layer = TransactionLayer()
    key, invite = new_invite(layer)
    layer.respond(key, response_to(invite, 603, to_tag="ivr"), 0.0)

    assert statuses(layer.receive(request(), PHONE, 0.2)) == [603]


def test_acks_after_the_first_are_absorbed_in_confirmed() -> None:
    layer = TransactionLayer()
    key, invite = new_invite(layer)
    layer.respond(key, response_to(invite, 486, to_tag="ivr"), 0.0)
    layer.receive(request("ACK", to_tag="ivr"), PHONE, 0.1)

    assert layer.receive(request("ACK", to_tag="ivr"), PHONE, 0.3) == []
    assert layer.receive(request(), PHONE, 0.4) == []


def test_no_ack_for_a_failure_times_out_on_timer_h() -> None:
    layer = TransactionLayer()
    key, invite = new_invite(layer)
    layer.respond(key, response_to(invite, 486, to_tag="ivr"), 0.0)

    timeline = fire_until(layer, 40.0)

    assert timeline[-2:] == [
        (32.0, TransactionTimedOut(key=key)),
        (32.0, Terminated(key=key)),
    ]
    resent_at = [t for t, o in timeline if isinstance(o, Transmit)]
    assert resent_at[:4] == [0.5, 1.5, 3.5, 7.5] and resent_at[-1] == 31.5
    assert len(layer) == 0 and layer.next_deadline() is None


def test_a_2xx_moves_the_invite_to_accepted_where_retransmitted_invites_are_absorbed() -> None:
    layer = TransactionLayer()
    key, invite = new_invite(layer)
    ok = response_to(invite, 200, to_tag="ivr")
    layer.respond(key, ok, 0.0)

    assert layer.state(key) is ServerState.ACCEPTED
    assert layer.receive(request(), PHONE, 0.3) == []  # RFC 6026 §7.1: not even re-sent
    assert statuses(layer.respond(key, ok, 0.5)) == [200]  # the TU's retransmission passes
    assert fire_until(layer, 31.9) == []  # no G: the 2xx is the TU's to re-send
    assert fire_until(layer, 32.0) == [(32.0, Terminated(key=key))]  # timer L


def test_an_ack_matching_an_accepted_invite_is_passed_to_the_tu() -> None:
    layer = TransactionLayer()
    key, invite = new_invite(layer)
    layer.respond(key, response_to(invite, 200, to_tag="ivr"), 0.0)
    ack = request("ACK", to_tag="ivr")  # same branch: an RFC 2543-style or careless UAC

    assert layer.receive(ack, PHONE, 0.1) == [AckReceived(request=ack, source=PHONE, key=key)]


def test_the_ack_for_a_2xx_with_its_own_branch_reaches_the_tu_as_a_stray_ack() -> None:
    layer = TransactionLayer()
    key, invite = new_invite(layer)
    layer.respond(key, response_to(invite, 200, to_tag="ivr"), 0.0)
    ack = request("ACK", branch="z9hG4bKack1", to_tag="ivr")

    assert layer.receive(ack, PHONE, 0.1) == [AckReceived(request=ack, source=PHONE)]
    assert layer.state(key) is ServerState.ACCEPTED


def test_on_tcp_a_failure_is_never_re_sent_and_the_ack_ends_the_transaction() -> None:
    layer = TransactionLayer()
    key, invite = new_invite(layer, PHONE_TCP)
    layer.respond(key, response_to(invite, 486, to_tag="ivr"), 0.0)

    assert layer.next_deadline() == 32.0  # H only: no G on a reliable transport
    outputs = layer.receive(request("ACK", to_tag="ivr", transport="TCP"), PHONE_TCP, 0.1)

    assert outputs == [Terminated(key=key)]  # timer I is zero on TCP
    assert len(layer) == 0 and layer.next_deadline() is None


def test_responses_over_tcp_go_back_on_the_connection_the_request_came_on() -> None:
    layer = TransactionLayer()
    key, invite = new_invite(layer, PHONE_TCP)
    [transmit] = layer.respond(key, response_to(invite, 180, to_tag="ivr"), 0.0)

    assert isinstance(transmit, Transmit) and transmit.destination == PHONE_TCP


def test_a_second_final_response_is_a_bug_in_the_tu() -> None:
    layer = TransactionLayer()
    key, invite = new_invite(layer)
    layer.respond(key, response_to(invite, 486, to_tag="ivr"), 0.0)

    with pytest.raises(InvalidTransition):
        layer.respond(key, response_to(invite, 200, to_tag="ivr"), 0.1)


def test_a_transport_error_while_proceeding_tells_the_tu_and_ends_the_transaction() -> None:
    layer = TransactionLayer()
    key, _ = new_invite(layer)

    assert layer.transport_failed(key, 0.1) == [TransportError(key=key), Terminated(key=key)]
    assert len(layer) == 0


# -- non-INVITE ---------------------------------------------------------------------


def test_a_non_invite_retransmission_before_the_answer_is_absorbed_silently() -> None:
    layer = TransactionLayer()
    [arrival] = received(layer.receive(request("OPTIONS", branch="z9hG4bKo1"), PHONE, 0.0))

    assert layer.state(arrival.key) is ServerState.TRYING
    assert layer.receive(request("OPTIONS", branch="z9hG4bKo1"), PHONE, 0.5) == []


def test_a_non_invite_retransmission_gets_the_last_response_until_timer_j() -> None:
    layer = TransactionLayer()
    outputs = layer.receive(request("BYE", branch="z9hG4bKbye", to_tag="ivr"), PHONE, 0.0)
    assert statuses(outputs) == []  # no 100 for a non-INVITE
    [arrival] = received(outputs)
    layer.respond(arrival.key, response_to(arrival.request, 200), 0.1)

    again = layer.receive(request("BYE", branch="z9hG4bKbye", to_tag="ivr"), PHONE, 5.0)

    assert statuses(again) == [200]
    assert fire_until(layer, 32.0) == []
    assert fire_until(layer, 32.1) == [(32.1, Terminated(key=arrival.key))]  # J = 64*T1


def test_a_non_invite_on_tcp_ends_as_soon_as_it_is_answered() -> None:
    layer = TransactionLayer()
    bye = request("BYE", branch="z9hG4bKbye", to_tag="ivr", transport="TCP")
    [arrival] = received(layer.receive(bye, PHONE_TCP, 0.0))

    outputs = layer.respond(arrival.key, response_to(arrival.request, 200), 0.1)

    assert statuses(outputs) == [200]
    assert outputs[-1] == Terminated(key=arrival.key)  # J is zero on TCP
    assert len(layer) == 0


def test_a_provisional_response_to_a_non_invite_is_re_sent_for_retransmissions() -> None:
    layer = TransactionLayer()
    [arrival] = received(layer.receive(request("INFO", branch="z9hG4bKi"), PHONE, 0.0))
    layer.respond(arrival.key, response_to(arrival.request, 183, to_tag="ivr"), 0.1)

    assert layer.state(arrival.key) is ServerState.PROCEEDING
    assert statuses(layer.receive(request("INFO", branch="z9hG4bKi"), PHONE, 0.6)) == [183]
