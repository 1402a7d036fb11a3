"""Calls over SIP in the running server: callers answered, queued, rung through to agents' phones.

Real server, real UDP: the callers and the agents' phones are ``UdpPhone``s
with ``FarEnd`` RTP sockets, and media is checked by payload.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from server.harness import Running, running, token

from acd.ids import Language
from ivr.announcements import announcement_prompts
from ivr.media import PromptCache
from ivr.media.testing import FarEnd
from ivr.rtp.g711 import Codec
from ivr.sip import Response
from sip_server.phone import UdpPhone, media_address, offer

DEMO_IVR = Path(__file__).parents[2] / "ivr" / "demo_ivr.yaml"
CENTRE: dict[str, Any] = {
    "queues": [
        {"id": "sales", "announce_every_seconds": 0.3},
        {"id": "support", "ring_timeout_seconds": 0.5},
        {"id": "billing"},
    ],
    "agents": [{"id": "ann", "queues": ["sales", "support", "billing"]}],
}
CALLER_VOICE = bytes([0x55]) * 160
AGENT_VOICE = bytes([0x66]) * 160


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check() if asyncio.iscoroutinefunction(check) else not check():
            await asyncio.sleep(0.02)


async def live_calls(centre: Running) -> list[dict[str, Any]]:
    return list((await centre.admin.get("/v1/calls")).json())


def call_in_state(centre: Running, state: str) -> Callable[[], Awaitable[bool]]:
    """For ``eventually``: whether the one live call is in ``state``."""

    async def check() -> bool:
        calls = await live_calls(centre)
        return bool(calls and calls[0]["state"] == state)

    return check


async def connected_call_id(centre: Running) -> str:
    """The id of the one live call, once it is connected."""
    await eventually(call_in_state(centre, "connected"))
    return str((await live_calls(centre))[0]["id"])


@asynccontextmanager
async def centre_with_phone(
    database_url: str, tmp_path: Path, *, ready: bool = True, **settings: Any
) -> AsyncIterator[tuple[Running, UdpPhone, FarEnd]]:
    """The server with ann logged in (ready or not) and her phone registered."""
    async with running(database_url, tmp_path, CENTRE, sip_port=0, **settings) as centre:
        creds = {"username": "ann", "password": "pa55word!"}
        assert (await centre.admin.put("/v1/agents/ann/sip", json=creds)).status_code == 200
        ann = centre.client(token("agent", "ann"))
        await ann.post("/v1/agents/ann/login")
        phone = await UdpPhone.open(centre.server.switchboard.port)
        assert (await phone.register("ann", "pa55word!")).status == 200
        if ready:
            assert (await ann.post("/v1/agents/ann/ready")).status_code == 200
        media = await FarEnd.open(ssrc=0xA6E47)
        try:
            yield centre, phone, media
        finally:
            media.close()
            phone.close()
            await ann.aclose()


def payloads(far_end: FarEnd) -> list[bytes]:
    return [packet.payload for packet in far_end.packets]


async def bridged_call(
    centre: Running, agent_phone: UdpPhone, agent_media: FarEnd
) -> tuple[UdpPhone, FarEnd, tuple[str, int], tuple[str, int]]:
    """A caller dials sales, the agent's phone answers: both legs up."""
    caller = await UdpPhone.open(centre.server.switchboard.port)
    caller_media = await FarEnd.open()
    answer = await caller.call("sales", offer(caller_media.address[1]))
    assert answer.status == 200
    to_caller_leg = media_address(answer)
    invite = await agent_phone.incoming("INVITE")
    to_agent_leg = media_address(invite)
    music = set(PromptCache().frames("moh", Codec.PCMU))
    await eventually(lambda: any(p in music for p in payloads(caller_media)))  # while it rings
    await agent_phone.answer(invite, offer(agent_media.address[1]))
    return caller, caller_media, to_caller_leg, to_agent_leg


def media_counts(metrics: str) -> dict[str, float]:
    """The RTP lateness histograms' counts, from a /metrics scrape."""
    counts = {}
    for line in metrics.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("acd_rtp_") and name.endswith("_count"):
            counts[name] = float(value)
    return counts


async def test_a_caller_dialling_a_queue_hears_music_then_talks_with_the_agents_phone(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, agent_phone, agent_media):
        caller, caller_media, to_caller_leg, to_agent_leg = await bridged_call(
            centre, agent_phone, agent_media
        )
        try:

            async def talked() -> bool:
                caller_media.send_audio(CALLER_VOICE, to_caller_leg)
                agent_media.send_audio(AGENT_VOICE, to_agent_leg)
                await asyncio.sleep(0.02)
                return CALLER_VOICE in payloads(agent_media) and AGENT_VOICE in payloads(
                    caller_media
                )

            await eventually(talked)
            calls = await live_calls(centre)
            assert [c["state"] for c in calls] == ["connected"]
            timing = media_counts((await centre.admin.get("/metrics")).text)
            assert timing["acd_rtp_paced_lateness_seconds_count"] > 0  # the music on hold
            assert timing["acd_rtp_relayed_lateness_seconds_count"] > 0  # the voices

            assert (await caller.hang_up()).status == 200
            bye = await agent_phone.incoming("BYE")
            agent_phone.respond(bye, 200)

            async def ended() -> bool:
                return await live_calls(centre) == []

            await eventually(ended)
        finally:
            caller.close()
            caller_media.close()


