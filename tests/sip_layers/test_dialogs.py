"""Dialogs (RFC 3261 §12), the ACK for a 2xx and its retransmission (§13), on a numeric clock."""

from __future__ import annotations

import pytest

from ivr.sip.dialogs import (
    AnswerUnacknowledged,
    Dialog,
    Dialogs,
    DialogState,
    RetransmitAnswer,
    new_request,
)
from ivr.sip.fields import NameAddress, Via
from ivr.sip.message import Request, Response, parse_message, response_to
from ivr.sip.transactions import InvalidTransition, Peer
from ivr.sip.uri import SipUri, parse_uri

OUR_CONTACT = NameAddress(uri=parse_uri("sip:ivr@198.51.100.1:5060"))
CALLER_CONTACT = "sip:alice@192.0.2.10:5062"


def incoming_invite(
    *,
    record_route: str = "<sip:p2.example;lr>, <sip:p1.example;lr>",
    cseq: int = 101,
    method: str = "INVITE",
    to_tag: str | None = None,
    contact: str = CALLER_CONTACT,
    branch: str = "z9hG4bKin",
) -> Request:
    to = "<sip:support@centre.example>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} sip:support@198.51.100.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP p2.example;branch={branch}\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKcaller{cseq}\r\n"
        "Max-Forwards: 68\r\n"
        + (f"Record-Route: {record_route}\r\n" if record_route else "")
        + 'From: "Alice" <sip:alice@example.com>;tag=alice1\r\n'
        f"To: {to}\r\n"
        "Call-ID: in-1@192.0.2.10\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Contact: <{contact}>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def outgoing_invite() -> Request:
    return new_request(
        "INVITE",
        uri=parse_uri("sip:agent17@centre.example"),
        from_address=NameAddress(uri=parse_uri("sip:ivr@centre.example"), display_name="IVR"),
        to_address=NameAddress(uri=parse_uri("sip:agent17@centre.example")),
        via=Via(transport="UDP", host="198.51.100.1", port=5060),
        contact=OUR_CONTACT,
        cseq=20,
    )


def reply(
    request: Request,
    status: int,
    *,
    tag: str | None = "phone1",
    contact: str | None = "sip:agent17@10.0.0.17:5060",
    record_route: str | None = None,
) -> Response:
    headers = []
    if contact is not None:
        headers.append(("Contact", f"<{contact}>"))
    if record_route is not None:
        headers.append(("Record-Route", record_route))
    response = parse_message(bytes(response_to(request, status, to_tag=tag, headers=headers)))
    assert isinstance(response, Response)
    return response


def uas_dialog(dialogs: Dialogs, invite: Request | None = None) -> Dialog:
    return dialogs.create_uas(invite or incoming_invite(), contact=OUR_CONTACT, local_tag="ivr1")


def in_dialog(
    method: str, cseq: int, *, to_tag: str = "ivr1", contact: str | None = None
) -> Request:
    request = incoming_invite(method=method, cseq=cseq, to_tag=to_tag, record_route="")
    if contact is None and method != "INVITE":
        request.headers.remove("Contact")
    elif contact is not None:
        request.headers.replace("Contact", f"<{contact}>")
    return request


def fire_until(dialogs: Dialogs, end: float) -> list[tuple[float, object]]:
    timeline: list[tuple[float, object]] = []
    while (deadline := dialogs.next_deadline()) is not None and deadline <= end:
        timeline += [(deadline, output) for output in dialogs.advance(deadline)]
    return timeline


# -- the UAS side ------------------------------------------------------------------


def test_a_uas_dialog_takes_its_target_route_set_and_remote_cseq_from_the_invite() -> None:
    dialog = uas_dialog(Dialogs())

    assert dialog.state is DialogState.EARLY
    assert (dialog.id.call_id, dialog.id.local_tag, dialog.id.remote_tag) == (
        "in-1@192.0.2.10",
        "ivr1",
        "alice1",
    )
    assert str(dialog.remote_target) == CALLER_CONTACT
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p2.example;lr", "sip:p1.example;lr"]
    assert dialog.remote_seq == 101 and dialog.local_seq is None


def test_the_answer_carries_our_tag_our_contact_and_the_record_route() -> None:
    dialogs = Dialogs()
    invite = incoming_invite()
    dialog = uas_dialog(dialogs, invite)

    ringing = dialog.answer(invite, 180, 0.0)
    ok = dialog.answer(
        invite, 200, 1.0, body=b"v=0\r\n", headers=[("Content-Type", "application/sdp")]
    )

    for response in (ringing, ok):
        assert response.to_address is not None and response.to_address.tag == "ivr1"
        assert response.headers.contacts() == (OUR_CONTACT,)
        assert response.headers.get_all("Record-Route") == invite.headers.get_all("Record-Route")
    assert dialog.state is DialogState.CONFIRMED
    assert ok.body == b"v=0\r\n"


