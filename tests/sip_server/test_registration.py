"""Agents' phones register with the running server; the core hears when a phone comes and goes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from server.harness import running, token

from sip_server.phone import UdpPhone

CENTRE: dict[str, Any] = {
    "queues": [{"id": "sales"}],
    "agents": [{"id": "ann", "queues": ["sales"]}],
}


async def test_options_say_the_server_takes_calls_until_it_drains(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE, sip_port=0) as centre:
        phone = await UdpPhone.open(centre.server.switchboard.port)
        try:
            answer = await phone.request("OPTIONS", "probe")
            assert answer.status == 200 and "INVITE" in answer.headers.get("Allow", "")
            centre.server.draining = True
            assert (await phone.request("OPTIONS", "probe")).status == 503
        finally:
            phone.close()


async def test_a_registered_phone_makes_its_agent_reachable_and_unregistering_does_not(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE, sip_port=0) as centre:
        admin = centre.admin
        creds = {"username": "ann", "password": "pa55word!"}
        assert (await admin.put("/v1/agents/ann/sip", json=creds)).status_code == 200
        ann = centre.client(token("agent", "ann"))
        await ann.post("/v1/agents/ann/login")
        await ann.post("/v1/agents/ann/ready")
        phone = await UdpPhone.open(centre.server.switchboard.port)
        try:
            assert (await phone.register("ann", "wrong-password")).status == 401
            assert (await phone.register("ann", "pa55word!")).status == 200
            assert (await phone.register("ann", "pa55word!", expires=0)).status == 200

            async def state() -> str:
                return str((await admin.get("/v1/agents/ann")).json()["live"]["state"])

            for _ in range(100):
                if await state() == "not_responding":
                    break
                await asyncio.sleep(0.02)
            assert await state() == "not_responding"  # no phone: offers would ring nothing
            assert (await phone.register("ann", "pa55word!")).status == 200
            for _ in range(100):
                if await state() == "idle":
                    break
                await asyncio.sleep(0.02)
            assert await state() == "idle"
        finally:
            phone.close()