async def test_the_agent_hanging_up_ends_the_call_and_the_caller_gets_a_bye(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, agent_phone, agent_media):
        caller, caller_media, _, _ = await bridged_call(centre, agent_phone, agent_media)
        try:

            async def connected() -> bool:
                return [c["state"] for c in await live_calls(centre)] == ["connected"]

            await eventually(connected)
            assert (await agent_phone.hang_up()).status == 200
            bye = await caller.incoming("BYE")
            caller.respond(bye, 200)

            async def ended() -> bool:
                return await live_calls(centre) == []

            await eventually(ended)
            assert centre.server.switchboard.calls.callers() == []
        finally:
            caller.close()
            caller_media.close()


async def test_a_caller_behind_two_others_is_told_they_are_caller_number_three(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path, ready=False) as (centre, _, _):
        for ani in ("5550001", "5550002"):  # two callers injected ahead, no agent ready
            body = {"queue": "sales", "ani": ani}
            assert (await centre.admin.post("/v1/calls", json=body)).status_code == 201
        caller = await UdpPhone.open(centre.server.switchboard.port)
        caller_media = await FarEnd.open()
        try:
            assert (await caller.call("sales", offer(caller_media.address[1]))).status == 200
            third = announcement_prompts(
                Language("en"), position=3, ewt_seconds=None, offer_callback=False
            )
            calls = centre.server.switchboard.calls
            await eventually(lambda: any(third in leg.played for leg in calls.callers()))
            assert (await caller.hang_up()).status == 200
        finally:
            caller.close()
            caller_media.close()


async def test_a_phone_left_ringing_is_cancelled_when_the_core_retracts_the_offer(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, agent_phone, _):
        caller = await UdpPhone.open(centre.server.switchboard.port)
        caller_media = await FarEnd.open()
        try:
            assert (await caller.call("support", offer(caller_media.address[1]))).status == 200
            invite = await agent_phone.incoming("INVITE")
            agent_phone.respond(invite, 180)
            cancel = await agent_phone.incoming("CANCEL")  # the 0.5 s ring timeout passed
            agent_phone.respond(cancel, 200)
            agent_phone.respond(invite, 487)
            await agent_phone.incoming("ACK")
            assert (await caller.hang_up()).status == 200
        finally:
            caller.close()
            caller_media.close()


async def test_a_phone_that_declines_rejects_the_offer_and_the_call_is_offered_again(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, agent_phone, _):
        caller = await UdpPhone.open(centre.server.switchboard.port)
        caller_media = await FarEnd.open()
        try:
            assert (await caller.call("sales", offer(caller_media.address[1]))).status == 200
            invite = await agent_phone.incoming("INVITE")
            agent_phone.respond(invite, 486)
            await agent_phone.incoming("ACK")
            again = await agent_phone.incoming("INVITE")  # rejected: back to its place, re-offered
            assert again.call_id != invite.call_id
            agent_phone.respond(again, 486)
            assert (await caller.hang_up()).status == 200
        finally:
            caller.close()
            caller_media.close()


async def test_key_presses_sent_as_sip_info_drive_the_ivr_too(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path, ready=False, ivr_flow=DEMO_IVR) as (
        centre,
        _,
        _,
    ):
        caller = await UdpPhone.open(centre.server.switchboard.port)
        caller_media = await FarEnd.open()
        try:
            assert (await caller.call("100", offer(caller_media.address[1]))).status == 200
            for digit in "12":
                caller.press_info(digit)
                assert (await caller.receive()).status == 200

            async def in_support() -> bool:
                return [c["queue_id"] for c in await live_calls(centre)] == ["support"]

            await eventually(in_support, timeout=8)
        finally:
            caller.close()
            caller_media.close()


async def test_a_caller_through_the_demo_ivr_pressing_1_then_2_waits_in_support(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path, ready=False, ivr_flow=DEMO_IVR) as (
        centre,
        _,
        _,
    ):
        caller = await UdpPhone.open(centre.server.switchboard.port)
        caller_media = await FarEnd.open()
        try:
            answer = await caller.call("100", offer(caller_media.address[1]))
            assert answer.status == 200
            to_leg = media_address(answer)
            await eventually(lambda: len(caller_media.datagrams) > 0)  # the welcome plays
            caller_media.press("1", to_leg)  # English
            await asyncio.sleep(0.1)
            caller_media.press("2", to_leg)  # support

            async def in_support() -> bool:
                return [c["queue_id"] for c in await live_calls(centre)] == ["support"]

            await eventually(in_support, timeout=8)
            leg = centre.server.switchboard.calls.callers()[0]
            assert ("en/transferring",) in leg.played
        finally:
            caller.close()
            caller_media.close()


