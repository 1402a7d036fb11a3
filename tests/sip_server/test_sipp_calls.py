"""SIPp callers and SIPp agents' phones against the running server, through the demo IVR."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from peers import peer_unavailable, require_binary
from peers.sipp import register_agents, run_sipp, start_sipp
from server.harness import running, token

DEMO_IVR = Path(__file__).parents[2] / "ivr" / "demo_ivr.yaml"
CENTRE: dict[str, Any] = {
    "queues": [{"id": "sales"}, {"id": "support"}, {"id": "billing"}],
    "agents": [
        {"id": "agent1", "queues": ["support"], "skills": {"tech": 5}, "languages": {"en": 9}}
    ],
}


@pytest.fixture
def sipp() -> None:
    require_binary("sipp")
    try:  # SIPp's play_dtmf sends its RFC 4733 events through a raw socket
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP).close()
    except PermissionError:
        peer_unavailable("SIPp needs a raw socket (root or CAP_NET_RAW) to send DTMF")


async def test_a_sipp_caller_picks_support_in_the_ivr_and_is_answered_by_a_sipp_agent_phone(
    sipp: None, database_url: str, tmp_path: Path
) -> None:
    async with running(
        database_url, tmp_path, CENTRE, sip_port=0, sip_digest="MD5", ivr_flow=DEMO_IVR
    ) as centre:
        creds = {"username": "agent1", "password": "secret-one"}
        assert (await centre.admin.put("/v1/agents/agent1/sip", json=creds)).status_code == 200
        target = f"127.0.0.1:{centre.server.switchboard.port}"
        async with await start_sipp("agent_answer", variables={"ring_ms": 100}) as phone:
            registered = await register_agents(
                target, {"agent1": "secret-one"}, contact_port=phone.port
            )
            assert registered["agent1"].ok, registered["agent1"].explain()
            agent = centre.client(token("agent", "agent1"))
            await agent.post("/v1/agents/agent1/login")
            assert (await agent.post("/v1/agents/agent1/ready")).status_code == 200
            answered: list[dict[str, Any]] = []

            async def watch() -> None:
                while not answered:
                    for call in (await centre.admin.get("/v1/calls")).json():
                        if call["state"] == "connected":
                            answered.append(call)
                    await asyncio.sleep(0.05)

            watching = asyncio.create_task(watch())
            # 1: English, 2: technical support; then a while in the call, then BYE.
            caller = await run_sipp(
                "caller",
                target,
                service="100",
                variables={"digits": "12", "tone_ms": 60, "dtmf_delay_ms": 500, "talk_ms": 6000},
                rtp_echo=True,
                timeout=20,
            )
            watching.cancel()
            await agent.aclose()
            agent_side = await phone.stop()
        assert caller.ok, caller.explain()
        assert (caller.sent("ACK"), caller.sent("BYE")) == (1, 1), caller.explain()
        assert answered, f"never answered by the agent:\n{caller.explain()}\n{agent_side.explain()}"
        assert answered[0]["queue_id"] == "support", answered
        assert answered[0]["agent_id"] == "agent1"
        assert agent_side.received("INVITE") >= 1 and agent_side.received("BYE") == 1, (
            agent_side.explain()
        )
        for _ in range(100):
            if not (await centre.admin.get("/v1/calls")).json():
                break
            await asyncio.sleep(0.05)
        assert (await centre.admin.get("/v1/calls")).json() == [], "the call ended in the core"
