"""Callbacks through the real server without SIP: requested over REST, dialled by the agent.

A desktop-only agent gets the callback task with its number, dials it
themselves, and says on the desktop whether the customer answered; the
contact rows in the database record the task like a call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from server.harness import Desk, is_offer, running, token

CENTRE: dict[str, Any] = {
    "queues": [{"id": "sales"}],
    "agents": [{"id": "bob", "queues": ["sales"]}],
}


async def contact_rows(url: str, call_id: str) -> list[dict[str, Any]]:
    engine = create_async_engine(url)
    query = sa.text(
        "SELECT enqueued_at, answered_at, agent_id, outcome, ended_reason"
        " FROM contacts WHERE call_id = :id ORDER BY leg"
    )
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(query, {"id": call_id})).mappings().all()
        return [dict(r) for r in rows]
    finally:
        await engine.dispose()


async def test_a_desktop_agent_dials_a_callback_and_reports_the_customer_answered(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        admin = centre.admin
        bob = centre.client(token("agent", "bob"))
        desk = await Desk.open(centre.ws_url(), token("agent", "bob"))
        try:
            created = await admin.post("/v1/calls", json={"queue": "sales", "ani": "5550001"})
            call_id = created.json()["id"]
            asked = await admin.post(f"/v1/calls/{call_id}/callback", json={"number": "5550009"})
            assert asked.status_code == 200
            assert (asked.json()["state"], asked.json()["position"]) == ("callback_queued", 1)

            await bob.post("/v1/agents/bob/login")
            await bob.post("/v1/agents/bob/ready")
            offered = await desk.wait_for(is_offer("bob"))
            assert (offered["data"]["call_id"], offered["data"]["callback_number"]) == (
                call_id,
                "5550009",
            )
            assert (await bob.post(f"/v1/calls/{call_id}/accept")).status_code == 200
            assert (await bob.get(f"/v1/calls/{call_id}")).json()["state"] == "dialing"
            reached = await bob.post(f"/v1/calls/{call_id}/callback-reached")
            assert reached.status_code == 200
            assert (await bob.get(f"/v1/calls/{call_id}")).json()["state"] == "connected"
            assert (await bob.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
            ended = await desk.wait_for(
                lambda m: (
                    m["type"] == "call.state_changed"
                    and m["data"]["call_id"] == call_id
                    and m["data"]["to_state"] == "ended"
                )
            )
            assert ended["data"]["outcome"] == "answered"
            await centre.stop()  # the journal is flushed
            (row,) = await contact_rows(database_url, call_id)
            assert (row["agent_id"], row["outcome"]) == ("bob", "answered")
            assert row["enqueued_at"] is not None and row["answered_at"] is not None
        finally:
            await desk.close()
            await bob.aclose()


async def test_a_desktop_agent_reports_a_callback_that_reached_nobody(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        bob = centre.client(token("agent", "bob"))
        try:
            await bob.post("/v1/agents/bob/login")
            await bob.post("/v1/agents/bob/ready")
            booked = {"queue": "sales", "callback_number": "+445550010"}
            call_id = (await centre.admin.post("/v1/calls", json=booked)).json()["id"]
            assert (await bob.post(f"/v1/calls/{call_id}/accept")).status_code == 200
            failed = await bob.post(f"/v1/calls/{call_id}/callback-failed")
            assert failed.status_code == 200
            assert (await bob.get(f"/v1/calls/{call_id}")).status_code == 404  # ended
            await centre.stop()  # the journal is flushed
            (row,) = await contact_rows(database_url, call_id)
            assert (row["outcome"], row["ended_reason"]) == ("callback_failed", "no_answer")
            assert row["enqueued_at"] is not None and row["answered_at"] is not None
        finally:
            await bob.aclose()


async def test_callbacks_with_numbers_that_cannot_be_dialled_are_refused(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        admin = centre.admin
        bad = await admin.post("/v1/calls", json={"queue": "sales", "callback_number": "12;x"})
        assert bad.status_code == 422
        call_id = (await admin.post("/v1/calls", json={"queue": "sales"})).json()["id"]
        bad = await admin.post(f"/v1/calls/{call_id}/callback", json={"number": "not a number"})
        assert bad.status_code == 422
        unknown = await admin.post("/v1/calls/nope/callback", json={"number": "5550000"})
        assert unknown.status_code == 404


async def test_a_waiting_callback_is_put_back_in_its_place_after_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        first = await centre.admin.post(
            "/v1/calls", json={"queue": "sales", "ani": "5550001", "callback_number": "5550001"}
        )
        caller = await centre.admin.post("/v1/calls", json={"queue": "sales", "ani": "5550002"})
        booked, waiting = first.json(), caller.json()
    async with running(database_url, tmp_path, CENTRE) as centre:
        calls = {c["id"]: c for c in (await centre.admin.get("/v1/calls")).json()}
        assert list(calls) == [booked["id"]]  # the caller's line died with the process
        task = calls[booked["id"]]
        assert (task["state"], task["callback_number"]) == ("callback_queued", "5550001")
        assert task["enqueued_at"] == booked["enqueued_at"]
        bob = centre.client(token("agent", "bob"))
        desk = await Desk.open(centre.ws_url(), token("agent", "bob"))
        try:
            await bob.post("/v1/agents/bob/login")
            await bob.post("/v1/agents/bob/ready")
            offered = await desk.wait_for(is_offer("bob"))
            assert (offered["data"]["call_id"], offered["data"]["callback_number"]) == (
                booked["id"],
                "5550001",
            )
        finally:
            await desk.close()
            await bob.aclose()
    assert waiting["state"] == "queued"
