"""Schemathesis over the OpenAPI schema: no 500, and every response as the schema says.

The server runs as a real process on a loopback port, on SQLite, with a small
centre; every operation is called with generated requests (valid ones and, by
schemathesis's own choice, some that break the schema) as an admin.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from server.harness import SECRET, free_port, token

CENTRE = {
    "queues": [{"id": "sales"}, {"id": "tech", "skills": {"tech": 2}}],
    "agents": [
        {"id": "ann", "queues": ["sales"], "teams": ["blue"]},
        {"id": "ben", "skills": {"tech": 4}, "queues": ["tech"], "teams": ["blue"]},
    ],
    "customers": [{"id": "cust-1", "name": "Jeanne", "numbers": ["+33100000001"]}],
}
EXAMPLES = int(os.environ.get("ACD_SCHEMA_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("schema")
    (root / "centre.yaml").write_text(yaml.safe_dump(CENTRE))
    port = free_port()
    env = {**os.environ, "ACD_JWT_SECRET": SECRET, "ACD_SPOOL_PATH": str(root / "acd.spool")}
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "acd.cli", "serve",
            "--config", str(root / "centre.yaml"),
            "--port", str(port),
            "--database-url", f"sqlite+aiosqlite:///{root / 'acd.db'}",
        ],
        env={**env, "ACD_DRAIN_SECONDS": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert process.poll() is None, (root / "server.log").read_text()
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(20)
        log.close()
        server_log = (root / "server.log").read_text()
        assert "Traceback" not in server_log, server_log[-5000:]


ADMIN = {"Authorization": f"Bearer {token('admin')}"}


def test_no_operation_answers_500_or_breaks_its_schema(live_server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server}/openapi.json")
    failures: list[str] = []
    operations = 0
    for found in schema.get_all_operations():
        operation = found.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=ADMIN, excluded_checks=[positive_data_acceptance])

        try:
            call()
        except Exception as failure:  # one operation's failure must not hide the others'
            failures.append(f"{operation.method.upper()} {operation.path}: {failure}")
    assert operations > 30
    assert not failures, "\n\n".join(failures)


def test_the_schema_documents_every_route(live_server: str) -> None:
    document = httpx.get(f"{live_server}/openapi.json").json()
    paths = set(document["paths"])
    for path in (
        "/v1/calls",
        "/v1/agents/{agent_id}/login",
        "/v1/calls/{call_id}/transfer",
        "/v1/voicemails/{voicemail_id}/audio",
    ):
        assert path in paths