def test_a_bye_from_the_uas_has_the_route_set_the_tags_and_the_first_cseq() -> None:
    dialogs = Dialogs()
    invite = incoming_invite()
    dialog = uas_dialog(dialogs, invite)
    dialog.answer(invite, 200, 0.0)

    bye = dialog.request("BYE")

    assert str(bye.uri) == CALLER_CONTACT  # the remote target: the routes are loose
    assert bye.headers.get_all("Route") == ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
    assert bye.headers.get("CSeq") == "1 BYE"
    assert bye.from_address is not None and bye.from_address.tag == "ivr1"
    assert bye.to_address is not None and bye.to_address.tag == "alice1"
    assert bye.headers.get("Call-ID") == "in-1@192.0.2.10"
    assert bye.headers.get("Max-Forwards") == "70"
    assert bye.top_via is not None and bye.top_via.is_rfc3261_branch
    assert bye.top_via.host == "198.51.100.1" and bye.top_via.port == 5060
    assert "Contact" not in bye.headers
    assert dialog.state is DialogState.TERMINATED and len(dialogs) == 0
    assert dialog.destination() == Peer(host="p2.example", port=5060)


def test_each_request_in_a_dialog_takes_the_next_cseq_and_a_fresh_branch() -> None:
    dialogs = Dialogs()
    invite = incoming_invite()
    dialog = uas_dialog(dialogs, invite)
    dialog.answer(invite, 200, 0.0)

    info = dialog.request("INFO", headers=[("Content-Type", "application/dtmf-relay")])
    refer = dialog.request("REFER", headers=[("Refer-To", "<sip:backup@site2.example>")])

    assert [info.headers.get("CSeq"), refer.headers.get("CSeq")] == ["1 INFO", "2 REFER"]
    assert info.top_via != refer.top_via
    assert refer.headers.contacts() == (OUR_CONTACT,)  # a target refresh carries Contact


def test_an_out_of_order_request_is_refused_with_500() -> None:
    dialogs = Dialogs()
    invite = incoming_invite()
    uas_dialog(dialogs, invite).answer(invite, 200, 0.0)
    assert isinstance(dialogs.apply_request(in_dialog("INFO", 103), 1.0), Dialog)

    refusal = dialogs.apply_request(in_dialog("INFO", 102), 2.0)

    assert isinstance(refusal, Response) and refusal.status == 500


def test_a_request_for_a_dialog_we_do_not_know_is_refused_with_481() -> None:
    dialogs = Dialogs()
    uas_dialog(dialogs)

    refusal = dialogs.apply_request(in_dialog("BYE", 102, to_tag="someone-else"), 1.0)
    stray_ack = dialogs.apply_request(in_dialog("ACK", 101, to_tag="someone-else"), 1.0)

    assert isinstance(refusal, Response) and refusal.status == 481
    assert stray_ack is None


def test_a_request_without_a_to_tag_is_outside_any_dialog() -> None:
    assert Dialogs().apply_request(incoming_invite(), 0.0) is None


def test_a_re_invite_moves_the_remote_target() -> None:
    dialogs = Dialogs()
    invite = incoming_invite()
    dialog = uas_dialog(dialogs, invite)
    dialog.answer(invite, 200, 0.0)
    dialogs.apply_request(in_dialog("ACK", 101), 0.1)

    reinvite = in_dialog("INVITE", 102, contact="sip:alice@192.0.2.77:5062")
    assert dialogs.apply_request(reinvite, 5.0) is dialog

    assert str(dialog.remote_target) == "sip:alice@192.0.2.77:5062"
    assert dialog.remote_seq == 102


def test_a_bye_received_ends_the_dialog() -> None:
    dialogs = Dialogs()
    invite = incoming_invite()
    dialog = uas_dialog(dialogs, invite)
    dialog.answer(invite, 200, 0.0)

    assert dialogs.apply_request(in_dialog("BYE", 102), 3.0) is dialog
    assert dialog.state is DialogState.TERMINATED and len(dialogs) == 0
    assert dialogs.next_deadline() is None  # the unacknowledged 2xx is no longer re-sent


def test_a_refused_invite_ends_the_early_dialog() -> None:
    dialogs = Dialogs()
    invite = incoming_invite()
    dialog = uas_dialog(dialogs, invite)

    busy = dialog.answer(invite, 486, 0.0)

    assert "Contact" not in busy.headers
    assert dialog.state is DialogState.TERMINATED and len(dialogs) == 0


