"""A desktop that drops its socket and comes back with resume_from misses nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import websockets

from server.harness import Desk, is_offer, running, token

CENTRE: dict[str, Any] = {
    "queues": [{"id": "sales", "wrap_up_seconds": 60}],
    "agents": [{"id": "ann", "queues": ["sales"]}, {"id": "bob", "queues": ["sales"]}],
}


async def _calls(centre: Any, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        created = await centre.admin.post("/v1/calls", json={"queue": "sales"})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    return ids


async def test_reconnecting_with_resume_from_replays_exactly_the_missed_events(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        watcher = await Desk.open(centre.ws_url(), token("admin"))
        ann = await Desk.open(centre.ws_url(), token("agent", "ann"))
        await ann.command("login")
        await ann.command("ready")
        (first,) = await _calls(centre, 1)
        await ann.wait_for(is_offer("ann"))
        await ann.command("accept", call_id=first)
        last_seen = ann.events()[-1]["seq"]
        await ann.close()  # the desktop drops; the call goes on

        call = (await centre.admin.get(f"/v1/calls/{first}")).json()
        assert call["state"] == "connected" and call["agent_id"] == "ann"
        agent = centre.client(token("agent", "ann"))
        assert (await agent.post(f"/v1/calls/{first}/hangup")).status_code == 200
        assert (await agent.post(f"/v1/calls/{first}/wrap-up", json={})).status_code == 200
        await _calls(centre, 3)
        await agent.post("/v1/agents/ann/not-ready", json={"reason": "lunch"})
        await asyncio.sleep(0.2)

        back = await Desk.open(centre.ws_url(resume_from=last_seen), token("agent", "ann"))
        head = watcher.events()[-1]["seq"]
        missed = [
            m
            for m in watcher.events()
            if m["seq"] > last_seen and m["data"].get("agent_id") == "ann"
        ]
        await back.wait_for(lambda m: m["seq"] == missed[-1]["seq"])
        await asyncio.sleep(0.2)
        assert not any(m["type"] == "snapshot" for m in back.messages), "no resync needed"
        assert [m["seq"] for m in back.events()] == [m["seq"] for m in missed]
        assert [m["data"] for m in back.events()] == [m["data"] for m in missed]
        assert head >= missed[-1]["seq"]
        await back.close()
        await watcher.close()


async def test_a_gap_older_than_what_is_kept_gets_a_snapshot_marked_resync(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        desk = await Desk.open(centre.ws_url(resume_from=-5), token("agent", "ann"))
        snap = await desk.wait_for(lambda m: m["type"] == "snapshot")
        assert snap["data"]["resync"] is True
        assert snap["data"]["agent"]["id"] == "ann"
        await desk.close()


async def test_a_bad_token_is_refused_at_the_handshake(database_url: str, tmp_path: Path) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        try:
            async with websockets.connect(centre.ws_url(token="nope")) as socket:
                await socket.recv()
        except (websockets.InvalidStatus, websockets.ConnectionClosed) as refused:
            assert "403" in str(refused) or "4401" in str(refused)
        else:
            raise AssertionError("a bad token got a socket")


async def test_a_desktop_resumes_across_a_restart_of_the_server(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        ann = await Desk.open(centre.ws_url(), token("agent", "ann"))
        seen = (await ann.command("login"))["result"]["seq"]
        await ann.wait_for(lambda m: m["seq"] == seen)
        ready = (await ann.command("ready"))["result"]["seq"]
        await ann.wait_for(lambda m: m["seq"] == ready)
        first_sent = [m for m in ann.events() if m["seq"] > seen]
        await ann.close()
    async with running(database_url, tmp_path, CENTRE) as centre:
        back = await Desk.open(centre.ws_url(resume_from=seen), token("agent", "ann"))
        await back.wait_for(lambda m: m["seq"] == ready)
        assert not any(m["type"] == "snapshot" for m in back.messages), "a replay, no resync"
        assert [m for m in back.events() if m["seq"] <= ready] == first_sent
        await back.close()
