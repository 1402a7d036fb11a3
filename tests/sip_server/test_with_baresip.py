"""baresip, a real SIP phone, as an agent's phone: it registers, is offered a call, answers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from peers import free_port, require_binary
from peers.baresip import Account, Event, baresip_phone
from server.harness import running, token

from acd.ids import AgentId, CallId
from ivr.media.testing import FarEnd
from sip_server.phone import UdpPhone, offer

CENTRE: dict[str, Any] = {
    "queues": [{"id": "sales"}],
    "agents": [{"id": "agent1", "queues": ["sales"]}],
}


@pytest.fixture
def baresip() -> None:
    require_binary("baresip")


async def test_baresip_registers_is_offered_a_call_and_answers_it_by_itself(
    baresip: None, database_url: str, tmp_path: Path
) -> None:
    # baresip 1.0 gives up on any SHA-256 challenge: the centre offers MD5 alone.
    async with running(database_url, tmp_path, CENTRE, sip_port=0, sip_digest="MD5") as centre:
        creds = {"username": "agent1", "password": "secret-one"}
        assert (await centre.admin.put("/v1/agents/agent1/sip", json=creds)).status_code == 200
        agent = centre.client(token("agent", "agent1"))
        registrar = f"127.0.0.1:{centre.server.switchboard.port}"
        account = Account(user="agent1", password="secret-one", registrar=registrar)
        async with await baresip_phone(account) as phone:
            await phone.wait_registered()
            await agent.post("/v1/agents/agent1/login")
            assert (await agent.post("/v1/agents/agent1/ready")).status_code == 200
            caller = await UdpPhone.open(centre.server.switchboard.port)
            media = await FarEnd.open()
            try:
                answer = await caller.call("sales", offer(media.address[1]))
                assert answer.status == 200
                caller.ack()
                await phone.wait_for(Event.ESTABLISHED)
                for _ in range(250):
                    calls = (await centre.admin.get("/v1/calls")).json()
                    if calls and calls[0]["state"] == "connected":
                        break
                    await asyncio.sleep(0.02)
                assert calls[0]["state"] == "connected" and calls[0]["agent_id"] == "agent1"
                for _ in range(100):  # baresip's voice (a sine) comes through the bridge
                    if media.packets:
                        break
                    await asyncio.sleep(0.02)
                assert media.packets, "no RTP from the agent's phone reached the caller"
                assert (await caller.hang_up()).status == 200
                await phone.wait_for(Event.CLOSED)
            finally:
                media.close()
                caller.close()
        await agent.aclose()
    assert phone.count(Event.ANSWERED) == 1, phone.log


async def test_baresip_rings_again_after_a_desktop_accept_and_is_bridged_when_picked_up(
    baresip: None, database_url: str, tmp_path: Path
) -> None:
    """baresip 1.0 reads none of the auto-answer headers (``sip_autoanswer`` came in 1.1):
    the fallback, a phone that rings until the agent picks it up, with a real phone."""
    async with running(database_url, tmp_path, CENTRE, sip_port=0, sip_digest="MD5") as centre:
        creds = {"username": "agent1", "password": "secret-one"}
        assert (await centre.admin.put("/v1/agents/agent1/sip", json=creds)).status_code == 200
        agent = centre.client(token("agent", "agent1"))
        registrar = f"127.0.0.1:{centre.server.switchboard.port}"
        account = Account(user="agent1", password="secret-one", registrar=registrar, answer=False)
        async with await baresip_phone(account, control_port=free_port()) as phone:
            await phone.wait_registered()
            await agent.post("/v1/agents/agent1/login")
            assert (await agent.post("/v1/agents/agent1/ready")).status_code == 200
            caller = await UdpPhone.open(centre.server.switchboard.port)
            media = await FarEnd.open()
            try:
                assert (await caller.call("sales", offer(media.address[1]))).status == 200
                await phone.wait_for(Event.INCOMING)  # the offer rings the phone
                call_id = (await centre.admin.get("/v1/calls")).json()[0]["id"]
                assert (await agent.post(f"/v1/calls/{call_id}/accept")).status_code == 200
                await phone.wait_for(Event.INCOMING, count=2)  # cancelled, and rung again
                reply = await phone.command("accept")  # the agent picks the phone up
                assert reply.get("ok"), reply  # still ringing: it had not answered by itself
                await phone.wait_for(Event.ESTABLISHED)
                for _ in range(250):  # baresip's voice (a sine) comes through the bridge
                    if media.packets:
                        break
                    await asyncio.sleep(0.02)
                assert media.packets, "no RTP from the agent's phone reached the caller"
                calls = (await centre.admin.get("/v1/calls")).json()
                assert calls[0]["state"] == "connected" and calls[0]["agent_id"] == "agent1"
                assert (await caller.hang_up()).status == 200
                await phone.wait_for(Event.CLOSED, count=2)  # the cancelled call, then this one
            finally:
                media.close()
                caller.close()
        await agent.aclose()
    assert phone.count(Event.ANSWERED) == 1, phone.log


async def test_baresip_is_re_invited_on_hold_and_unhold_from_the_desktop(
    baresip: None, database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE, sip_port=0, sip_digest="MD5") as centre:
        creds = {"username": "agent1", "password": "secret-one"}
        assert (await centre.admin.put("/v1/agents/agent1/sip", json=creds)).status_code == 200
        agent = centre.client(token("agent", "agent1"))
        registrar = f"127.0.0.1:{centre.server.switchboard.port}"
        account = Account(user="agent1", password="secret-one", registrar=registrar)
        async with await baresip_phone(account) as phone:
            await phone.wait_registered()
            await agent.post("/v1/agents/agent1/login")
            assert (await agent.post("/v1/agents/agent1/ready")).status_code == 200
            caller = await UdpPhone.open(centre.server.switchboard.port)
            media = await FarEnd.open()
            try:
                assert (await caller.call("sales", offer(media.address[1]))).status == 200
                await phone.wait_for(Event.ESTABLISHED)
                calls = centre.server.switchboard.calls

                async def phone_held(held: bool) -> None:
                    """Wait until baresip agreed our re-INVITE's direction (2xx taken)."""
                    for _ in range(250):
                        live = (await centre.admin.get("/v1/calls")).json()
                        leg = live and calls.agent_leg(CallId(live[0]["id"]), AgentId("agent1"))
                        if leg and leg.hold.agreed is held and not leg.hold.offering_now:
                            return
                        await asyncio.sleep(0.02)
                    raise AssertionError(f"baresip's leg never agreed hold={held}\n{phone.log}")

                for _ in range(250):
                    live = (await centre.admin.get("/v1/calls")).json()
                    if live and live[0]["state"] == "connected":
                        break
                    await asyncio.sleep(0.02)
                call_id = live[0]["id"]
                assert (await agent.post(f"/v1/calls/{call_id}/hold")).status_code == 200
                await phone_held(True)
                await phone.wait_for(Event.REINVITED)  # a=sendonly
                assert (await agent.post(f"/v1/calls/{call_id}/unhold")).status_code == 200
                await phone_held(False)
                await phone.wait_for(Event.REINVITED, count=2)  # a=sendrecv
                media.packets.clear()
                for _ in range(250):  # baresip's voice comes through the bridge again
                    if media.packets:
                        break
                    await asyncio.sleep(0.02)
                assert media.packets, "no RTP from the agent's phone after the unhold"
                assert (await caller.hang_up()).status == 200
                await phone.wait_for(Event.CLOSED)
            finally:
                media.close()
                caller.close()
        await agent.aclose()
