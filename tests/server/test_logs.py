"""The running server's log: audit records for auth failures, admin changes and supervisor
actions, and call lines with their ids and a masked caller number.

The server runs in the test's process, so its records are caught by a handler
on the root logger that formats them with the shipped JSON formatter: what is
asserted is the line as it would be written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from databases import fresh_database
from sip_server.phone import UdpPhone
from sip_server.test_voicemail import CALLER, VOICE, leaving_a_message, one_message

from api.auth import Role, issue
from api.logs import JsonFormatter
from server.harness import SECRET, Desk, running, token

CENTRE: dict[str, Any] = {
    "queues": [{"id": "sales"}],
    "agents": [{"id": "ann", "queues": ["sales"], "teams": ["blue"]}],
}


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def audit(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("audit") and r.get("event") == event]


@pytest.fixture
def log() -> Iterator[Lines]:
    handler = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_bad_or_expired_token_is_audited_without_the_token(
    tmp_path: Path, log: Lines
) -> None:
    forged = issue("another-key-that-is-long-enough-for-hs256-too", Role.ADMIN)
    expired = issue(SECRET, Role.ADMIN, minutes=1, now=0)
    async with fresh_database("sqlite", tmp_path) as url, running(url, tmp_path, CENTRE) as centre:
        for bearer in (forged, expired, "not-a-token"):
            assert (await centre.client(bearer).get("/v1/agents")).status_code == 401
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(centre.ws_url(token=forged))
    failures = log.audit("auth_failed")
    assert [(f["channel"], f["path"]) for f in failures] == [
        ("rest", "/v1/agents"),
        ("rest", "/v1/agents"),
        ("rest", "/v1/agents"),
        ("ws", "/v1/ws"),
    ]
    assert all(f["source"].startswith("127.0.0.1:") for f in failures)
    assert "expired" in failures[1]["reason"]
    everything = "\n".join(log.lines)
    for secret in (forged, expired, forged.split(".")[2], expired.split(".")[2]):
        assert secret not in everything


async def test_an_admin_change_names_the_actor_and_the_target_and_never_the_password(
    tmp_path: Path, log: Lines
) -> None:
    async with fresh_database("sqlite", tmp_path) as url, running(url, tmp_path, CENTRE) as centre:
        admin = centre.admin
        created = await admin.post("/v1/agents", json={"id": "bob", "queues": ["sales"]})
        assert created.status_code == 201
        assert (await admin.patch("/v1/agents/bob", json={"teams": ["red"]})).status_code == 200
        credentials = {"username": "bob", "password": "s3cret-pa55"}
        assert (await admin.put("/v1/agents/bob/sip", json=credentials)).status_code == 200
        customer = {"id": "cu-1", "name": "Ada", "numbers": ["+14155550123"]}
        assert (await admin.post("/v1/customers", json=customer)).status_code == 201
        agent = centre.client(token("agent", "ann"))
        assert (await agent.post("/v1/queues", json={"id": "x"})).status_code == 403
    changes = [
        (c["actor"], c["role"], c["action"], c["target"], c["target_id"])
        for c in log.audit("admin_change")
    ]
    assert changes == [
        ("admin", "admin", "create", "agent", "bob"),
        ("admin", "admin", "update", "agent", "bob"),
        ("admin", "admin", "create", "sip_account", "bob"),
        ("admin", "admin", "create", "customer", "cu-1"),
    ]
    patched = log.audit("admin_change")[1]
    assert patched["fields"] == ["teams"]
    assert log.audit("admin_change")[3]["numbers"] == ["+*******0123"]
    (denied,) = log.audit("access_denied")
    assert (denied["actor"], denied["role"], denied["what"]) == ("ann", "agent", "POST /v1/queues")
    everything = "\n".join(log.lines)
    assert "s3cret-pa55" not in everything
    assert "4155550123" not in everything


async def test_a_supervisor_acting_for_an_agent_is_audited(tmp_path: Path, log: Lines) -> None:
    async with fresh_database("sqlite", tmp_path) as url, running(url, tmp_path, CENTRE) as centre:
        boss = centre.client(token("supervisor", teams=("blue",)))
        assert (await boss.post("/v1/agents/ann/login")).status_code == 200
        assert (await boss.post("/v1/agents/ann/not-ready", json={"reason": "coaching"})).is_success
        ann = centre.client(token("agent", "ann"))
        assert (await ann.post("/v1/agents/ann/ready")).status_code == 200  # her own: no audit
        desk = await Desk.open(centre.ws_url(), token("supervisor", teams=("blue",)))
        try:
            assert (await desk.command("logout", agent_id="ann"))["ok"]
        finally:
            await desk.close()
    actions = [
        (a["role"], a["command"], a["agent_id"], a["channel"])
        for a in log.audit("supervisor_action")
    ]
    assert actions == [
        ("supervisor", "login", "ann", "rest"),
        ("supervisor", "not_ready", "ann", "rest"),
        ("supervisor", "logout", "ann", "ws"),
    ]
    assert log.audit("supervisor_action")[0]["teams"] == ["blue"]


async def test_a_calls_lines_carry_its_id_and_a_masked_caller_number(
    tmp_path: Path, log: Lines
) -> None:
    async with fresh_database("sqlite", tmp_path) as url, running(url, tmp_path, CENTRE) as centre:
        ann = centre.client(token("agent", "ann"))
        await ann.post("/v1/agents/ann/login")
        await ann.post("/v1/agents/ann/ready")
        call = await centre.admin.post("/v1/calls", json={"queue": "sales", "ani": "0612345678"})
        call_id = call.json()["id"]
        assert (await ann.post(f"/v1/calls/{call_id}/accept")).status_code == 200
        assert (await ann.post(f"/v1/calls/{call_id}/hangup")).status_code == 200
    lines = [r for r in log.records() if r.get("call_id") == call_id]
    messages = [r["message"] for r in lines]
    assert messages[0] == "call arrived" and messages[-1] == "call ended"
    assert {"offer pending", "offer accepted", "call connected"} <= set(messages)
    (arrived,) = [r for r in lines if r["message"] == "call arrived"]
    assert (arrived["ani"], arrived["queue_id"]) == ("******5678", "sales")
    assert {r["agent_id"] for r in lines if r["message"].startswith("offer")} == {"ann"}
    assert lines[-1]["outcome"] == "answered"
    assert not any("0612345678" in line for line in log.lines)


async def test_a_wrong_sip_password_is_audited_with_its_source_and_no_credentials(
    tmp_path: Path, log: Lines
) -> None:
    async with (
        fresh_database("sqlite", tmp_path) as url,
        running(url, tmp_path, CENTRE, sip_port=0) as centre,
    ):
        credentials = {"username": "ann", "password": "pa55word!"}
        assert (await centre.admin.put("/v1/agents/ann/sip", json=credentials)).status_code == 200
        phone = await UdpPhone.open(centre.server.switchboard.port)
        try:
            assert (await phone.register("ann", "guess-one")).status == 401
            assert (await phone.register("ann", "pa55word!")).status == 200
        finally:
            phone.close()
    (failure,) = log.audit("auth_failed")
    assert (failure["channel"], failure["username"], failure["status"]) == ("sip", "ann", 401)
    assert failure["source"] == f"127.0.0.1:{phone.port}" and failure["transport"] == "udp"
    assert failure["banned"] is False
    everything = "\n".join(log.lines)
    assert "guess-one" not in everything and "pa55word!" not in everything
    assert "response=" not in everything  # no digest answer either


async def test_listening_to_marking_and_deleting_a_voicemail_are_audited(
    tmp_path: Path, log: Lines
) -> None:
    async with (
        fresh_database("sqlite", tmp_path) as url,
        leaving_a_message(url, tmp_path) as (centre, caller, media, to_leg),
    ):
        media.send_audio(VOICE[0], to_leg)
        media.press("#", to_leg)
        caller.respond(await caller.incoming("BYE", timeout=15), 200)
        message = await one_message(centre)
        boss = centre.client(token("supervisor"))
        path = f"/v1/voicemails/{message['id']}"
        assert (await boss.get(f"{path}/audio")).status_code == 200
        assert (await boss.patch(path, json={"heard": True})).status_code == 200
        assert (await boss.delete(path)).status_code == 204
    actions = [
        (a["role"], a["command"], a["call_id"], a["voicemail_id"])
        for a in log.audit("supervisor_action")
    ]
    assert actions == [
        ("supervisor", command, message["call_id"], message["id"])
        for command in ("listen_voicemail", "mark_voicemail", "delete_voicemail")
    ]
    (left,) = [r for r in log.records() if "message left" in r["message"]]
    assert left["call_id"] == message["call_id"] and left["ani"] == "*****01"
    assert not any(CALLER in line for line in log.lines)
