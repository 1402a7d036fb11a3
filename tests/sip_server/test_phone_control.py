"""The desktop drives the agent's SIP phone: accept asks it to answer, hold re-INVITEs it.

Real server, real UDP: the caller and the agent's phone are ``UdpPhone``s;
the agent's desktop is the REST softphone API (``/v1/calls/{id}/accept``,
``hold``, ``unhold``, ``hangup``), as a browser would call it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from server.harness import Running, running, token

from ivr.media import PromptCache
from ivr.media.testing import FarEnd
from ivr.rtp.g711 import Codec
from ivr.sip import Request, Response
from sip_server.phone import UdpPhone, media_address, offer
from sip_server.test_calls import (
    AGENT_VOICE,
    CALLER_VOICE,
    bridged_call,
    call_in_state,
    centre_with_phone,
    connected_call_id,
    eventually,
    live_calls,
    payloads,
)

AUTO_ANSWER = ("Call-Info", "Alert-Info", "Answer-Mode")
# sales rings long enough for a desktop to accept in time; billing sends its
# unanswered calls back fast.
RINGING_CENTRE: dict[str, Any] = {
    "queues": [
        {"id": "sales", "ring_timeout_seconds": 30},
        {"id": "billing", "ring_timeout_seconds": 1.5},
    ],
    "agents": [{"id": "ann", "queues": ["sales", "billing"]}],
}


def sdp(port: int, direction: str = "sendrecv") -> bytes:
    return offer(port).replace("a=sendrecv", f"a={direction}").encode()


def asks_to_auto_answer(invite: Request) -> bool:
    return (
        "answer-after=0" in (invite.headers.get("Call-Info") or "")
        and "info=alert-autoanswer" in (invite.headers.get("Alert-Info") or "")
        and invite.headers.get("Answer-Mode") == "Auto"
    )


@asynccontextmanager
async def ringing_centre(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Running, UdpPhone, httpx.AsyncClient]]:
    """The server with ann ready, her phone registered, and her desktop (a REST client)."""
    async with running(database_url, tmp_path, RINGING_CENTRE, sip_port=0) as centre:
        creds = {"username": "ann", "password": "pa55word!"}
        assert (await centre.admin.put("/v1/agents/ann/sip", json=creds)).status_code == 200
        desk = centre.client(token("agent", "ann"))
        phone = await UdpPhone.open(centre.server.switchboard.port)
        try:
            assert (await phone.register("ann", "pa55word!")).status == 200
            await desk.post("/v1/agents/ann/login")
            assert (await desk.post("/v1/agents/ann/ready")).status_code == 200
            yield centre, phone, desk
        finally:
            phone.close()
            await desk.aclose()


async def accept_on_the_desktop(
    centre: Running, desk: httpx.AsyncClient, phone: UdpPhone, first: Request
) -> Request:
    """The phone rings with ``first``; the agent accepts on the desktop: the new INVITE."""
    phone.respond(first, 180)
    await eventually(call_in_state(centre, "offered"))
    call_id = (await live_calls(centre))[0]["id"]
    assert (await desk.post(f"/v1/calls/{call_id}/accept")).status_code == 200
    cancel = await phone.incoming("CANCEL")
    phone.respond(cancel, 200)
    phone.respond(first, 487)
    await phone.incoming("ACK")
    second = await phone.incoming("INVITE")
    assert second.call_id != first.call_id
    return second


async def test_accepted_on_the_desktop_the_phone_is_asked_to_answer_and_the_caller_is_bridged(
    database_url: str, tmp_path: Path
) -> None:
    async with ringing_centre(database_url, tmp_path) as (centre, phone, desk):
        caller = await UdpPhone.open(phone.server_port)
        caller_media, agent_media = await FarEnd.open(), await FarEnd.open()
        try:
            answer = await caller.call("sales", offer(caller_media.address[1]))
            assert answer.status == 200
            first = await phone.incoming("INVITE")
            assert not any(first.headers.get(name) for name in AUTO_ANSWER)  # an offer: ring
            second = await accept_on_the_desktop(centre, desk, phone, first)
            assert asks_to_auto_answer(second)
            await phone.answer(second, offer(agent_media.address[1]))  # as a phone that honours it
            to_caller_leg, to_agent_leg = media_address(answer), media_address(second)

            async def talked() -> bool:
                caller_media.send_audio(CALLER_VOICE, to_caller_leg)
                agent_media.send_audio(AGENT_VOICE, to_agent_leg)
                await asyncio.sleep(0.02)
                heard = payloads(agent_media), payloads(caller_media)
                return CALLER_VOICE in heard[0] and AGENT_VOICE in heard[1]

            await eventually(talked)
            assert [c["state"] for c in await live_calls(centre)] == ["connected"]
            assert (await caller.hang_up()).status == 200
            bye = await phone.incoming("BYE")
            phone.respond(bye, 200)
        finally:
            caller.close()
            caller_media.close()
            agent_media.close()


async def test_a_phone_that_refuses_the_call_after_a_desktop_accept_sends_the_caller_back(
    database_url: str, tmp_path: Path
) -> None:
    async with ringing_centre(database_url, tmp_path) as (centre, phone, desk):
        caller = await UdpPhone.open(phone.server_port)
        try:
            assert (await caller.call("sales", offer(40000))).status == 200
            first = await phone.incoming("INVITE")
            second = await accept_on_the_desktop(centre, desk, phone, first)
            phone.respond(second, 603)  # declined after all
            await phone.incoming("ACK")
            again = await phone.incoming("INVITE")  # back in the queue, offered afresh
            assert not asks_to_auto_answer(again)
            calls = await live_calls(centre)
            assert calls[0]["transfer_note"] == "the agent's phone did not answer"
            phone.respond(again, 486)
            assert (await caller.hang_up()).status == 200
        finally:
            caller.close()


async def test_a_phone_left_ringing_after_a_desktop_accept_is_cancelled_and_the_caller_requeued(
    database_url: str, tmp_path: Path
) -> None:
    async with ringing_centre(database_url, tmp_path) as (centre, phone, desk):
        caller = await UdpPhone.open(phone.server_port)
        try:
            assert (await caller.call("billing", offer(40000))).status == 200
            first = await phone.incoming("INVITE")
            second = await accept_on_the_desktop(centre, desk, phone, first)
            assert asks_to_auto_answer(second)
            phone.respond(second, 180)  # a phone set not to auto-answer: it just rings
            cancel = await phone.incoming("CANCEL")  # after billing's ring time
            phone.respond(cancel, 200)
            phone.respond(second, 487)
            await phone.incoming("ACK")
            again = await phone.incoming("INVITE")
            assert not asks_to_auto_answer(again)
            phone.respond(again, 486)
            assert (await caller.hang_up()).status == 200
        finally:
            caller.close()


async def test_a_hold_made_on_the_desktop_before_the_phone_answered_reaches_it_on_answer(
    database_url: str, tmp_path: Path
) -> None:
    async with ringing_centre(database_url, tmp_path) as (centre, phone, desk):
        caller = await UdpPhone.open(phone.server_port)
        agent_media = await FarEnd.open()
        try:
            assert (await caller.call("sales", offer(40000))).status == 200
            first = await phone.incoming("INVITE")
            second = await accept_on_the_desktop(centre, desk, phone, first)
            call_id = (await live_calls(centre))[0]["id"]
            assert (await desk.post(f"/v1/calls/{call_id}/hold")).status_code == 200
            await phone.answer(second, offer(agent_media.address[1]))
            hold = await phone.incoming("INVITE")
            assert hold.call_id == second.call_id and b"a=sendonly" in hold.body
            phone.respond(hold, 200, body=sdp(agent_media.address[1], "recvonly"))
            await phone.incoming("ACK")
            assert [c["state"] for c in await live_calls(centre)] == ["held"]
            assert (await caller.hang_up()).status == 200
        finally:
            caller.close()
            agent_media.close()


async def test_hold_from_the_desktop_re_invites_the_phone_sendonly_then_sendrecv(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, phone, agent_media):
        caller, caller_media, to_caller_leg, _ = await bridged_call(centre, phone, agent_media)
        desk = centre.client(token("agent", "ann"))
        try:
            call_id = await connected_call_id(centre)
            assert (await desk.post(f"/v1/calls/{call_id}/hold")).status_code == 200
            hold = await phone.incoming("INVITE")
            assert hold.to_address is not None and hold.to_address.tag  # in the call's dialog
            assert b"a=sendonly" in hold.body  # RFC 3264 §8.4
            phone.respond(hold, 200, body=sdp(agent_media.address[1], "recvonly"))
            ack = await phone.incoming("ACK")
            assert ack.cseq is not None and hold.cseq is not None
            assert ack.cseq.number == hold.cseq.number  # RFC 3261 §13.2.2.4
            music = set(PromptCache().frames("moh", Codec.PCMU))
            caller_media.packets.clear()
            await eventually(lambda: any(p in music for p in payloads(caller_media)))

            assert (await desk.post(f"/v1/calls/{call_id}/unhold")).status_code == 200
            resume = await phone.incoming("INVITE")
            assert b"a=sendrecv" in resume.body
            phone.respond(resume, 200, body=sdp(agent_media.address[1]))
            await phone.incoming("ACK")
            agent_media.packets.clear()

            async def talked() -> bool:
                caller_media.send_audio(CALLER_VOICE, to_caller_leg)
                await asyncio.sleep(0.02)
                return CALLER_VOICE in payloads(agent_media)

            await eventually(talked)
            assert (await caller.hang_up()).status == 200
        finally:
            await desk.aclose()
            caller.close()
            caller_media.close()


async def reinvite_from_phone(phone: UdpPhone, port: int, direction: str, cseq: int) -> Response:
    """The phone re-INVITEs with ``direction``; the server's final response (acknowledged)."""
    extra = f"Content-Type: application/sdp\r\nContact: <sip:agent@127.0.0.1:{phone.port}>\r\n"
    phone.send(phone._in_dialog("INVITE", cseq=cseq, body=sdp(port, direction), extra=extra))
    answer = await phone.receive()
    phone.send(phone._in_dialog("ACK", cseq=cseq))
    return answer


