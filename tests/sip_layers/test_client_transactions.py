"""Client transactions (RFC 3261 §17.1, RFC 6026), driven through the layer on a numeric clock."""

from __future__ import annotations

import pytest

from ivr.sip.message import Request, Response, parse_message, response_to
from ivr.sip.transactions import (
    ClientState,
    Output,
    Peer,
    ResponseReceived,
    Terminated,
    TransactionKey,
    TransactionLayer,
    TransactionTimedOut,
    Transmit,
    TransportError,
    cancel_request,
    client_key,
)

AGENT_PHONE = Peer(host="10.0.0.17", port=5060)
AGENT_PHONE_TCP = Peer(host="10.0.0.17", port=5060, transport="tcp")


def outgoing(
    method: str = "INVITE", *, branch: str = "z9hG4bKout1", transport: str = "UDP"
) -> Request:
    text = (
        f"{method} sip:agent17@10.0.0.17 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 198.51.100.1:5060;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        "Route: <sip:proxy.centre.example;lr>\r\n"
        "From: <sip:ivr@centre.example>;tag=ivr1\r\n"
        "To: <sip:agent17@centre.example>\r\n"
        "Call-ID: out-1@198.51.100.1\r\n"
        f"CSeq: 7 {method}\r\n"
        "Contact: <sip:ivr@198.51.100.1>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def answer(request: Request, status: int, tag: str | None = "phone") -> Response:
    # Through the wire and back, as the transport would hand it over.
    response = parse_message(bytes(response_to(request, status, to_tag=tag)))
    assert isinstance(response, Response)
    return response


def sent(outputs: list[Output]) -> list[Request | Response]:
    return [o.message for o in outputs if isinstance(o, Transmit)]


def passed_up(outputs: list[Output]) -> list[int]:
    return [o.response.status for o in outputs if isinstance(o, ResponseReceived)]


def fire_until(layer: TransactionLayer, end: float) -> list[tuple[float, Output]]:
    timeline: list[tuple[float, Output]] = []
    while (deadline := layer.next_deadline()) is not None and deadline <= end:
        timeline += [(deadline, output) for output in layer.advance(deadline)]
    return timeline


def start(layer: TransactionLayer, request: Request, peer: Peer = AGENT_PHONE) -> TransactionKey:
    outputs = layer.request(request, peer, 0.0)
    assert sent(outputs) == [request]
    key = client_key(request)
    assert key is not None
    return key


# -- INVITE -----------------------------------------------------------------------


def test_an_invite_is_re_sent_on_timer_a_doubling_and_times_out_on_timer_b() -> None:
    layer = TransactionLayer()
    key = start(layer, outgoing())

    timeline = fire_until(layer, 40.0)

    resent_at = [t for t, o in timeline if isinstance(o, Transmit)]
    assert resent_at == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # A doubles without a cap
    assert timeline[-2:] == [(32.0, TransactionTimedOut(key=key)), (32.0, Terminated(key=key))]
    assert len(layer) == 0


def test_a_provisional_response_stops_the_invite_retransmissions_and_timer_b() -> None:
    layer = TransactionLayer()
    invite = outgoing()
    key = start(layer, invite)

    assert passed_up(layer.receive(answer(invite, 180), AGENT_PHONE, 0.2)) == [180]
    assert layer.state(key) is ClientState.PROCEEDING
    assert layer.next_deadline() is None  # it waits for the TU to CANCEL if it must


def test_a_failure_is_acked_by_the_transaction_with_the_invite_branch() -> None:
    layer = TransactionLayer()
    invite = outgoing()
    start(layer, invite)
    busy = answer(invite, 486)

    outputs = layer.receive(busy, AGENT_PHONE, 0.3)

    [ack] = sent(outputs)
    assert passed_up(outputs) == [486]
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.uri == invite.uri
    assert ack.top_via is not None and ack.top_via.branch == "z9hG4bKout1"  # §17.1.1.3
    assert ack.headers.get("CSeq") == "7 ACK"
    assert ack.to_address is not None and ack.to_address.tag == "phone"
    assert ack.headers.get_all("Route") == invite.headers.get_all("Route")
    assert ack.headers.get("Call-ID") == invite.headers.get("Call-ID")


def test_a_retransmitted_failure_gets_the_same_ack_and_is_not_passed_up_again() -> None:
    layer = TransactionLayer()
    invite = outgoing()
    key = start(layer, invite)
    first = sent(layer.receive(answer(invite, 486), AGENT_PHONE, 0.3))

    again = layer.receive(answer(invite, 486), AGENT_PHONE, 0.8)

    assert passed_up(again) == [] and sent(again) == first
    assert fire_until(layer, 40.0) == [(32.3, Terminated(key=key))]  # timer D


def test_a_2xx_is_passed_up_and_so_are_its_retransmissions_while_accepted() -> None:
    layer = TransactionLayer()
    invite = outgoing()
    key = start(layer, invite)
    ok = answer(invite, 200)

    first = layer.receive(ok, AGENT_PHONE, 0.4)
    again = layer.receive(ok, AGENT_PHONE, 0.9)

    assert passed_up(first) == [200] and sent(first) == []  # the ACK for a 2xx is the TU's
    assert passed_up(again) == [200]
    assert layer.state(key) is ClientState.ACCEPTED
    assert fire_until(layer, 40.0) == [(32.4, Terminated(key=key))]  # timer M


def test_on_tcp_an_invite_is_never_re_sent_and_a_failure_ends_it_at_once() -> None:
    layer = TransactionLayer()
    invite = outgoing(transport="TCP")
    key = start(layer, invite, AGENT_PHONE_TCP)
    assert layer.next_deadline() == 32.0  # B only

    outputs = layer.receive(answer(invite, 480), AGENT_PHONE_TCP, 1.0)

    assert [type(o) for o in outputs] == [Transmit, ResponseReceived, Terminated]  # D = 0
    assert outputs[-1] == Terminated(key=key)


def test_an_ack_is_sent_without_a_transaction() -> None:
    layer = TransactionLayer()
    ack = outgoing("ACK", branch="z9hG4bKack")

    assert layer.request(ack, AGENT_PHONE, 0.0) == [Transmit(message=ack, destination=AGENT_PHONE)]
    assert len(layer) == 0


def test_a_transport_error_times_nothing_out_but_ends_the_transaction() -> None:
    layer = TransactionLayer()
    key = start(layer, outgoing())

    assert layer.transport_failed(key, 0.1) == [TransportError(key=key), Terminated(key=key)]
    assert layer.next_deadline() is None


# -- non-INVITE ---------------------------------------------------------------------


def test_timer_e_doubles_up_to_t2_and_timer_f_times_out() -> None:
    layer = TransactionLayer()
    key = start(layer, outgoing("OPTIONS", branch="z9hG4bKopt"))

    timeline = fire_until(layer, 40.0)

    resent_at = [t for t, o in timeline if isinstance(o, Transmit)]
    assert resent_at[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]  # 0.5, 1, 2, 4, then T2 = 4
    assert resent_at[-1] == 31.5
    assert timeline[-2:] == [(32.0, TransactionTimedOut(key=key)), (32.0, Terminated(key=key))]


def test_after_a_provisional_response_timer_e_is_t2() -> None:
    layer = TransactionLayer()
    request = outgoing("INFO", branch="z9hG4bKinfo")
    key = start(layer, request)
    layer.receive(answer(request, 100, tag=None), AGENT_PHONE, 0.1)
    assert layer.state(key) is ClientState.PROCEEDING

    resent_at = [t for t, o in fire_until(layer, 12.0) if isinstance(o, Transmit)]

    assert resent_at == [0.5, 4.5, 8.5]  # the armed E fires, then T2 each time


def test_a_final_response_to_a_non_invite_is_passed_up_once_then_absorbed_until_k() -> None:
    layer = TransactionLayer()
    bye = outgoing("BYE", branch="z9hG4bKbye")
    key = start(layer, bye)

    assert passed_up(layer.receive(answer(bye, 200), AGENT_PHONE, 0.2)) == [200]
    assert layer.receive(answer(bye, 200), AGENT_PHONE, 0.7) == []
    assert fire_until(layer, 10.0) == [(5.2, Terminated(key=key))]  # K = T4


def test_on_tcp_a_non_invite_ends_with_its_final_response() -> None:
    layer = TransactionLayer()
    bye = outgoing("BYE", branch="z9hG4bKbye", transport="TCP")
    key = start(layer, bye, AGENT_PHONE_TCP)

    outputs = layer.receive(answer(bye, 200), AGENT_PHONE_TCP, 0.2)

    assert passed_up(outputs) == [200] and outputs[-1] == Terminated(key=key)


# -- matching and CANCEL ------------------------------------------------------------


def test_a_response_that_matches_no_transaction_is_dropped() -> None:
    layer = TransactionLayer()
    start(layer, outgoing())
    stranger = answer(outgoing(branch="z9hG4bKother"), 200)

    assert layer.receive(stranger, AGENT_PHONE, 0.1) == []
    assert layer.statistics().stray_responses == 1


def test_a_response_to_the_cancel_does_not_reach_the_invite() -> None:
    layer = TransactionLayer()
    invite = outgoing()
    invite_key = start(layer, invite)
    layer.receive(answer(invite, 180), AGENT_PHONE, 0.1)
    [cancel_sent] = layer.cancel(invite_key, 2.0)
    assert isinstance(cancel_sent, Transmit) and isinstance(cancel_sent.message, Request)
    cancel = cancel_sent.message

    outputs = layer.receive(answer(cancel, 200), AGENT_PHONE, 2.1)

    [received] = [o for o in outputs if isinstance(o, ResponseReceived)]
    assert received.key == client_key(cancel) != invite_key
    assert layer.state(invite_key) is ClientState.PROCEEDING


def test_a_cancel_copies_the_invite_branch_request_uri_and_route() -> None:
    invite = outgoing()

    cancel = cancel_request(invite)

    assert cancel.method == "CANCEL" and cancel.uri == invite.uri
    assert cancel.headers.get("CSeq") == "7 CANCEL"
    assert cancel.top_via == invite.top_via
    assert len(cancel.vias) == 1
    for name in ("From", "To", "Call-ID", "Route"):
        assert cancel.headers.get_all(name) == invite.headers.get_all(name)


def test_an_invite_is_not_cancelled_before_a_provisional_response() -> None:
    layer = TransactionLayer()
    key = start(layer, outgoing())

    assert layer.cancel(key, 0.1) == []  # §9.1: wait for a provisional response


def test_a_request_without_a_branch_of_ours_is_refused() -> None:
    layer = TransactionLayer()
    with pytest.raises(ValueError, match="branch"):
        layer.request(outgoing(branch="old-style"), AGENT_PHONE, 0.0)


def test_a_branch_already_in_use_is_refused() -> None:
    layer = TransactionLayer()
    start(layer, outgoing())
    with pytest.raises(ValueError, match="in use"):
        layer.request(outgoing(), AGENT_PHONE, 0.1)


def test_a_cancelled_invite_without_a_final_response_is_given_up_after_64_t1() -> None:
    layer = TransactionLayer()
    invite = outgoing()
    key = start(layer, invite)
    layer.receive(answer(invite, 180), AGENT_PHONE, 0.1)
    [cancel_sent] = layer.cancel(key, 10.0)
    assert isinstance(cancel_sent, Transmit) and isinstance(cancel_sent.message, Request)
    layer.receive(answer(cancel_sent.message, 200), AGENT_PHONE, 10.1)

    timeline = fire_until(layer, 60.0)

    assert (42.0, TransactionTimedOut(key=key)) in timeline  # §9.1: the peer never sent 487
    assert layer.state(key) is None
