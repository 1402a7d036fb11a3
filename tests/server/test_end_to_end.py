"""A call's whole life through the real server, its WebSockets, the event log and /metrics."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from server.harness import Desk, is_offer, running, token

CENTRE: dict[str, Any] = {
    "queues": [
        {"id": "sales", "wrap_up_seconds": 120},
        {"id": "tech", "skills": {"tech": 2}, "wrap_up_seconds": 120},
    ],
    "agents": [
        {"id": "ann", "name": "Ann", "queues": ["sales"], "teams": ["blue"]},
        {"id": "ben", "name": "Ben", "skills": {"tech": 5}, "queues": ["tech"], "teams": ["blue"]},
    ],
    "customers": [
        {
            "id": "cust-1",
            "name": "Jeanne Dupont",
            "numbers": ["+33100000001"],
            "cases": [
                {"id": "case-old", "subject": "Old question", "status": "closed"},
                {"id": "case-7", "subject": "Router drops at night", "status": "open"},
            ],
        }
    ],
}


STORED = "SELECT seq, type, entity, entity_id, from_state, to_state FROM events ORDER BY seq"


async def stored_events(url: str) -> list[dict[str, Any]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text(STORED))).mappings().all()
        return [dict(r) for r in rows]
    finally:
        await engine.dispose()


def transitions(metrics_text: str) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    pattern = re.compile(
        r'^acd_transitions_total\{entity="(\w+)",from_state="(\w+)",to_state="(\w+)"\} ([0-9.e+]+)$'
    )
    for line in metrics_text.splitlines():
        m = pattern.match(line)
        if m:
            out[(m[1], m[2], m[3])] = int(float(m[4]))
    return out


async def test_a_call_is_routed_popped_held_transferred_and_wrapped_up(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        watcher = await Desk.open(centre.ws_url(), token("admin"))
        ann = await Desk.open(centre.ws_url(), token("agent", "ann"))
        ben = await Desk.open(centre.ws_url(), token("agent", "ben"))
        snap = await ann.wait_for(lambda m: m["type"] == "snapshot")
        assert snap["data"]["agent"]["status"] == "logged_out"
        for desk in (ann, ben):
            assert (await desk.command("login"))["ok"]
            assert (await desk.command("ready"))["ok"]

        created = await centre.admin.post(
            "/v1/calls",
            json={
                "ani": "+33100000001",
                "dnis": "100",
                "queue": "sales",
                "data": {"account": "42"},
            },
        )
        assert created.status_code == 201, created.text
        call_id = created.json()["id"]

        offer = await ann.wait_for(is_offer("ann"))
        pop = offer["data"]["screen_pop"]
        assert pop["customer"]["name"] == "Jeanne Dupont"
        assert pop["call"]["data"] == {"account": "42"}
        assert pop["last_case"]["id"] in ("case-7", "case-old")
        assert pop["cases"][0] == pop["last_case"]

        assert (await ann.command("accept", call_id=call_id))["ok"]
        held = await centre.client(token("agent", "ann")).post(f"/v1/calls/{call_id}/hold")
        assert held.status_code == 200, held.text
        moved = await ann.command(
            "transfer", call_id=call_id, queue_id="tech", note="router reset done", case_id="case-7"
        )
        assert moved["ok"], moved

        second = await ben.wait_for(is_offer("ben"))
        pop = second["data"]["screen_pop"]
        assert pop["transfer"]["note"] == "router reset done"
        assert pop["transfer"]["from_agent_id"] == "ann"
        assert pop["cases"][0]["id"] == "case-7"
        assert pop["customer"]["id"] == "cust-1"

        assert (await ben.command("accept", call_id=call_id))["ok"]
        assert (await ben.command("hangup", call_id=call_id))["ok"]
        done = await ben.command("wrap_up", call_id=call_id, disposition="fixed", resolved=True)
        assert done["ok"], done
        assert done["result"]["agent"]["state"] == "idle"
        assert (await ann.command("wrap_up", disposition="transferred"))["ok"]
        last_seq = done["result"]["seq"]
        await watcher.wait_for(lambda m: m.get("seq") is not None and m["seq"] >= last_seq)

        metrics = (await centre.admin.get("/metrics")).text
        for desk in (watcher, ann, ben):
            await desk.close()

    rows = await stored_events(database_url)
    seqs = [r["seq"] for r in rows]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "one event per seq, none missing"
    feed = [m for m in watcher.events() if m["seq"] > snap["seq"]]
    stored_after = [r for r in rows if r["seq"] > snap["seq"]]
    assert [m["seq"] for m in feed] == [r["seq"] for r in stored_after], "the feed is the log"
    assert [m["type"] for m in feed] == [r["type"] for r in stored_after]

    call_path = [(r["from_state"], r["to_state"]) for r in rows if r["entity_id"] == call_id]
    assert call_path == [
        (None, "arrived"),
        ("arrived", "queued"),
        ("queued", "offered"),
        ("offered", "connected"),
        ("connected", "held"),
        ("held", "queued"),
        ("queued", "offered"),
        ("offered", "connected"),
        ("connected", "ended"),
    ]
    counted = transitions(metrics)
    logged = Counter(
        (r["entity"], r["from_state"] or "none", r["to_state"])
        for r in rows
        if r["entity"] != "agent"
    )
    for key, n in logged.items():
        assert counted[key] == n, key


WARM: dict[str, Any] = {
    "queues": [{"id": "sales", "wrap_up_seconds": 60}],
    "agents": [
        {"id": "ann", "queues": ["sales"], "teams": ["blue"]},
        {"id": "ben", "queues": ["sales"], "teams": ["blue"]},
        {"id": "cat", "queues": ["sales"], "teams": ["red"]},
    ],
}


async def test_a_warm_transfer_and_a_conference_over_the_websocket(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, WARM) as centre:
        ann = await Desk.open(centre.ws_url(), token("agent", "ann"))
        ben = await Desk.open(centre.ws_url(), token("agent", "ben"))
        blue = await Desk.open(centre.ws_url(), token("supervisor", teams=("blue",)))
        await ann.command("login")
        await ann.command("ready")
        first = (await centre.admin.post("/v1/calls", json={"queue": "sales"})).json()["id"]
        await ann.wait_for(is_offer("ann"))
        await ann.command("accept", call_id=first)
        await ben.command("login")
        await ben.command("ready")

        asked = await ann.command(
            "transfer", call_id=first, agent_id="ben", mode="consult", note="VIP"
        )
        assert asked["ok"], asked
        consult = await ben.wait_for(is_offer("ben"))
        assert consult["data"]["screen_pop"]["transfer"]["note"] == "VIP"
        assert (await ben.command("accept", call_id=first))["ok"]
        joined = await ann.command("conference", call_id=first)
        assert joined["ok"], joined
        not_main = await ben.command("hold", call_id=first)
        assert not not_main["ok"]
        left = await ann.command("leave_conference")
        assert left["ok"], left
        call = (await centre.admin.get(f"/v1/calls/{first}")).json()
        assert call["agent_id"] == "ben" and call["state"] == "connected"

        second = (await centre.admin.post("/v1/calls", json={"queue": "sales"})).json()
        assert second["offered_to"] is None  # ann wraps up, ben talks: it waits
        await ann.command("wrap_up")
        await ann.wait_for(is_offer("ann"))
        await ann.command("accept", call_id=second["id"])
        busy = await ann.command("transfer", call_id=second["id"], agent_id="ben", mode="consult")
        assert busy["error"]["error_id"] == "agent_unavailable"
        await ben.command("hangup", call_id=first)
        await ben.command("wrap_up", disposition="vip_served", resolved=True)
        asked = await ann.command("transfer", call_id=second["id"], agent_id="ben", mode="consult")
        assert asked["ok"], asked
        await ben.wait_for(lambda m: is_offer("ben")(m) and m["data"]["call_id"] == second["id"])
        await ben.command("accept", call_id=second["id"])
        handed = await ann.command("complete_transfer", call_id=second["id"])
        assert handed["ok"], handed
        call = (await centre.admin.get(f"/v1/calls/{second['id']}")).json()
        assert call["agent_id"] == "ben"

        last = handed["result"]["seq"]
        await blue.wait_for(lambda m: m.get("seq") == last or (m.get("seq") or 0) > last)
        seen = {m["data"].get("agent_id") for m in blue.events()}
        assert {"ann", "ben"} <= seen and "cat" not in seen  # a supervisor sees their teams
        for desk in (ann, ben, blue):
            await desk.close()
