"""kill -9 under load: nothing acknowledged is lost, live calls close as interrupted.

The server runs as a real process (``acd serve``); a load of calls and agent
commands runs against it; it is killed with SIGKILL in the middle; a new
process starts on the same database. Every event of every reply received
before the kill must be in the log, the calls that were live must have ended
with outcome ``interrupted``, and the sequence must go on from the last event.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from server.harness import free_port, start_process, token, until_ready

EVENTS = "SELECT seq, entity, entity_id, to_state, data FROM events ORDER BY seq"
CENTRE: dict[str, Any] = {
    "queues": [{"id": "sales", "wrap_up_seconds": 5, "announce_every_seconds": None}],
    "agents": [{"id": f"a{i}", "queues": ["sales"]} for i in range(4)],
}


def _start(tmp_path: Path, url: str, port: int) -> subprocess.Popen[bytes]:
    return start_process(tmp_path, url, port, CENTRE)


def _admin(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token('admin')}"})


async def _staff(base: str, acknowledged: list[int]) -> None:
    async with _admin(base) as admin:
        for i in range(4):
            for step in ("login", "ready"):
                r = await admin.post(f"/v1/agents/a{i}/{step}")
                assert r.status_code == 200, r.text
                acknowledged.extend(e["seq"] for e in r.json()["events"])


async def _load(base: str, acknowledged: list[int], stop: asyncio.Event, lane: int) -> None:
    admin = _admin(base)
    try:
        n = 0
        while not stop.is_set():
            n += 1
            r = await admin.post("/v1/calls", json={"queue": "sales", "ani": f"+1{lane}{n:07d}"})
            body = r.json()
            acknowledged.append(body["seq"])
            offered = body.get("offered_to")
            if offered and n % 3:
                r = await admin.post(f"/v1/calls/{body['id']}/accept", json={"agent_id": offered})
                if r.status_code == 200:
                    acknowledged.extend(e["seq"] for e in r.json()["events"])
                    if n % 2:
                        r = await admin.post(f"/v1/calls/{body['id']}/hangup")
                        acknowledged.extend(e["seq"] for e in r.json()["events"])
                        r = await admin.post(
                            f"/v1/calls/{body['id']}/wrap-up", json={"agent_id": offered}
                        )
                        if r.status_code == 200:
                            acknowledged.extend(e["seq"] for e in r.json()["events"])
    except (httpx.TransportError, ValueError):
        pass  # the server died under us: exactly what this test does
    finally:
        await admin.aclose()


async def test_kill_9_under_load_loses_nothing_acknowledged(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = _start(tmp_path, database_url, port)
    acknowledged: list[int] = []
    try:
        await until_ready(base, first)
        await _staff(base, acknowledged)
        stop = asyncio.Event()
        loads = [asyncio.create_task(_load(base, acknowledged, stop, lane)) for lane in range(3)]
        await asyncio.sleep(1.5)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        stop.set()
        await asyncio.gather(*loads)
    finally:
        if first.poll() is None:
            first.kill()
    assert len(acknowledged) > 50, "the load did run"

    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        before = {r[0] for r in await conn.execute(sa.text("SELECT seq FROM events"))}
    await engine.dispose()

    second = _start(tmp_path, database_url, port)
    try:
        await until_ready(base, second)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token('admin')}"}
        ) as admin:
            live = (await admin.get("/v1/calls")).json()
            assert live == [], "the calls of the dead process are not live in the new one"
            r = await admin.post("/v1/calls", json={"queue": "sales"})
            assert r.status_code == 201
            new_seq = r.json()["seq"]
            new_call = r.json()["id"]
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)

    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(EVENTS))).all()
        legs = (await conn.execute(sa.text("SELECT call_id, ended_at FROM contacts"))).all()
    await engine.dispose()
    seqs = [row[0] for row in rows]
    assert set(acknowledged) <= set(seqs), "every acknowledged event survived"
    assert seqs == list(range(1, len(seqs) + 1)), "each seq once, no gap: the sequence went on"
    assert new_seq > max(before)
    ended = {row[2]: _data(row[4]) for row in rows if row[1] == "call" and row[3] == "ended"}
    started = {row[2] for row in rows if row[1] == "call" and row[3] == "arrived"}
    assert started - set(ended) == {new_call}, "every call of the dead process ended"
    interrupted = [c for c, data in ended.items() if data["outcome"] == "interrupted"]
    assert interrupted, "calls live at the kill were closed as interrupted"
    assert all(ended[c]["reason"] == "interrupted" for c in interrupted)
    assert all(leg[1] is not None for leg in legs if leg[0] != new_call), "no leg left open"


def _data(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)
