"""Transfers over SIP in the running server: REFER, the API's blind transfer, overflow to a site.

Real server, real UDP: callers, agents' phones and the backup centre are
``UdpPhone``s with ``FarEnd`` RTP sockets; media is checked by payload.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from peers import require_binary
from peers.sipp import run_sipp, start_sipp
from server.harness import Running, running, token

from ivr.media import PromptCache
from ivr.media.testing import FarEnd
from ivr.rtp.g711 import Codec
from ivr.sip import Request, Response
from sip_server.phone import UdpPhone, media_address, offer
from sip_server.test_calls import call_in_state, eventually, live_calls, payloads

CENTRE: dict[str, Any] = {
    "queues": [{"id": "sales"}, {"id": "support"}],
    "agents": [
        {"id": "ann", "queues": ["sales"]},
        {"id": "bob", "queues": ["support"]},
    ],
}
CALLER_VOICE = bytes([0x55]) * 160
AGENT_VOICE = bytes([0x66]) * 160
SITE_VOICE = bytes([0x77]) * 160


class Agent:
    """An agent logged in and ready, with a registered ``UdpPhone`` and its RTP socket."""

    def __init__(self, name: str, phone: UdpPhone, media: FarEnd) -> None:
        self.name = name
        self.phone = phone
        self.media = media

    def close(self) -> None:
        self.phone.close()
        self.media.close()


@asynccontextmanager
async def centre_with_agents(
    database_url: str, tmp_path: Path, **settings: Any
) -> AsyncIterator[tuple[Running, dict[str, Agent]]]:
    """The server with ann (sales) and bob (support) ready, their phones registered.

    Bob's SIP username is ``bob-desk``, so a REFER can name him either way.
    """
    async with running(database_url, tmp_path, CENTRE, sip_port=0, **settings) as centre:
        agents: dict[str, Agent] = {}
        try:
            for name, username in (("ann", "ann"), ("bob", "bob-desk")):
                creds = {"username": username, "password": "pa55word!"}
                put = await centre.admin.put(f"/v1/agents/{name}/sip", json=creds)
                assert put.status_code == 200
                phone = await UdpPhone.open(centre.server.switchboard.port)
                agents[name] = Agent(name, phone, await FarEnd.open())
                assert (await phone.register(username, "pa55word!")).status == 200
                desk = centre.client(token("agent", name))
                assert (await desk.post(f"/v1/agents/{name}/login")).status_code == 200
                assert (await desk.post(f"/v1/agents/{name}/ready")).status_code == 200
                await desk.aclose()
            yield centre, agents
        finally:
            for agent in agents.values():
                agent.close()


class Caller:
    """A caller's phone and RTP socket, and where the server said to send RTP."""

    def __init__(self, phone: UdpPhone, media: FarEnd) -> None:
        self.phone = phone
        self.media = media
        self.to_server: tuple[str, int] | None = None

    @classmethod
    async def dial(cls, centre: Running, dnis: str) -> tuple[Caller, Response]:
        caller = cls(await UdpPhone.open(centre.server.switchboard.port), await FarEnd.open())
        answer = await caller.phone.call(dnis, offer(caller.media.address[1]))
        if answer.status == 200:
            caller.to_server = media_address(answer)
        return caller, answer

    def close(self) -> None:
        self.phone.close()
        self.media.close()


async def answered_by(agent: Agent) -> tuple[str, int]:
    """The agent's phone rings and answers; where the server wants its RTP."""
    invite = await agent.phone.incoming("INVITE")
    await agent.phone.answer(invite, offer(agent.media.address[1]))
    return media_address(invite)


async def talk(
    caller: Caller, far: FarEnd, to_far_leg: tuple[str, int], far_voice: bytes = AGENT_VOICE
) -> None:
    """Wait until the caller and the far end hear each other's audio, payload for payload."""
    assert caller.to_server is not None
    caller.media.packets.clear()
    far.packets.clear()

    async def heard() -> bool:
        assert caller.to_server is not None
        caller.media.send_audio(CALLER_VOICE, caller.to_server)
        far.send_audio(far_voice, to_far_leg)
        await asyncio.sleep(0.02)
        return CALLER_VOICE in payloads(far) and far_voice in payloads(caller.media)

    await eventually(heard)


