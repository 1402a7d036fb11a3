"""GET /v1/reports on a running server, SQLite and PostgreSQL: the fixture day's figures
(tests/reportday.py) read back from the database, CSV, roles, bad parameters, a live call."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from databases import PrivatePostgres
from reportday import fixture_day
from test_reports import fixture_report

from acd.report_formats import KEY_COLUMNS
from acd.reports import Dimension
from api.store import migrate
from api.store.database import Database
from api.store.journal import EventJournal
from server.harness import running, token

CENTRE: dict[str, Any] = {
    "queues": [
        {"id": "sales", "sl_seconds": 20, "wrap_up_seconds": 60},
        {"id": "support", "sl_seconds": 30},
    ],
    "agents": [
        {"id": "a1", "queues": ["sales", "support"], "teams": ["blue"]},
        {"id": "a2", "queues": ["sales", "support"], "teams": ["blue", "green"]},
        {"id": "a3", "queues": ["support"], "teams": ["green"]},
    ],
}
DAY = {"from": "2026-12-01T09:00", "to": "2026-12-01T10:30", "tz": "Europe/Paris"}
FIXTURE = {"short_abandon_seconds": 10.0, "fcr_window_hours": 1.0}


async def write_fixture_day(database_url: str, tmp_path: Path) -> None:
    """The fixture day's events into the database, through the server's own journal writer."""
    await migrate.upgrade(database_url)
    database = Database(database_url)
    await database.open()
    try:
        journal = EventJournal(database, tmp_path / "fixture.spool", lambda _: None)
        await journal.recover()
        journal.append(fixture_day())
        await journal.close()
        assert journal.database_up
    finally:
        await database.close()


def plain(value: Any) -> Any:
    return pytest.approx(value) if isinstance(value, float) else value


async def test_the_fixture_days_report_comes_back_from_the_database_as_computed_by_hand(
    database_url: str, tmp_path: Path
) -> None:
    await write_fixture_day(database_url, tmp_path)
    expected = fixture_report()
    async with running(database_url, tmp_path, CENTRE, **FIXTURE) as centre:
        for dimension in Dimension:
            response = await centre.admin.get(f"/v1/reports/{dimension.value}", params=DAY)
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["from"], body["to"]) == (
                "2026-12-01T09:00:00+01:00",
                "2026-12-01T10:30:00+01:00",
            )
            rows = body["rows"]
            assert len(rows) == len(expected[dimension])
            for got, want in zip(rows, expected[dimension], strict=True):
                figures = dict(want.figures)
                if (dimension, got["interval_start"], want.key) == (
                    Dimension.QUEUES, "2026-12-01T10:00:00+01:00", "sales"
                ):  # fmt: skip
                    # c11, still waiting when the data ended, was closed as interrupted
                    # when this server started: in no figure any more.
                    assert (got["in_progress"], figures["in_progress"]) == (0, 1)
                    figures["in_progress"] = 0
                assert {k: got[k] for k in figures} == {k: plain(v) for k, v in figures.items()}
        sales = (await centre.admin.get("/v1/reports/queues", params=DAY)).json()["rows"][0]
        assert sales["interval_start"] == "2026-12-01T09:00:00+01:00"
        assert sales["queue_id"] == "sales"
        assert (sales["offered"], sales["answered"], sales["abandoned"]) == (7, 3, 1)
        assert sales["service_level"] == pytest.approx(2 / 7)
        assert sales["asa_seconds"] == pytest.approx(55 / 3)

        # A range that ends while c10 (arrived 09:45) is still talking: its end and its
        # wrap-up after 10:00 still count in its row; a1's time after 10:00 does not.
        early = DAY | {"to": "2026-12-01T10:00"}
        queues = (await centre.admin.get("/v1/reports/queues", params=early)).json()["rows"]
        assert (queues[2]["interval_start"], queues[2]["queue_id"]) == (
            "2026-12-01T09:30:00+01:00", "sales"
        )  # fmt: skip
        assert (queues[2]["avg_talk_seconds"], queues[2]["aht_seconds"]) == (955, 975)
        agents = (await centre.admin.get("/v1/reports/agents", params=early)).json()["rows"]
        assert (agents[3]["agent_id"], agents[3]["talk_seconds"]) == ("a1", 855)

        daily = await centre.admin.get("/v1/reports/queues", params=DAY | {"interval": "day"})
        (day_sales,) = [r for r in daily.json()["rows"] if r["queue_id"] == "sales"]
        assert (day_sales["offered"], day_sales["answered"]) == (9, 4)


async def test_csv_has_a_column_per_figure_and_empty_cells_for_no_ratio(
    database_url: str, tmp_path: Path
) -> None:
    await write_fixture_day(database_url, tmp_path)
    async with running(database_url, tmp_path, CENTRE, **FIXTURE) as centre:
        response = await centre.admin.get("/v1/reports/queues", params=DAY | {"format": "csv"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [(r["interval_start"][11:16], r["queue_id"]) for r in rows] == [
            ("09:00", "sales"), ("09:00", "support"), ("09:30", "sales"),
            ("09:30", "support"), ("10:00", "sales"), ("10:00", "support"),
        ]  # fmt: skip
        assert (rows[0]["offered"], rows[0]["abandon_le_5"], rows[0]["abandon_le_60"]) == (
            "7", "1", "1"
        )  # fmt: skip
        assert float(rows[0]["service_level"]) == pytest.approx(2 / 7)
        assert rows[1]["service_level"] == ""  # support had no call in the first half hour
        teams = await centre.admin.get("/v1/reports/teams", params=DAY | {"format": "csv"})
        header = teams.text.splitlines()[0].split(",")
        assert header[:3] == ["interval_start", "interval_end", "team"]
        assert "occupancy" in header and "calls_per_hour" in header


async def test_reports_are_for_supervisors_of_the_teams_and_admins(
    database_url: str, tmp_path: Path
) -> None:
    await write_fixture_day(database_url, tmp_path)
    async with running(database_url, tmp_path, CENTRE, **FIXTURE) as centre:
        agent = centre.client(token("agent", "a1"))
        refused = await agent.get("/v1/reports/queues", params=DAY)
        assert refused.status_code == 403
        blue = centre.client(token("supervisor", teams=("blue",)))
        agents = (await blue.get("/v1/reports/agents", params=DAY)).json()["rows"]
        assert {r["agent_id"] for r in agents} == {"a1", "a2"}
        teams = (await blue.get("/v1/reports/teams", params=DAY)).json()["rows"]
        assert {r["team"] for r in teams} == {"blue"}
        queues = (await blue.get("/v1/reports/queues", params=DAY)).json()["rows"]
        assert {r["queue_id"] for r in queues} == {"sales", "support"}  # a1 and a2 serve both
        everyone = centre.client(token("supervisor"))
        agents = (await everyone.get("/v1/reports/agents", params=DAY)).json()["rows"]
        assert {r["agent_id"] for r in agents} == {"a1", "a2", "a3"}


@pytest.mark.parametrize(
    ("params", "says"),
    [
        (DAY | {"from": "yesterday"}, "ISO 8601"),
        (DAY | {"to": "2026-12-01T08:00"}, "before"),
        (DAY | {"tz": "Mars/Olympus"}, "time zone"),
        (DAY | {"tz": "../../etc/passwd"}, "time zone"),
        (DAY | {"interval": "fortnight"}, "interval"),
        (DAY | {"format": "xml"}, "format"),
        (DAY | {"from": "1900-01-01"}, "1970"),
        (DAY | {"from": "2001-01-01", "to": "2026-01-01", "interval": "day"}, "three years"),
        (DAY | {"from": "2024-01-01", "to": "2026-01-01"}, "half hours"),
        ({"from": DAY["from"]}, "to"),
    ],
)
async def test_bad_parameters_are_a_422_that_says_why(
    params: dict[str, str], says: str, tmp_path: Path
) -> None:
    async with running(f"sqlite+aiosqlite:///{tmp_path / 'acd.db'}", tmp_path, CENTRE) as centre:
        response = await centre.admin.get("/v1/reports/queues", params=params)
        assert response.status_code == 422, response.text
        assert says in response.json()["message"]
        unknown = await centre.admin.get("/v1/reports/calls", params=DAY)
        assert unknown.status_code == 422


async def test_a_call_made_now_is_in_todays_report_at_once(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE) as centre:
        a1 = centre.client(token("agent", "a1"))
        assert (await a1.post("/v1/agents/a1/login")).status_code == 200
        assert (await a1.post("/v1/agents/a1/ready")).status_code == 200
        call = (await centre.admin.post("/v1/calls", json={"queue": "sales"})).json()
        assert call["offered_to"] == "a1"
        assert (await a1.post(f"/v1/calls/{call['id']}/accept")).status_code == 200
        assert (await a1.post(f"/v1/calls/{call['id']}/hangup")).status_code == 200
        done = await a1.post(f"/v1/calls/{call['id']}/wrap-up", json={"resolved": True})
        assert done.status_code == 200, done.text
        today = time.strftime("%Y-%m-%d", time.gmtime())
        params = {"from": today, "to": f"{today}T23:59:59", "interval": "day"}
        queues = (await centre.admin.get("/v1/reports/queues", params=params)).json()["rows"]
        (sales,) = [r for r in queues if r["queue_id"] == "sales"]
        assert (sales["offered"], sales["answered"], sales["service_level"]) == (1, 1, 1.0)
        assert sales["first_call_resolution"] == 1.0
        agents = (await centre.admin.get("/v1/reports/agents", params=params)).json()["rows"]
        (a1_row,) = [r for r in agents if r["agent_id"] == "a1"]
        assert a1_row["handled"] == 1
        assert a1_row["logged_in_seconds"] > 0


def acd_report(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acd.cli", "report", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


async def test_acd_report_reads_the_same_database_and_gives_the_same_figures(
    database_url: str, tmp_path: Path
) -> None:
    await write_fixture_day(database_url, tmp_path)
    await write_configuration(database_url)
    env = {"ACD_SHORT_ABANDON_SECONDS": "10", "ACD_FCR_WINDOW_HOURS": "1"}
    where = ["--from", DAY["from"], "--to", DAY["to"], "--tz", DAY["tz"]]
    expected = fixture_report()
    for dimension in Dimension:
        done = await asyncio.to_thread(
            acd_report, dimension.value, *where, "--database-url", database_url,
            "--format", "json", **env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout)["rows"]
        assert [r[KEY_COLUMNS[dimension]] for r in rows] == [r.key for r in expected[dimension]]
        for got, want in zip(rows, expected[dimension], strict=True):  # c11 still waiting
            assert {k: got[k] for k in want.figures} == {
                k: plain(v) for k, v in want.figures.items()
            }
    done = await asyncio.to_thread(
        acd_report, "agents", *where, "--database-url", database_url, **env
    )
    assert done.returncode == 0, done.stderr
    table = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["interval_start"][11:16], r["agent_id"], r["handled"]) for r in table[:3]] == [
        ("09:00", "a1", "2"), ("09:00", "a2", "2"), ("09:00", "a3", "0"),
    ]  # fmt: skip
    wrong = await asyncio.to_thread(
        acd_report,
        "queues",
        "--from",
        "tomorrow",
        "--to",
        DAY["to"],
        "--database-url",
        database_url,
    )
    assert (wrong.returncode, wrong.stderr) == (
        2,
        "acd report: 'tomorrow' is not an ISO 8601 date or date-time\n",
    )


async def write_configuration(database_url: str) -> None:
    """The centre's queues and agents as the server saves them, for the report to list."""
    database = Database(database_url)
    await database.open()
    try:
        for queue in CENTRE["queues"]:
            await database.save_queue(queue["id"], queue)
        for agent in CENTRE["agents"]:
            await database.save_agent(agent["id"], agent, agent["id"])
    finally:
        await database.close()


async def test_with_the_database_away_a_report_is_a_503_and_the_server_goes_on(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    url = private_postgres.url
    async with running(url, tmp_path, CENTRE) as centre:
        assert (await centre.admin.get("/v1/reports/queues", params=DAY)).status_code == 200
        await asyncio.to_thread(private_postgres.stop)
        try:
            away = await centre.admin.get("/v1/reports/queues", params=DAY)
            assert away.status_code == 503, away.text
            assert away.json()["error_id"] == "database_unavailable"
            assert (await centre.admin.get("/livez")).status_code == 200
        finally:
            await asyncio.to_thread(private_postgres.start)
        for _ in range(100):  # bounded: the pool reconnects on the next check-out
            back = await centre.admin.get("/v1/reports/queues", params=DAY)
            if back.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert back.status_code == 200, back.text
