"""Whole calls between two of our stacks, message by message over a pretend wire."""

from __future__ import annotations

from typing import TypeVar

from ivr.sip.dialogs import Dialog, Dialogs, RetransmitAnswer, new_request
from ivr.sip.fields import NameAddress, Via
from ivr.sip.grammar import Params
from ivr.sip.message import Request, parse_message, response_to
from ivr.sip.transactions import (
    AckReceived,
    Output,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionLayer,
    Transmit,
    client_key,
)
from ivr.sip.uri import parse_uri

T = TypeVar("T")

IVR = Peer(host="198.51.100.1", port=5060)
PHONE = Peer(host="10.0.0.17", port=5060)
IVR_CONTACT = NameAddress(uri=parse_uri("sip:ivr@198.51.100.1:5060"))
PHONE_CONTACT = NameAddress(uri=parse_uri("sip:agent17@10.0.0.17:5060"))


class Side:
    """One endpoint: a transaction layer, its dialogs, and where it lives."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.layer = TransactionLayer()
        self.dialogs = Dialogs()


def carry(outputs: list[Output], sender: Side, receiver: Side, now: float) -> list[Output]:
    """Deliver ``sender``'s Transmits to ``receiver``; what the receiver's layer says back."""
    result: list[Output] = []
    for output in outputs:
        if isinstance(output, Transmit):
            assert output.destination == receiver.peer
            result += receiver.layer.receive(parse_message(output.data), sender.peer, now)
    return result


def only(outputs: list[Output], kind: type[T]) -> list[T]:
    return [o for o in outputs if isinstance(o, kind)]


def settle(*sides: Side, until: float) -> None:
    for side in sides:
        while (deadline := side.layer.next_deadline()) is not None and deadline <= until:
            side.layer.advance(deadline)


def invite_to_agent() -> Request:
    return new_request(
        "INVITE",
        uri=parse_uri("sip:agent17@10.0.0.17"),
        from_address=NameAddress(uri=parse_uri("sip:queue-support@centre.example")),
        to_address=NameAddress(uri=parse_uri("sip:agent17@centre.example")),
        via=Via(transport="UDP", host="198.51.100.1", port=5060, params=Params([("rport", None)])),
        contact=IVR_CONTACT,
    )


def ring(ivr: Side, phone: Side, invite: Request) -> tuple[Dialog, RequestReceived]:
    """The IVR offers a call to the agent's phone, which rings."""
    at_phone = carry(ivr.layer.request(invite, PHONE, 0.0), ivr, phone, 0.01)
    [arrival] = only(at_phone, RequestReceived)
    trying = carry(at_phone, phone, ivr, 0.02)
    assert [r.response.status for r in only(trying, ResponseReceived)] == [100]

    phone_dialog = phone.dialogs.create_uas(arrival.request, contact=PHONE_CONTACT)
    ringing = phone_dialog.answer(arrival.request, 180, 0.5)
    at_ivr = carry(phone.layer.respond(arrival.key, ringing, 0.5), phone, ivr, 0.51)
    [provisional] = only(at_ivr, ResponseReceived)
    early = ivr.dialogs.apply_response(invite, provisional.response)
    assert early is not None and early.state.value == "early"
    return phone_dialog, arrival


def test_an_offered_call_is_answered_acknowledged_and_hung_up_leaving_nothing_behind() -> None:
    ivr, phone = Side(IVR), Side(PHONE)
    invite = invite_to_agent()
    phone_dialog, arrival = ring(ivr, phone, invite)
    ok = phone_dialog.answer(arrival.request, 200, 3.0)

    at_ivr = carry(phone.layer.respond(arrival.key, ok, 3.0), phone, ivr, 3.01)
    [answered] = only(at_ivr, ResponseReceived)
    ivr_dialog = ivr.dialogs.apply_response(invite, answered.response)
    assert ivr_dialog is not None and ivr_dialog.state.value == "confirmed"
    ack = ivr_dialog.ack(invite)
    at_phone = carry(ivr.layer.request(ack, ivr_dialog.destination(), 3.02), ivr, phone, 3.03)
    [acked] = only(at_phone, AckReceived)
    assert phone.dialogs.apply_request(acked.request, 3.03) is phone_dialog
    assert not phone_dialog.awaiting_ack

    bye = ivr_dialog.request("BYE")
    at_phone = carry(ivr.layer.request(bye, ivr_dialog.destination(), 60.0), ivr, phone, 60.01)
    [hangup] = only(at_phone, RequestReceived)
    assert phone.dialogs.apply_request(hangup.request, 60.01) is phone_dialog
    at_ivr = carry(
        phone.layer.respond(hangup.key, response_to(hangup.request, 200), 60.02), phone, ivr, 60.03
    )
    assert [r.response.status for r in only(at_ivr, ResponseReceived)] == [200]

    settle(ivr, phone, until=200.0)
    assert len(ivr.layer) == len(phone.layer) == 0
    assert len(ivr.dialogs) == len(phone.dialogs) == 0
    assert ivr.layer.next_deadline() is phone.layer.next_deadline() is None


def test_a_lost_2xx_is_recovered_by_the_phone_re_sending_it_and_the_same_ack() -> None:
    ivr, phone = Side(IVR), Side(PHONE)
    invite = invite_to_agent()
    phone_dialog, arrival = ring(ivr, phone, invite)
    ok = phone_dialog.answer(arrival.request, 200, 3.0)
    phone.layer.respond(arrival.key, ok, 3.0)  # lost on the way

    [again] = phone.dialogs.advance(3.5)
    assert isinstance(again, RetransmitAnswer)
    resent = phone.layer.respond(again.invite, again.response, 3.5)
    [answered] = only(carry(resent, phone, ivr, 3.51), ResponseReceived)
    ivr_dialog = ivr.dialogs.apply_response(invite, answered.response)
    assert ivr_dialog is not None
    ack = ivr_dialog.ack(invite)
    carry(ivr.layer.request(ack, ivr_dialog.destination(), 3.52), ivr, phone, 3.53)

    [acked] = only(phone.layer.receive(ack, IVR, 3.53), AckReceived)  # a duplicate ACK
    phone.dialogs.apply_request(acked.request, 3.53)
    assert not phone_dialog.awaiting_ack and phone.dialogs.next_deadline() is None


def test_a_call_cancelled_while_ringing_ends_with_487_and_its_ack() -> None:
    ivr, phone = Side(IVR), Side(PHONE)
    invite = invite_to_agent()
    phone_dialog, arrival = ring(ivr, phone, invite)
    key = client_key(invite)
    assert key is not None

    at_phone = carry(ivr.layer.cancel(key, 2.0), ivr, phone, 2.01)

    [cancel] = only(at_phone, RequestReceived)
    assert cancel.cancels == arrival.key
    cancelled = phone.layer.respond(cancel.key, response_to(cancel.request, 200), 2.02)
    terminated = phone_dialog.answer(arrival.request, 487, 2.02)
    cancelled += phone.layer.respond(arrival.key, terminated, 2.02)

    at_ivr = carry(cancelled, phone, ivr, 2.03)
    assert sorted(r.response.status for r in only(at_ivr, ResponseReceived)) == [200, 487]
    assert ivr.dialogs.apply_response(invite, terminated) is None  # the early dialog ends
    assert only(carry(at_ivr, ivr, phone, 2.04), AckReceived) == []  # absorbed by the INVITE

    settle(ivr, phone, until=100.0)
    assert len(ivr.layer) == len(phone.layer) == 0
    assert len(ivr.dialogs) == len(phone.dialogs) == 0