async def test_an_invite_sent_three_times_makes_one_call(database_url: str, tmp_path: Path) -> None:
    async with centre_with_phone(database_url, tmp_path, ready=False) as (centre, _, _):
        caller = await UdpPhone.open(centre.server.switchboard.port)
        caller_media = await FarEnd.open()
        try:
            text = caller.invite_text("sales", offer(caller_media.address[1]))
            for _ in range(3):
                caller.send(text)
            assert (await caller.receive()).status == 200

            async def one_call() -> bool:
                return len(await live_calls(centre)) == 1

            await eventually(one_call)
            await asyncio.sleep(0.2)  # time for any duplicate to have shown
            assert len(await live_calls(centre)) == 1
        finally:
            caller.close()
            caller_media.close()


async def test_an_offer_without_g711_is_refused_488_and_an_unknown_number_404(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE, sip_port=0) as centre:
        caller = await UdpPhone.open(centre.server.switchboard.port)
        try:
            refused = await caller.call("sales", offer(40000, "18"))  # G.729 only
            assert refused.status == 488
            assert (await caller.call("nobody", offer(40000))).status == 404
            assert await live_calls(centre) == []
        finally:
            caller.close()


async def test_the_agents_phone_puts_the_caller_on_hold_and_back_by_re_invite(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, agent_phone, agent_media):
        caller, caller_media, to_caller_leg, _ = await bridged_call(
            centre, agent_phone, agent_media
        )
        try:

            async def reinvite(direction: str, cseq: int) -> Response:
                sdp = offer(agent_media.address[1]).replace("a=sendrecv", f"a={direction}")
                extra = (
                    "Content-Type: application/sdp\r\n"
                    f"Contact: <sip:agent@127.0.0.1:{agent_phone.port}>\r\n"
                )
                agent_phone.send(
                    agent_phone._in_dialog("INVITE", cseq=cseq, body=sdp.encode(), extra=extra)
                )
                answer = await agent_phone.receive()
                agent_phone.send(agent_phone._in_dialog("ACK", cseq=cseq))
                return answer

            on_hold, talking = call_in_state(centre, "held"), call_in_state(centre, "connected")
            await eventually(talking)  # bridged: the core has connected the call
            held = await reinvite("sendonly", 9100)
            assert held.status == 200 and b"a=recvonly" in held.body  # RFC 3264 §6.1
            await eventually(on_hold)
            music = set(PromptCache().frames("moh", Codec.PCMU))
            caller_media.packets.clear()
            await eventually(lambda: any(p in music for p in payloads(caller_media)))

            back = await reinvite("sendrecv", 9101)
            assert back.status == 200
            await eventually(talking)
            agent_media.packets.clear()

            async def talked() -> bool:
                caller_media.send_audio(CALLER_VOICE, to_caller_leg)
                await asyncio.sleep(0.02)
                return CALLER_VOICE in payloads(agent_media)

            await eventually(talked)
            assert (await caller.hang_up()).status == 200
        finally:
            caller.close()
            caller_media.close()


async def test_calls_still_up_when_the_server_stops_are_hung_up(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, agent_phone, agent_media):
        caller, caller_media, _, _ = await bridged_call(centre, agent_phone, agent_media)
        try:
            await eventually(call_in_state(centre, "connected"))
            await centre.stop()  # the server goes away with the call up
            assert (await caller.incoming("BYE")).method == "BYE"
            assert (await agent_phone.incoming("BYE")).method == "BYE"
        finally:
            caller.close()
            caller_media.close()


async def test_hold_from_the_desktop_plays_music_to_the_caller_until_unhold(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_phone(database_url, tmp_path) as (centre, agent_phone, agent_media):
        caller, caller_media, to_caller_leg, _ = await bridged_call(
            centre, agent_phone, agent_media
        )
        ann = centre.client(token("agent", "ann"))
        try:
            call_id = await connected_call_id(centre)
            assert (await ann.post(f"/v1/calls/{call_id}/hold")).status_code == 200
            music = set(PromptCache().frames("moh", Codec.PCMU))
            caller_media.packets.clear()
            await eventually(lambda: any(p in music for p in payloads(caller_media)))
            assert (await ann.post(f"/v1/calls/{call_id}/unhold")).status_code == 200
            agent_media.packets.clear()

            async def talked() -> bool:
                caller_media.send_audio(CALLER_VOICE, to_caller_leg)
                await asyncio.sleep(0.02)
                return CALLER_VOICE in payloads(agent_media)

            await eventually(talked)
            assert (await caller.hang_up()).status == 200
        finally:
            await ann.aclose()
            caller.close()
            caller_media.close()
