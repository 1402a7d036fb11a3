"""SIGTERM drains: desktops are told, new calls are refused, the call in hand finishes."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx

from server.harness import Desk, free_port, start_process, token, until_ready

CENTRE: dict[str, Any] = {
    "queues": [{"id": "sales"}],
    "agents": [{"id": "ann", "queues": ["sales"]}],
}


async def test_sigterm_waits_for_the_call_in_progress_and_refuses_new_ones(
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"sqlite+aiosqlite:///{tmp_path / 'acd.db'}"
    process = start_process(tmp_path, url, port, CENTRE, drain_seconds=20)
    try:
        await until_ready(base, process)
        ann = await Desk.open(base.replace("http", "ws") + "/v1/ws", token("agent", "ann"))
        await ann.command("login")
        await ann.command("ready")

        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token('admin')}"}
        ) as admin:
            call = (await admin.post("/v1/calls", json={"queue": "sales"})).json()
            await ann.command("accept", call_id=call["id"])

            process.send_signal(signal.SIGTERM)
            await ann.wait_for(lambda m: m["type"] == "server.draining")
            refused = await admin.post("/v1/calls", json={"queue": "sales"})
            assert refused.status_code == 503 and refused.json()["error_id"] == "draining"
            assert (await admin.get("/readyz")).status_code == 503
            await asyncio.sleep(0.5)
            assert process.poll() is None, "still serving the call in progress"
            assert (await ann.command("hangup", call_id=call["id"]))["ok"]
        for _ in range(100):
            if process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert process.returncode == 0, "stopped on its own once the call ended"
        await ann.close()
    finally:
        if process.poll() is None:
            process.kill()
