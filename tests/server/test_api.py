"""The REST API's rules: authentication, an agent's own calls, 409s, idempotency, health."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from api.auth import Role, issue
from server.harness import SECRET, running, token

CENTRE: dict[str, Any] = {
    "queues": [{"id": "sales"}],
    "agents": [
        {"id": "ann", "queues": ["sales"], "teams": ["blue"]},
        {"id": "bob", "queues": ["sales"], "teams": ["red"]},
    ],
}


async def test_every_endpoint_but_health_and_metrics_needs_a_token(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        anonymous = centre.client("not-a-token")
        for path in ("/v1/agents", "/v1/queues", "/v1/calls", "/v1/customers"):
            response = await anonymous.get(path)
            assert response.status_code == 401, path
            assert response.json()["error_id"] == "unauthorized"
        assert (await anonymous.get("/livez")).status_code == 200
        assert (await anonymous.get("/readyz")).json()["status"] == "ready"
        assert (await anonymous.get("/metrics")).status_code == 200
        expired = centre.client(issue(SECRET, Role.ADMIN, minutes=1, now=0))
        assert (await expired.get("/v1/agents")).status_code == 401


async def test_an_agent_acts_only_on_their_own_state_and_calls(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        ann = centre.client(token("agent", "ann"))
        bob = centre.client(token("agent", "bob"))
        refused = await ann.post("/v1/agents/bob/login")
        assert refused.status_code == 403
        assert refused.json()["error_id"] == "forbidden"
        assert (await ann.post("/v1/agents/ann/login")).status_code == 200
        assert (await ann.post("/v1/agents/ann/ready")).status_code == 200
        call = (await centre.admin.post("/v1/calls", json={"queue": "sales"})).json()
        assert call["offered_to"] == "ann"
        stolen = await bob.post(f"/v1/calls/{call['id']}/accept")
        assert stolen.status_code == 409  # not offered to bob
        assert (await ann.post(f"/v1/calls/{call['id']}/accept")).status_code == 200
        assert (await bob.post(f"/v1/calls/{call['id']}/hangup")).json()["error_id"] == "forbidden"
        assert (await bob.post(f"/v1/calls/{call['id']}/hold")).status_code == 403
        assert (await ann.post(f"/v1/calls/{call['id']}/hold")).status_code == 200
        # a supervisor of another team can't create calls? supervisors may; agents may not
        assert (await ann.post("/v1/calls", json={"queue": "sales"})).status_code == 403


async def test_a_wrong_state_command_is_a_409_with_the_current_state(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        ann = centre.client(token("agent", "ann"))
        response = await ann.post("/v1/agents/ann/ready")
        assert response.status_code == 409
        body = response.json()
        assert body["error_id"] == "logged_out"
        assert body["state"] == "logged_out"
        missing = await centre.admin.post("/v1/calls", json={"queue": "nowhere"})
        assert missing.status_code == 404 and missing.json()["error_id"] == "unknown_queue"
        bad = await centre.admin.post("/v1/calls", json={"queue": "sales", "priority": "high"})
        assert bad.status_code == 422 and bad.json()["error_id"] == "invalid_request"


async def test_a_repeated_command_id_returns_the_first_reply(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        ann = centre.client(token("agent", "ann"))
        key = {"Idempotency-Key": "k-1"}
        first = await ann.post("/v1/agents/ann/login", headers=key)
        again = await ann.post("/v1/agents/ann/login", headers=key)
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        fresh = await ann.post("/v1/agents/ann/login", headers={"Idempotency-Key": "k-2"})
        assert fresh.status_code == 409  # a new id is a new command: already logged in
        both = await asyncio.gather(
            ann.post("/v1/agents/ann/ready", headers={"Idempotency-Key": "k-3"}),
            ann.post("/v1/agents/ann/ready", headers={"Idempotency-Key": "k-3"}),
        )
        assert both[0].json() == both[1].json()


async def test_queue_stats_show_waiting_calls_and_agents_by_state(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        for _ in range(2):
            assert (
                await centre.admin.post("/v1/calls", json={"queue": "sales"})
            ).status_code == 201
        stats = (await centre.admin.get("/v1/queues/sales/stats")).json()
        assert stats["waiting"] == 2
        assert stats["oldest_wait_seconds"] >= 0
        assert stats["agents"]["logged_out"] == 2
        metrics = (await centre.admin.get("/metrics")).text
        assert 'acd_calls_waiting{queue="sales"} 2.0' in metrics
        assert "+33" not in metrics


async def test_draining_refuses_new_calls_and_tells_readiness(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        drain = asyncio.create_task(centre.server.drain(1.0))
        await asyncio.sleep(0.05)
        refused = await centre.admin.post("/v1/calls", json={"queue": "sales"})
        assert refused.status_code == 503 and refused.json()["error_id"] == "draining"
        ready = await centre.admin.get("/readyz")
        assert ready.status_code == 503 and "draining" in ready.json()["reasons"]
        await drain


async def test_the_screen_pop_follows_numbers_added_and_removed_while_running(
    database_url: str, tmp_path: Path
) -> None:
    """Caller numbers are filtered in memory: the filter follows every change of the directory."""
    async with running(database_url, tmp_path, CENTRE) as centre:
        admin = centre.admin

        async def customer_of_a_call_from(number: str) -> Any:
            call = (await admin.post("/v1/calls", json={"queue": "sales", "ani": number})).json()
            found = (await admin.get(f"/v1/calls/{call['id']}")).json()["customer_id"]
            await admin.delete(f"/v1/calls/{call['id']}")
            return found

        assert await customer_of_a_call_from("+4930111") is None
        created = await admin.post("/v1/customers", json={"id": "k1", "numbers": ["+4930111"]})
        assert created.status_code == 201
        assert await customer_of_a_call_from("+4930111") == "k1"
        added = await admin.post("/v1/customers/k1/numbers", json={"number": "+4930222"})
        assert added.status_code == 201
        assert await customer_of_a_call_from("+4930222") == "k1"
        assert (await admin.delete("/v1/numbers/+4930111")).status_code == 204
        assert await customer_of_a_call_from("+4930111") is None
        taken = await admin.post("/v1/customers", json={"id": "k2", "numbers": ["+4930222"]})
        assert taken.status_code == 409  # a refused change leaves the number with k1
        assert await customer_of_a_call_from("+4930222") == "k1"


async def test_an_agents_sip_credentials_are_kept_as_digest_hashes_only(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        admin = centre.admin
        put = await admin.put(
            "/v1/agents/ann/sip", json={"username": "ann", "password": "pa55word!"}
        )
        assert put.status_code == 200
        assert put.json() == {
            "agent_id": "ann",
            "username": "ann",
            "realm": "acd",
            "algorithms": ["MD5", "SHA-256"],
        }
        stored = await centre.server.database.agent_sip("ann")
        assert stored is not None and "pa55word!" not in str(stored)
        assert sorted(stored[1]) == ["MD5", "SHA-256"]
        taken = await admin.put("/v1/agents/bob/sip", json={"username": "ann", "password": "x" * 8})
        assert taken.status_code == 409 and taken.json()["error_id"] == "sip_username_taken"
        short = await admin.put("/v1/agents/bob/sip", json={"username": "bob", "password": "short"})
        assert short.status_code == 422
        ann = centre.client(token("agent", "ann"))
        assert (await ann.get("/v1/agents/ann/sip")).json()["username"] == "ann"
        refused = await ann.put("/v1/agents/ann/sip", json={"username": "a", "password": "x" * 8})
        assert refused.status_code == 403  # credentials are an admin's business
        assert (await admin.delete("/v1/agents/ann/sip")).status_code == 204
        gone = await admin.get("/v1/agents/ann/sip")
        assert gone.status_code == 404 and gone.json()["error_id"] == "no_sip_account"


async def test_todays_service_level_measures_by_a_threshold_changed_during_the_day(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        ann = centre.client(token("agent", "ann"))
        assert (await ann.post("/v1/agents/ann/login")).status_code == 200  # the day has begun
        changed = await centre.admin.put("/v1/queues/sales", json={"id": "sales", "sl_seconds": 1})
        assert changed.status_code == 200, changed.text
        call = (await centre.admin.post("/v1/calls", json={"queue": "sales"})).json()
        await asyncio.sleep(1.2)  # waits longer than the new threshold, not the old 20 s
        assert (await ann.post("/v1/agents/ann/ready")).status_code == 200
        assert (await ann.post(f"/v1/calls/{call['id']}/accept")).status_code == 200
        assert (await ann.post(f"/v1/calls/{call['id']}/hangup")).status_code == 200
        stats = (await centre.admin.get("/v1/queues/sales/stats")).json()
        assert stats["service_level_today"] == 0.0
