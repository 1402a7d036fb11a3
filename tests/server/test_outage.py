"""The database goes away under load: routing goes on, and every event lands exactly once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from databases import PrivatePostgres
from sqlalchemy.ext.asyncio import create_async_engine

from server.harness import running, token

CENTRE: dict[str, Any] = {
    "queues": [{"id": "sales", "announce_every_seconds": None}],
    "agents": [{"id": f"a{i}", "queues": ["sales"]} for i in range(3)],
}


async def _answer_calls(centre: Any, stop: asyncio.Event, counts: dict[str, int]) -> None:
    """Inject calls and have the offered agent answer and hang up, until told to stop."""
    while not stop.is_set():
        created = await centre.admin.post("/v1/calls", json={"queue": "sales"})
        assert created.status_code == 201, created.text
        counts["calls"] += 1
        call = created.json()
        if call["offered_to"]:
            agent = centre.client(token("agent", call["offered_to"]))
            assert (await agent.post(f"/v1/calls/{call['id']}/accept")).status_code == 200
            assert (await agent.post(f"/v1/calls/{call['id']}/hangup")).status_code == 200
            counts["answered"] += 1
            await agent.aclose()
        else:
            await centre.admin.delete(f"/v1/calls/{call['id']}")


async def test_routing_goes_on_through_an_outage_and_every_event_lands_once(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    url = private_postgres.url
    async with running(url, tmp_path, CENTRE) as centre:
        for i in range(3):
            for step in ("login", "ready"):
                assert (await centre.admin.post(f"/v1/agents/a{i}/{step}")).status_code == 200
        counts = {"calls": 0, "answered": 0}
        stop = asyncio.Event()
        load = asyncio.create_task(_answer_calls(centre, stop, counts))
        await asyncio.sleep(0.5)

        await asyncio.to_thread(private_postgres.stop)
        during = counts["answered"]
        outage_began = time.monotonic()
        not_ready = False
        while time.monotonic() - outage_began < 3.0:
            ready = await centre.admin.get("/readyz")
            not_ready = not_ready or ready.status_code == 503
            await asyncio.sleep(0.1)
        answered_in_outage = counts["answered"] - during
        await asyncio.to_thread(private_postgres.start)

        await asyncio.sleep(0.5)
        stop.set()
        await load
        journal = centre.server.journal
        deadline = time.monotonic() + 20
        while journal.spooled or not journal.database_up:
            assert time.monotonic() < deadline, "the spool never drained"
            await asyncio.sleep(0.1)
        last = centre.server.runtime.seq
        assert (await centre.admin.get("/readyz")).status_code == 200

    assert not_ready, "/readyz said not ready while the database was down"
    assert answered_in_outage > 0, "calls were routed and answered during the outage"
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        seqs = [r[0] for r in await conn.execute(sa.text("SELECT seq FROM events ORDER BY seq"))]
    await engine.dispose()
    assert seqs == list(range(1, last + 1)), "every event exactly once, in order"