async def test_a_hold_made_on_the_phone_is_not_sent_back_to_it(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, phone, agent_media):
        caller, caller_media, _, _ = await bridged_call(centre, phone, agent_media)
        desk = centre.client(token("agent", "ann"))
        port = agent_media.address[1]
        try:
            await eventually(call_in_state(centre, "connected"))
            assert (await reinvite_from_phone(phone, port, "sendonly", 9100)).status == 200
            await eventually(call_in_state(centre, "held"))
            assert (await reinvite_from_phone(phone, port, "sendrecv", 9101)).status == 200
            await eventually(call_in_state(centre, "connected"))
            # Now from the desktop: the first re-INVITE the phone gets is this one.
            call_id = (await live_calls(centre))[0]["id"]
            assert (await desk.post(f"/v1/calls/{call_id}/hold")).status_code == 200
            hold = await phone.incoming("INVITE")
            assert b"a=sendonly" in hold.body
            assert hold.cseq is not None and hold.cseq.number == 2  # our first since the INVITE
            phone.respond(hold, 200, body=sdp(port, "recvonly"))
            await phone.incoming("ACK")
            assert (await caller.hang_up()).status == 200
        finally:
            await desk.aclose()
            caller.close()
            caller_media.close()


async def test_re_invites_that_cross_are_answered_491_and_ours_is_sent_again(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, phone, agent_media):
        caller, caller_media, _, _ = await bridged_call(centre, phone, agent_media)
        desk = centre.client(token("agent", "ann"))
        port = agent_media.address[1]
        try:
            call_id = await connected_call_id(centre)
            assert (await desk.post(f"/v1/calls/{call_id}/hold")).status_code == 200
            ours = await phone.incoming("INVITE")
            # The phone re-INVITEs before answering ours: glare, both ways (RFC 3261 §14).
            assert (await reinvite_from_phone(phone, port, "sendonly", 9100)).status == 491
            phone.respond(ours, 491)
            await phone.incoming("ACK")
            again = await phone.incoming("INVITE", timeout=8)  # after 2.1 to 4 s
            assert b"a=sendonly" in again.body
            assert again.cseq is not None and ours.cseq is not None
            assert again.cseq.number > ours.cseq.number
            phone.respond(again, 200, body=sdp(port, "recvonly"))
            await phone.incoming("ACK")
            assert [c["state"] for c in await live_calls(centre)] == ["held"]
            assert (await caller.hang_up()).status == 200
        finally:
            await desk.aclose()
            caller.close()
            caller_media.close()