def test_the_callee_may_not_hang_up_an_early_dialog_with_bye() -> None:
    dialog = uas_dialog(Dialogs())
    with pytest.raises(InvalidTransition):
        dialog.request("BYE")


# -- the 2xx and its ACK (§13.3.1.4) ----------------------------------------------------


def test_the_2xx_is_re_sent_doubling_up_to_t2_until_the_ack() -> None:
    dialogs = Dialogs()
    invite = incoming_invite()
    dialog = uas_dialog(dialogs, invite)
    ok = dialog.answer(invite, 200, 0.0)

    timeline = fire_until(dialogs, 12.0)
    dialogs.apply_request(in_dialog("ACK", 101), 12.5)

    assert [t for t, _ in timeline] == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert all(
        o == RetransmitAnswer(dialog=dialog.id, invite=invite, response=ok) for _, o in timeline
    )
    assert not dialog.awaiting_ack and dialogs.next_deadline() is None


def test_a_2xx_never_acknowledged_is_given_up_with_a_bye_after_64_t1() -> None:
    dialogs = Dialogs()
    invite = incoming_invite()
    dialog = uas_dialog(dialogs, invite)
    dialog.answer(invite, 200, 0.0)

    timeline = fire_until(dialogs, 60.0)

    last_time, last = timeline[-1]
    assert [t for t, _ in timeline[:-1]][-1] == 31.5
    assert last_time == 32.0 and isinstance(last, AnswerUnacknowledged)
    assert last.bye.method == "BYE" and last.bye.headers.get("CSeq") == "1 BYE"
    assert len(dialogs) == 0 and dialogs.next_deadline() is None


def test_a_late_ack_for_an_older_invite_does_not_stop_the_retransmissions() -> None:
    dialogs = Dialogs()
    invite = incoming_invite()
    dialog = uas_dialog(dialogs, invite)
    dialog.answer(invite, 200, 0.0)
    dialogs.apply_request(in_dialog("ACK", 101), 0.1)
    reinvite = in_dialog("INVITE", 102)
    dialogs.apply_request(reinvite, 10.0)
    dialog.answer(reinvite, 200, 10.0)

    dialogs.apply_request(in_dialog("ACK", 101), 10.2)  # a straggler from the first

    assert dialog.awaiting_ack
    dialogs.apply_request(in_dialog("ACK", 102), 10.3)
    assert not dialog.awaiting_ack


# -- the UAC side ------------------------------------------------------------------


def test_a_2xx_creates_a_uac_dialog_with_the_record_route_reversed() -> None:
    dialogs = Dialogs()
    invite = outgoing_invite()
    ok = reply(invite, 200, record_route="<sip:p2.example;lr>, <sip:p1.example;lr>")

    dialog = dialogs.apply_response(invite, ok)

    assert isinstance(dialog, Dialog) and dialog.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1.example;lr", "sip:p2.example;lr"]
    assert str(dialog.remote_target) == "sip:agent17@10.0.0.17:5060"
    assert dialog.local_seq == 20 and dialog.remote_seq is None


def test_a_bye_from_the_uac_increments_the_invite_cseq_and_follows_the_routes() -> None:
    dialogs = Dialogs()
    invite = outgoing_invite()
    dialog = dialogs.apply_response(
        invite, reply(invite, 200, record_route="<sip:p2.example;lr>, <sip:p1.example;lr>")
    )
    assert dialog is not None

    bye = dialog.request("BYE")

    assert bye.headers.get("CSeq") == "21 BYE"
    assert str(bye.uri) == "sip:agent17@10.0.0.17:5060"
    assert bye.headers.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert bye.from_address == invite.from_address  # our tag
    assert bye.to_address is not None and bye.to_address.tag == "phone1"


def test_a_strict_router_goes_in_the_request_uri_and_the_target_last_in_route() -> None:
    dialogs = Dialogs()
    invite = outgoing_invite()
    dialog = dialogs.apply_response(
        invite, reply(invite, 200, record_route="<sip:p2.example;lr>, <sip:strict.example>")
    )
    assert dialog is not None

    info = dialog.request("INFO")

    assert str(info.uri) == "sip:strict.example"
    assert info.headers.get_all("Route") == [
        "<sip:p2.example;lr>",
        "<sip:agent17@10.0.0.17:5060>",
    ]


