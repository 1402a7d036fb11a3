"""Callbacks over SIP in the running server: asked for in the queue or the IVR, called back.

Real server, real UDP: the caller, the agent's phone and the customer called
back are ``UdpPhone``s with ``FarEnd`` RTP sockets; the customer listens on
loopback and is reached through ``ACD_SIP_CALLBACK_URI`` (the settings'
``sip_callback_uri``). Media is checked by payload.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from server.harness import Desk, Running, is_offer, running, token

from ivr.caller_legs import CallerState
from ivr.media import PromptCache
from ivr.media.testing import FarEnd
from ivr.rtp.g711 import Codec
from sip_server.phone import UdpPhone, media_address, offer
from sip_server.test_calls import (
    AGENT_VOICE,
    CALLER_VOICE,
    call_in_state,
    eventually,
    live_calls,
    payloads,
)

DEMO_IVR = Path(__file__).parents[2] / "ivr" / "demo_ivr.yaml"
CENTRE: dict[str, Any] = {
    "queues": [
        # Announced every 0.3 s; a callback is offered whenever a wait is estimated.
        {"id": "sales", "announce_every_seconds": 0.3, "callback_offer_over_seconds": 0},
    ],
    "agents": [
        {"id": "ann", "queues": ["sales"]},  # a SIP phone
        {"id": "bob", "queues": ["sales"]},  # desktop only
    ],
}


@dataclass
class Centre:
    running: Running
    ann: httpx.AsyncClient
    bob: httpx.AsyncClient
    ann_phone: UdpPhone
    ann_media: FarEnd
    ann_desk: Desk
    customer: UdpPhone  # where the server calls back, at ACD_SIP_CALLBACK_URI
    customer_media: FarEnd

    async def call_id_of(self, state: str) -> str:
        calls = [c for c in await live_calls(self.running) if c["state"] == state]
        assert len(calls) == 1, calls
        return str(calls[0]["id"])


@asynccontextmanager
async def callback_centre(
    database_url: str, tmp_path: Path, **settings: Any
) -> AsyncIterator[Centre]:
    """ann logged in, not ready, her phone registered and her desktop open; bob ready."""
    customer = await UdpPhone.listen()
    customer_media = await FarEnd.open(ssrc=0xC0570)
    uri = f"sip:{{number}}@127.0.0.1:{customer.port}"
    async with running(
        database_url,
        tmp_path,
        CENTRE,
        sip_port=0,
        sip_callback_uri=uri,
        **({"ivr_flow": DEMO_IVR} | settings),
    ) as centre:
        customer.server_port = centre.server.switchboard.port
        creds = {"username": "ann", "password": "pa55word!"}
        assert (await centre.admin.put("/v1/agents/ann/sip", json=creds)).status_code == 200
        ann = centre.client(token("agent", "ann"))
        bob = centre.client(token("agent", "bob"))
        await ann.post("/v1/agents/ann/login")
        await bob.post("/v1/agents/bob/login")
        assert (await bob.post("/v1/agents/bob/ready")).status_code == 200
        phone = await UdpPhone.open(centre.server.switchboard.port)
        assert (await phone.register("ann", "pa55word!")).status == 200
        media = await FarEnd.open(ssrc=0xA6E47)
        desk = await Desk.open(centre.ws_url(), token("agent", "ann"))
        try:
            yield Centre(centre, ann, bob, phone, media, desk, customer, customer_media)
        finally:
            await desk.close()
            media.close()
            phone.close()
            customer.close()
            customer_media.close()
            await ann.aclose()
            await bob.aclose()


async def bob_answers_one_and_keeps_another(centre: Centre) -> None:
    """bob (desktop) handles one call, so the queue has a handle time, and stays on a
    second: a wait can be estimated, and a callback is offered to who waits."""
    admin, bob = centre.running.admin, centre.bob
    for keep in (False, True):
        created = await admin.post("/v1/calls", json={"queue": "sales", "ani": "5550000"})
        call_id = created.json()["id"]
        assert (await bob.post(f"/v1/calls/{call_id}/accept")).status_code == 200
        if not keep:
            assert (await bob.post(f"/v1/calls/{call_id}/hangup")).status_code == 200


async def test_a_queued_caller_takes_the_callback_keeps_their_place_and_is_called_back(
    database_url: str, tmp_path: Path
) -> None:
    async with callback_centre(database_url, tmp_path) as centre:
        await bob_answers_one_and_keeps_another(centre)
        calls = centre.running.server.switchboard.calls
        caller = await UdpPhone.open(centre.running.server.switchboard.port)
        caller_media = await FarEnd.open()
        try:
            answer = await caller.call("sales", offer(caller_media.address[1]), caller="5551234")
            assert answer.status == 200
            to_caller_leg = media_address(answer)
            await eventually(lambda: any(leg.callback_offered for leg in calls.callers()))
            call_id = await centre.call_id_of("queued")
            later = await centre.running.admin.post("/v1/calls", json={"queue": "sales"})
            assert later.status_code == 201  # a caller behind this one

            caller_media.press("1", to_caller_leg)  # "press 1 for a callback"
            leg = calls.callers()[0]
            await eventually(lambda: leg.state is CallerState.CALLBACK_MENU)
            await eventually(lambda: "callback_confirm" in str(leg.played))
            caller_media.press("1", to_caller_leg)  # "to confirm this number, press 1"
            bye = await caller.incoming("BYE", timeout=15)  # after the thanks
            caller.respond(bye, 200)

            view = (await centre.running.admin.get(f"/v1/calls/{call_id}")).json()
            assert view["state"] == "callback_queued"
            assert (view["position"], view["callback_number"]) == (1, "5551234")
            assert len(await live_calls(centre.running)) == 3  # nobody abandoned

            # ann becomes ready: the callback is first; her phone rings with it.
            assert (await centre.ann.post("/v1/agents/ann/ready")).status_code == 200
            offer_event = await centre.ann_desk.wait_for(is_offer("ann"))
            assert offer_event["data"]["call_id"] == call_id
            assert offer_event["data"]["callback_number"] == "5551234"
            invite = await centre.ann_phone.incoming("INVITE")
            to_agent_leg = media_address(invite)
            await centre.ann_phone.answer(invite, offer(centre.ann_media.address[1]))

            # The server calls the customer back and bridges them with ann's phone.
            call_back = await centre.customer.incoming("INVITE")
            assert call_back.uri is not None and "5551234@" in str(call_back.uri)
            to_customer_leg = media_address(call_back)
            await centre.customer.answer(call_back, offer(centre.customer_media.address[1]))

            async def talked() -> bool:
                centre.customer_media.send_audio(CALLER_VOICE, to_customer_leg)
                centre.ann_media.send_audio(AGENT_VOICE, to_agent_leg)
                await asyncio.sleep(0.02)
                return CALLER_VOICE in payloads(centre.ann_media) and AGENT_VOICE in payloads(
                    centre.customer_media
                )

            await eventually(talked)

            async def connected() -> bool:
                view = (await centre.running.admin.get(f"/v1/calls/{call_id}")).json()
                return (view["state"], view["agent_id"]) == ("connected", "ann")

            await eventually(connected)  # the core heard that the customer answered

            assert (await centre.customer.hang_up()).status == 200
            centre.ann_phone.respond(await centre.ann_phone.incoming("BYE"), 200)
            ended = await centre.ann_desk.wait_for(
                lambda m: (
                    m["type"] == "call.state_changed"
                    and m["data"]["call_id"] == call_id
                    and m["data"]["to_state"] == "ended"
                )
            )
            assert ended["data"]["outcome"] == "answered"
        finally:
            caller.close()
            caller_media.close()


async def test_a_callback_the_customer_refuses_ends_and_the_agent_is_told(
    database_url: str, tmp_path: Path
) -> None:
    async with callback_centre(database_url, tmp_path) as centre:
        assert (await centre.bob.post("/v1/agents/bob/not-ready")).status_code == 200
        booked = {"queue": "sales", "ani": "5550042", "callback_number": "5550042"}
        created = await centre.running.admin.post("/v1/calls", json=booked)
        assert created.status_code == 201 and created.json()["state"] == "callback_queued"
        call_id = created.json()["id"]
        assert (await centre.ann.post("/v1/agents/ann/ready")).status_code == 200
        invite = await centre.ann_phone.incoming("INVITE")
        await centre.ann_phone.answer(invite, offer(centre.ann_media.address[1]))
        call_back = await centre.customer.incoming("INVITE")
        centre.customer.respond(call_back, 486)  # busy
        await centre.customer.incoming("ACK")
        centre.ann_phone.respond(await centre.ann_phone.incoming("BYE"), 200)
        ended = await centre.ann_desk.wait_for(
            lambda m: (
                m["type"] == "call.state_changed"
                and m["data"]["call_id"] == call_id
                and m["data"]["to_state"] == "ended"
            )
        )
        assert (ended["data"]["outcome"], ended["data"]["reason"]) == ("callback_failed", "busy")


async def test_key_4_in_the_demo_ivr_books_a_callback_and_the_caller_is_hung_up(
    database_url: str, tmp_path: Path
) -> None:
    async with callback_centre(database_url, tmp_path) as centre:
        assert (await centre.bob.post("/v1/agents/bob/not-ready")).status_code == 200
        caller = await UdpPhone.open(centre.running.server.switchboard.port)
        caller_media = await FarEnd.open()
        try:
            answer = await caller.call("100", offer(caller_media.address[1]), caller="5557777")
            assert answer.status == 200
            for digit in "141":  # English, callback, confirm the number read back
                caller.press_info(digit)
                assert (await caller.receive()).status == 200
            bye = await caller.incoming("BYE", timeout=15)
            caller.respond(bye, 200)

            async def booked() -> bool:
                return [
                    (c["state"], c["callback_number"]) for c in await live_calls(centre.running)
                ] == [("callback_queued", "5557777")]

            await eventually(booked)
        finally:
            caller.close()
            caller_media.close()


@asynccontextmanager
async def caller_in_the_callback_menu(
    centre: Centre,
) -> AsyncIterator[tuple[UdpPhone, FarEnd, tuple[str, int], str]]:
    """A SIP caller waits in sales, is offered a callback, presses 1: the callback menu."""
    await bob_answers_one_and_keeps_another(centre)
    calls = centre.running.server.switchboard.calls
    caller = await UdpPhone.open(centre.running.server.switchboard.port)
    caller_media = await FarEnd.open()
    try:
        answer = await caller.call("sales", offer(caller_media.address[1]), caller="5551234")
        assert answer.status == 200
        to_caller_leg = media_address(answer)
        await eventually(lambda: any(leg.callback_offered for leg in calls.callers()))
        call_id = await centre.call_id_of("queued")
        caller_media.press("1", to_caller_leg)
        leg = calls.callers()[0]
        await eventually(lambda: leg.state is CallerState.CALLBACK_MENU)
        yield caller, caller_media, to_caller_leg, call_id
    finally:
        caller.close()
        caller_media.close()


async def test_a_caller_who_hangs_up_in_the_callback_menu_has_abandoned(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        callback_centre(database_url, tmp_path) as centre,
        caller_in_the_callback_menu(centre) as (caller, _, _, call_id),
    ):
        supervisor = await Desk.open(centre.running.ws_url(), token("admin"))
        try:
            assert (await caller.hang_up()).status == 200
            ended = await supervisor.wait_for(
                lambda m: (
                    m["type"] == "call.state_changed"
                    and m["data"]["call_id"] == call_id
                    and m["data"]["to_state"] == "ended"
                )
            )
            assert ended["data"]["from_state"] == "queued"
            assert ended["data"]["outcome"] in ("abandoned", "short_abandoned")
        finally:
            await supervisor.close()


async def test_an_agent_answering_while_the_caller_is_in_the_callback_menu_talks_to_them(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        callback_centre(database_url, tmp_path) as centre,
        caller_in_the_callback_menu(centre) as (_, caller_media, to_caller_leg, call_id),
    ):
        assert (await centre.ann.post("/v1/agents/ann/ready")).status_code == 200
        offered = await centre.ann_desk.wait_for(is_offer("ann"))
        assert (offered["data"]["call_id"], offered["data"]["callback_number"]) == (call_id, None)
        invite = await centre.ann_phone.incoming("INVITE")
        to_agent_leg = media_address(invite)
        await centre.ann_phone.answer(invite, offer(centre.ann_media.address[1]))

        async def talked() -> bool:
            caller_media.send_audio(CALLER_VOICE, to_caller_leg)
            centre.ann_media.send_audio(AGENT_VOICE, to_agent_leg)
            await asyncio.sleep(0.02)
            return CALLER_VOICE in payloads(centre.ann_media) and AGENT_VOICE in payloads(
                caller_media
            )

        await eventually(talked)
        leg = centre.running.server.switchboard.calls.callers()[0]
        assert leg.state is CallerState.BRIDGED


async def test_a_customer_who_lets_the_call_back_ring_is_given_up_on(
    database_url: str, tmp_path: Path
) -> None:
    async with callback_centre(database_url, tmp_path, sip_callback_ring_seconds=0.5) as centre:
        assert (await centre.bob.post("/v1/agents/bob/not-ready")).status_code == 200
        booked = {"queue": "sales", "callback_number": "5550043"}
        call_id = (await centre.running.admin.post("/v1/calls", json=booked)).json()["id"]
        assert (await centre.ann.post("/v1/agents/ann/ready")).status_code == 200
        invite = await centre.ann_phone.incoming("INVITE")
        await centre.ann_phone.answer(invite, offer(centre.ann_media.address[1]))
        call_back = await centre.customer.incoming("INVITE")
        centre.customer.respond(call_back, 180)  # rings, and rings
        cancel = await centre.customer.incoming("CANCEL")
        centre.customer.respond(cancel, 200)
        centre.customer.respond(call_back, 487)
        await centre.customer.incoming("ACK")
        centre.ann_phone.respond(await centre.ann_phone.incoming("BYE"), 200)
        ended = await centre.ann_desk.wait_for(
            lambda m: (
                m["type"] == "call.state_changed"
                and m["data"]["call_id"] == call_id
                and m["data"]["to_state"] == "ended"
            )
        )
        assert (ended["data"]["outcome"], ended["data"]["reason"]) == (
            "callback_failed",
            "no_answer",
        )


async def test_a_called_back_customer_held_from_the_desktop_hears_music_then_the_agent(
    database_url: str, tmp_path: Path
) -> None:
    async with callback_centre(database_url, tmp_path) as centre:
        assert (await centre.bob.post("/v1/agents/bob/not-ready")).status_code == 200
        booked = {"queue": "sales", "callback_number": "5550044"}
        call_id = (await centre.running.admin.post("/v1/calls", json=booked)).json()["id"]
        assert (await centre.ann.post("/v1/agents/ann/ready")).status_code == 200
        invite = await centre.ann_phone.incoming("INVITE")
        await centre.ann_phone.answer(invite, offer(centre.ann_media.address[1]))
        call_back = await centre.customer.incoming("INVITE")
        to_customer_leg = media_address(call_back)
        await centre.customer.answer(call_back, offer(centre.customer_media.address[1]))
        await eventually(call_in_state(centre.running, "connected"))

        assert (await centre.ann.post(f"/v1/calls/{call_id}/hold")).status_code == 200
        music = set(PromptCache().frames("moh", Codec.PCMU))
        centre.customer_media.packets.clear()
        await eventually(lambda: any(p in music for p in payloads(centre.customer_media)))
        assert (await centre.ann.post(f"/v1/calls/{call_id}/unhold")).status_code == 200
        centre.ann_media.packets.clear()

        async def talked() -> bool:
            centre.customer_media.send_audio(CALLER_VOICE, to_customer_leg)
            await asyncio.sleep(0.02)
            return CALLER_VOICE in payloads(centre.ann_media)

        await eventually(talked)
        assert (await centre.ann.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
        centre.customer.respond(await centre.customer.incoming("BYE"), 200)
        centre.ann_phone.respond(await centre.ann_phone.incoming("BYE"), 200)


async def test_without_a_callback_menu_in_the_flow_no_callback_is_offered(
    database_url: str, tmp_path: Path
) -> None:
    async with callback_centre(database_url, tmp_path, ivr_flow=None) as centre:
        await bob_answers_one_and_keeps_another(centre)
        calls = centre.running.server.switchboard.calls
        caller = await UdpPhone.open(centre.running.server.switchboard.port)
        caller_media = await FarEnd.open()
        try:
            answer = await caller.call("sales", offer(caller_media.address[1]))
            assert answer.status == 200

            def announced() -> list[tuple[str, ...]]:
                return [
                    p
                    for leg in calls.callers()
                    for p in leg.played
                    if "en/your_estimated_wait_is" in p
                ]

            await eventually(lambda: len(announced()) >= 2)  # estimates: the core offers it
            assert not any("en/press_1_for_callback" in prompts for prompts in announced())
            assert not any(leg.callback_offered for leg in calls.callers())
            assert (await caller.hang_up()).status == 200
        finally:
            caller.close()
            caller_media.close()