async def test_a_phone_refusing_the_hold_keeps_the_call(database_url: str, tmp_path: Path) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, phone, agent_media):
        caller, caller_media, to_caller_leg, _ = await bridged_call(centre, phone, agent_media)
        desk = centre.client(token("agent", "ann"))
        try:
            call_id = await connected_call_id(centre)
            assert (await desk.post(f"/v1/calls/{call_id}/hold")).status_code == 200
            hold = await phone.incoming("INVITE")
            phone.respond(hold, 488)
            await phone.incoming("ACK")
            assert [c["state"] for c in await live_calls(centre)] == ["held"]  # the core's say
            assert (await desk.post(f"/v1/calls/{call_id}/unhold")).status_code == 200
            await eventually(call_in_state(centre, "connected"))
            agent_media.packets.clear()

            async def talked() -> bool:
                caller_media.send_audio(CALLER_VOICE, to_caller_leg)
                await asyncio.sleep(0.02)
                return CALLER_VOICE in payloads(agent_media)

            await eventually(talked)  # the call went on
            assert (await caller.hang_up()).status == 200
            bye = await phone.incoming("BYE")  # and no re-INVITE came for the unhold
            phone.respond(bye, 200)
        finally:
            await desk.aclose()
            caller.close()
            caller_media.close()