def test_the_ack_for_a_2xx_is_a_new_request_with_the_invite_cseq_and_a_fresh_branch() -> None:
    dialogs = Dialogs()
    invite = outgoing_invite()
    dialog = dialogs.apply_response(invite, reply(invite, 200))
    assert dialog is not None and invite.top_via is not None

    ack = dialog.ack(invite)

    assert ack.method == "ACK" and ack.headers.get("CSeq") == "20 ACK"
    assert ack.top_via is not None and ack.top_via.branch != invite.top_via.branch
    assert str(ack.uri) == "sip:agent17@10.0.0.17:5060"
    assert dialog.ack(invite) is ack  # the same ACK for each copy of the 2xx
    assert dialog.local_seq == 20  # an ACK takes no new CSeq


def test_a_provisional_response_with_a_tag_makes_an_early_dialog_that_the_2xx_confirms() -> None:
    dialogs = Dialogs()
    invite = outgoing_invite()
    early = dialogs.apply_response(
        invite, reply(invite, 180, record_route="<sip:early.example;lr>")
    )
    assert early is not None and early.state is DialogState.EARLY

    ok = reply(
        invite,
        200,
        contact="sip:agent17@10.0.0.18:5060",
        record_route="<sip:p2.example;lr>, <sip:p1.example;lr>",
    )
    confirmed = dialogs.apply_response(invite, ok)

    assert confirmed is early and confirmed.state is DialogState.CONFIRMED
    assert [str(r.uri) for r in confirmed.route_set] == [
        "sip:p1.example;lr",
        "sip:p2.example;lr",
    ]
    assert str(confirmed.remote_target) == "sip:agent17@10.0.0.18:5060"


def test_a_100_or_an_untagged_provisional_response_makes_no_dialog() -> None:
    dialogs = Dialogs()
    invite = outgoing_invite()

    assert dialogs.apply_response(invite, reply(invite, 100, tag=None)) is None
    assert dialogs.apply_response(invite, reply(invite, 180, tag=None)) is None
    assert len(dialogs) == 0


def test_a_failure_ends_every_early_dialog_of_the_invite() -> None:
    dialogs = Dialogs()
    invite = outgoing_invite()
    dialogs.apply_response(invite, reply(invite, 180, tag="fork1"))
    dialogs.apply_response(invite, reply(invite, 183, tag="fork2"))
    assert len(dialogs) == 2

    assert dialogs.apply_response(invite, reply(invite, 486, tag="fork1")) is None
    assert len(dialogs) == 0


def test_a_481_to_a_request_in_the_dialog_ends_it() -> None:
    dialogs = Dialogs()
    invite = outgoing_invite()
    dialog = dialogs.apply_response(invite, reply(invite, 200))
    assert dialog is not None
    info = dialog.request("INFO")

    assert dialogs.apply_response(info, reply(info, 481, tag=None, contact=None)) is dialog
    assert dialog.state is DialogState.TERMINATED and len(dialogs) == 0


# -- building requests from scratch -----------------------------------------------------


def test_a_new_invite_has_every_mandatory_field_and_survives_the_wire() -> None:
    invite = outgoing_invite()

    parsed = parse_message(bytes(invite))

    assert parsed == invite
    assert invite.from_address is not None and invite.from_address.tag
    assert invite.to_address is not None and invite.to_address.tag is None
    assert invite.headers.get("Max-Forwards") == "70"
    assert invite.headers.get("CSeq") == "20 INVITE"
    assert invite.call_id and invite.call_id.endswith("@198.51.100.1")
    assert invite.top_via is not None and invite.top_via.is_rfc3261_branch
    assert invite.headers.contacts() == (OUR_CONTACT,)
    assert isinstance(invite.uri, SipUri)


def test_two_new_requests_never_share_a_tag_call_id_or_branch() -> None:
    a, b = outgoing_invite(), outgoing_invite()

    assert a.call_id != b.call_id
    assert a.from_address != b.from_address
    assert a.top_via != b.top_via


def test_an_invite_without_a_contact_is_refused() -> None:
    with pytest.raises(ValueError, match="Contact"):
        new_request(
            "INVITE",
            uri=parse_uri("sip:agent17@centre.example"),
            from_address=NameAddress(uri=parse_uri("sip:ivr@centre.example")),
            to_address=NameAddress(uri=parse_uri("sip:agent17@centre.example")),
            via=Via(transport="UDP", host="198.51.100.1", port=5060),
        )


def test_a_late_copy_of_the_2xx_does_not_revive_a_dialog_that_has_ended() -> None:
    dialogs = Dialogs()
    invite = outgoing_invite()
    ok = reply(invite, 200)
    dialog = dialogs.apply_response(invite, ok)
    assert dialog is not None
    dialog.ack(invite)
    dialog.request("BYE")

    assert dialogs.apply_response(invite, ok) is None
    assert len(dialogs) == 0
    assert dialog.ack(invite).method == "ACK"  # the TU still ACKs it with the dialog it holds
