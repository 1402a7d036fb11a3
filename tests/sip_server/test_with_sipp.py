"""The running server against SIPp: agents registering with digest, a brute force throttled."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from peers import require_binary
from peers.sipp import SCENARIOS, register_agents, run_sipp
from server.harness import running

from sip_server.phone import UdpPhone, _Socket

CENTRE: dict[str, Any] = {
    "queues": [{"id": "sales"}],
    "agents": [{"id": "agent1", "queues": ["sales"]}, {"id": "agent2", "queues": ["sales"]}],
}


@pytest.fixture
def sipp() -> None:
    require_binary("sipp")


async def _accounts(centre: Any) -> None:
    for agent, password in (("agent1", "secret-one"), ("agent2", "secret-two")):
        creds = {"username": agent, "password": password}
        assert (await centre.admin.put(f"/v1/agents/{agent}/sip", json=creds)).status_code == 200


async def test_sipp_agents_register_with_digest(
    sipp: None, database_url: str, tmp_path: Path
) -> None:
    # SIPp 3.6 answers only an MD5 challenge: the centre offers MD5 alone for such phones.
    async with running(database_url, tmp_path, CENTRE, sip_port=0, sip_digest="MD5") as centre:
        await _accounts(centre)
        target = f"127.0.0.1:{centre.server.switchboard.port}"
        results = await register_agents(
            target, {"agent1": "secret-one", "agent2": "secret-two"}, contact_port=5070
        )
        for user, result in results.items():
            assert result.ok, f"{user}: {result.explain()}"
            assert result.received("401") == result.received("200") == 1
        wrong = await register_agents(target, {"agent1": "not-it"}, contact_port=5070, timeout=6)
        assert not wrong["agent1"].ok


async def test_a_burst_of_wrong_passwords_is_throttled_and_another_source_still_registers(
    sipp: None, database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE, sip_port=0, sip_digest="MD5") as centre:
        await _accounts(centre)
        port = centre.server.switchboard.port
        guesses = await run_sipp(
            "register_bruteforce",
            f"127.0.0.1:{port}",
            calls=16,
            rate=40,
            injection=SCENARIOS / "register_bruteforce.csv",
            timeout=30,
        )
        assert guesses.received("200") == 0, guesses.explain()
        # The throttle allows 10 failures a minute from one source; after that its
        # REGISTERs go unanswered (over UDP a refused source hears nothing).
        # Ten guesses were judged (a 401 challenge, then a 401 refusal each); the six
        # calls after them went unanswered (at their first REGISTER, or at the guess
        # when their challenge came just before the ban).
        assert guesses.timeouts("403") + guesses.timeouts("401") == 6, guesses.explain()
        throttle = centre.server.switchboard.registrations.throttle
        assert throttle.banned_until("127.0.0.1", time.time()) is not None
        phone = await _phone_at("127.0.0.2", port)  # another source: any 127.x is loopback
        try:
            assert (await phone.register("agent1", "secret-one")).status == 200
        finally:
            phone.close()
        banned = await _phone_at("127.0.0.1", port)  # the guesser's address
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(banned.register("agent2", "secret-two"), 1.5)
        finally:
            banned.close()


async def _phone_at(host: str, server_port: int) -> UdpPhone:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Socket, local_addr=(host, 0), remote_addr=("127.0.0.1", server_port)
    )
    return UdpPhone(transport, protocol, server_port)