async def test_hanging_up_on_the_desktop_sends_bye_to_the_caller_and_the_phone(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, phone, agent_media):
        caller, caller_media, _, _ = await bridged_call(centre, phone, agent_media)
        desk = centre.client(token("agent", "ann"))
        try:
            call_id = await connected_call_id(centre)
            assert (await desk.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
            caller.respond(await caller.incoming("BYE"), 200)
            phone.respond(await phone.incoming("BYE"), 200)

            async def ended() -> bool:
                return await live_calls(centre) == []

            await eventually(ended)
            assert centre.server.switchboard.calls.callers() == []
        finally:
            await desk.aclose()
            caller.close()
            caller_media.close()


async def test_ring_no_answer_and_a_603_each_give_the_offer_back_and_it_is_made_again(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, phone, _):
        caller = await UdpPhone.open(phone.server_port)
        try:
            assert (await caller.call("support", offer(40000))).status == 200
            rung = await phone.incoming("INVITE")
            phone.respond(rung, 180)
            cancel = await phone.incoming("CANCEL")  # support's 0.5 s ring timeout
            phone.respond(cancel, 200)
            phone.respond(rung, 487)
            await phone.incoming("ACK")
            declined = await phone.incoming("INVITE")  # offered again
            assert declined.call_id != rung.call_id
            phone.respond(declined, 603)
            await phone.incoming("ACK")
            third = await phone.incoming("INVITE")
            assert third.call_id not in (rung.call_id, declined.call_id)
            assert [c["state"] for c in await live_calls(centre)] == ["offered"]
            phone.respond(third, 486)
            assert (await caller.hang_up()).status == 200
        finally:
            caller.close()