def hears_music(caller: Caller) -> bool:
    music = set(PromptCache().frames("moh", Codec.PCMU))
    return any(p in music for p in payloads(caller.media))


async def refer(agent: Agent, target: str, cseq: int) -> Response:
    """The agent's phone sends REFER in its call's dialog; the final response."""
    extra = f"Refer-To: <{target}>\r\nContact: <sip:{agent.name}@127.0.0.1:{agent.phone.port}>\r\n"
    agent.phone.send(agent.phone._in_dialog("REFER", cseq=cseq, extra=extra))
    return await agent.phone.receive()


async def notified(agent: Agent) -> Request:
    """The next NOTIFY of the transfer's subscription, answered 200."""
    notify = await agent.phone.incoming("NOTIFY")
    agent.phone.respond(notify, 200)
    return notify


async def connected_to_ann(centre: Running, agents: dict[str, Agent]) -> Caller:
    """A caller dials sales and talks with ann's phone."""
    caller, answer = await Caller.dial(centre, "sales")
    assert answer.status == 200
    to_ann = await answered_by(agents["ann"])
    await eventually(call_in_state(centre, "connected"))
    await talk(caller, agents["ann"].media, to_ann)
    return caller


async def test_a_refer_to_a_queue_moves_the_caller_to_the_next_agents_phone(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_agents(database_url, tmp_path) as (centre, agents):
        caller = await connected_to_ann(centre, agents)
        ann, bob = agents["ann"], agents["bob"]
        try:
            accepted = await refer(ann, "sip:support@127.0.0.1", cseq=9101)
            assert accepted.status == 202
            trying = await notified(ann)
            assert trying.headers.get("Event") == "refer;id=9101"
            assert trying.headers.get("Content-Type") == "message/sipfrag;version=2.0"
            assert trying.body == b"SIP/2.0 100 Trying\r\n"
            assert (trying.headers.get("Subscription-State") or "").startswith("active")
            done = await notified(ann)
            assert done.body == b"SIP/2.0 200 OK\r\n"
            assert (done.headers.get("Subscription-State") or "").startswith("terminated")
            bye = await ann.phone.incoming("BYE")  # the transferring phone is let go
            ann.phone.respond(bye, 200)

            await eventually(lambda: hears_music(caller))  # waiting again, in support
            to_bob = await answered_by(bob)
            await eventually(call_in_state(centre, "connected"))
            await talk(caller, bob.media, to_bob)
            [call] = await live_calls(centre)
            assert (call["queue_id"], call["agent_id"]) == ("support", "bob")
            assert (await caller.phone.hang_up()).status == 200
            bob.phone.respond(await bob.phone.incoming("BYE"), 200)
        finally:
            caller.close()


async def test_a_refer_naming_an_agent_by_sip_username_rings_that_agents_phone(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_agents(database_url, tmp_path) as (centre, agents):
        caller = await connected_to_ann(centre, agents)
        ann, bob = agents["ann"], agents["bob"]
        try:
            assert (await refer(ann, "sip:bob-desk@127.0.0.1", cseq=9102)).status == 202
            assert (await notified(ann)).body == b"SIP/2.0 100 Trying\r\n"
            assert (await notified(ann)).body == b"SIP/2.0 200 OK\r\n"
            ann.phone.respond(await ann.phone.incoming("BYE"), 200)
            to_bob = await answered_by(bob)
            await eventually(call_in_state(centre, "connected"))
            await talk(caller, bob.media, to_bob)
        finally:
            caller.close()


async def test_a_refer_the_centre_cannot_carry_out_is_refused_and_the_call_goes_on(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_agents(database_url, tmp_path) as (centre, agents):
        caller = await connected_to_ann(centre, agents)
        ann = agents["ann"]
        try:
            unknown = await refer(ann, "sip:nobody@127.0.0.1", cseq=9103)
            assert (unknown.status, unknown.reason) == (404, "No such queue or agent")
            outside = await refer(ann, "sip:someone@elsewhere.example", cseq=9104)
            assert outside.status == 403
            # ann herself is not free to take the call: the core refuses, the NOTIFY says so.
            assert (await refer(ann, "sip:ann@127.0.0.1", cseq=9105)).status == 202
            assert (await notified(ann)).body == b"SIP/2.0 100 Trying\r\n"
            refused = await notified(ann)
            assert refused.body == b"SIP/2.0 480 Temporarily Unavailable\r\n"
            assert (refused.headers.get("Subscription-State") or "").startswith("terminated")
            await talk(caller, ann.media, media_address(ann.phone.invite))  # still together
            [call] = await live_calls(centre)
            assert (call["state"], call["agent_id"]) == ("connected", "ann")
        finally:
            caller.close()


async def test_a_blind_transfer_from_the_desktop_moves_the_callers_audio_to_the_next_phone(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_agents(database_url, tmp_path) as (centre, agents):
        caller = await connected_to_ann(centre, agents)
        ann, bob = agents["ann"], agents["bob"]
        desk = centre.client(token("agent", "ann"))
        try:
            [call] = await live_calls(centre)
            body = {"queue_id": "support", "mode": "blind"}
            assert (await desk.post(f"/v1/calls/{call['id']}/transfer", json=body)).is_success
            ann.phone.respond(await ann.phone.incoming("BYE"), 200)
            await eventually(lambda: hears_music(caller))
            to_bob = await answered_by(bob)
            await eventually(call_in_state(centre, "connected"))
            await talk(caller, bob.media, to_bob)
            assert (await bob.phone.hang_up()).status == 200  # bob ends it: the caller too
            caller.phone.respond(await caller.phone.incoming("BYE"), 200)
        finally:
            await desk.aclose()
            caller.close()


@asynccontextmanager
async def centre_with_site(
    database_url: str, tmp_path: Path, **settings: Any
) -> AsyncIterator[tuple[Running, UdpPhone, FarEnd]]:
    """A centre whose queue ``overflow`` has nobody and sends every caller to a backup site.

    The site is a ``UdpPhone`` with its RTP socket; the queue is made once the
    server's SIP port (the site's peer) is known.
    """
    async with running(database_url, tmp_path, CENTRE, sip_port=0, **settings) as centre:
        site = await UdpPhone.open(centre.server.switchboard.port)
        site_media = await FarEnd.open()
        try:
            queue = {
                "id": "overflow",
                "when_unstaffed": "overflow",
                "when_full": {"site": f"sip:backup@127.0.0.1:{site.port}"},
            }
            assert (await centre.admin.post("/v1/queues", json=queue)).status_code == 201
            yield centre, site, site_media
        finally:
            site.close()
            site_media.close()


async def test_overflow_to_a_site_bridges_the_caller_to_a_new_call_to_that_site(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_site(database_url, tmp_path) as (centre, site, site_media):
        caller, answer = await Caller.dial(centre, "overflow")
        try:
            assert answer.status == 200
            invite = await site.incoming("INVITE")
            assert invite.uri.user == "backup"  # type: ignore[union-attr]
            assert invite.from_address.uri.user == "5551234"  # type: ignore[union-attr]
            await site.answer(invite, offer(site_media.address[1]))
            await talk(caller, site_media, media_address(invite), SITE_VOICE)
            assert await live_calls(centre) == []  # the core counted it overflowed, and let go
            assert (await caller.phone.hang_up()).status == 200
            site.respond(await site.incoming("BYE"), 200)
            calls = centre.server.switchboard.calls
            await eventually(lambda: len(calls.sites) == 0 and calls.callers() == [])
        finally:
            caller.close()


async def test_a_site_that_refuses_leaves_the_caller_a_goodbye_and_a_bye(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_site(database_url, tmp_path) as (centre, site, _):
        caller, answer = await Caller.dial(centre, "overflow")
        try:
            assert answer.status == 200
            invite = await site.incoming("INVITE")
            site.respond(invite, 503)
            await site.incoming("ACK")
            bye = await caller.phone.incoming("BYE", timeout=10)  # after the prompt
            caller.phone.respond(bye, 200)
            goodbye = set(PromptCache().frames("en/goodbye", Codec.PCMU))
            assert any(p in goodbye for p in payloads(caller.media))
        finally:
            caller.close()


async def test_the_site_hanging_up_ends_the_callers_leg_too(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_site(database_url, tmp_path) as (centre, site, site_media):
        caller, _ = await Caller.dial(centre, "overflow")
        try:
            invite = await site.incoming("INVITE")
            await site.answer(invite, offer(site_media.address[1]))
            await talk(caller, site_media, media_address(invite), SITE_VOICE)
            assert (await site.hang_up()).status == 200
            caller.phone.respond(await caller.phone.incoming("BYE"), 200)
        finally:
            caller.close()


async def test_in_redirect_mode_an_overflowing_caller_gets_a_302_to_the_site(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_site(database_url, tmp_path, sip_overflow="redirect") as (
        centre,
        site,
        _,
    ):
        closed = {"id": "closed", "when_unstaffed": "block"}
        assert (await centre.admin.post("/v1/queues", json=closed)).status_code == 201
        caller, answer = await Caller.dial(centre, "overflow")
        blocked, busy = await Caller.dial(centre, "closed")
        kept, kept_answer = await Caller.dial(centre, "sales")  # nobody ready: it waits
        try:
            assert answer.status == 302
            assert answer.headers.get("Contact") == f"<sip:backup@127.0.0.1:{site.port}>"
            assert busy.status == 486
            assert kept_answer.status == 200  # the core kept this one: answered, music on
            assert await kept.phone.wait(lambda m: getattr(m, "status", None) == 180)
            await eventually(call_in_state(centre, "queued"))
            await eventually(lambda: hears_music(kept))
            assert [c.state.value for c in centre.server.switchboard.calls.callers()] == ["queued"]
        finally:
            for phone in (caller, blocked, kept):
                phone.close()


async def test_an_overflow_call_still_up_when_the_server_stops_is_hung_up_both_ways(
    database_url: str, tmp_path: Path
) -> None:
    async with centre_with_site(database_url, tmp_path) as (centre, site, site_media):
        caller, _ = await Caller.dial(centre, "overflow")
        try:
            invite = await site.incoming("INVITE")
            await site.answer(invite, offer(site_media.address[1]))
            await talk(caller, site_media, media_address(invite), SITE_VOICE)
            await centre.stop()
            assert (await caller.phone.incoming("BYE")).method == "BYE"
            assert (await site.incoming("BYE")).method == "BYE"
        finally:
            caller.close()


async def test_a_sipp_caller_overflowing_is_bridged_to_a_sipp_backup_centre(
    database_url: str, tmp_path: Path
) -> None:
    require_binary("sipp")
    async with running(database_url, tmp_path, CENTRE, sip_port=0) as centre:
        target = f"127.0.0.1:{centre.server.switchboard.port}"
        async with await start_sipp("agent_answer", variables={"ring_ms": 100}) as site:
            queue = {
                "id": "overflow",
                "when_unstaffed": "overflow",
                "when_full": {"site": f"sip:backup@127.0.0.1:{site.port}"},
            }
            assert (await centre.admin.post("/v1/queues", json=queue)).status_code == 201
            caller = await run_sipp(
                "caller",
                target,
                service="overflow",
                variables={"talk_ms": 2000},
                rtp_echo=True,
                timeout=20,
            )
            site_side = await site.stop()
        assert caller.ok, caller.explain()
        assert (caller.sent("ACK"), caller.sent("BYE")) == (1, 1), caller.explain()
        assert (site_side.received("INVITE"), site_side.received("BYE")) == (1, 1), (
            site_side.explain()
        )
        calls = centre.server.switchboard.calls
        await eventually(lambda: len(calls.sites) == 0 and calls.callers() == [])
