"""After a short load through the real server, every metric the dashboard reads has data.

Two agents on WebSocket desktops take calls POSTed over REST: some answered
and hung up, one left by its caller while it waited (abandoned), one still
waiting when Prometheus would scrape, so the live gauges (oldest wait,
estimated wait) have something to say. /metrics is read as Prometheus reads
it, with the metrics token.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from server.harness import Desk, is_offer, running, token

from deployment.layout import ROOT, dashboard
from deployment.promql import samples
from deployment.test_dashboard import dashboard_metrics

METRICS_TOKEN = "test-metrics-token"
CENTRE: dict[str, Any] = {
    # short_abandon_seconds 0: a caller who hangs up while waiting is abandoned, however soon
    "queues": [{"id": "sales", "short_abandon_seconds": 0, "sl_seconds": 20, "sl_target": 0.8}],
    "agents": [
        {"id": "ann", "name": "Ann", "queues": ["sales"]},
        {"id": "ben", "name": "Ben", "queues": ["sales"]},
    ],
}


def documented_metrics() -> set[str]:
    """The metrics of the README's table (### Metrics), as they are named there.

    Rows that say "with SIP on" are exported only by a server that listens for
    SIP, which this one does not: they are left out.
    """
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n### Metrics\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `acd_")]
    rows = [row for row in rows if "with SIP on" not in row]
    return {name for row in rows for name in re.findall(r"`(acd_\w+)`", row.split("|")[1])}


def exported_metrics(page: str) -> set[str]:
    """The server's metrics as the README names them: counters with their _total.

    The text format gives each counter's and histogram's creation time as a
    gauge family of its own (``..._created``): not a metric of ours.
    """
    return {
        f.name + "_total" if f.type == "counter" else f.name
        for f in text_string_to_metric_families(page)
        if not f.name.endswith("_created")
    }


async def offered_call(centre: Any, desks: dict[str, Desk]) -> tuple[str, str]:
    """POST a call and wait for its offer; (call id, the agent it rings)."""
    created = await centre.admin.post("/v1/calls", json={"queue": "sales", "ani": "+100"})
    assert created.status_code == 201, created.text
    call_id = created.json()["id"]
    for _ in range(500):  # the offer reaches a desktop once it is durable: poll, bounded
        for agent, desk in desks.items():
            if any(is_offer(agent)(m) and m["data"]["call_id"] == call_id for m in desk.messages):
                return call_id, agent
        await asyncio.sleep(0.02)
    raise AssertionError(f"call {call_id} was offered to nobody")


async def test_every_metric_the_dashboard_reads_has_data_after_a_short_load(
    database_url: str, tmp_path: Path
) -> None:
    async with running(database_url, tmp_path, CENTRE, metrics_token=METRICS_TOKEN) as centre:
        desks = {a: await Desk.open(centre.ws_url(), token("agent", a)) for a in ("ann", "ben")}
        for desk in desks.values():
            assert (await desk.command("login"))["ok"]
            assert (await desk.command("ready"))["ok"]

        for _ in range(4):  # answered and hung up by the agent
            call_id, agent = await offered_call(centre, desks)
            assert (await desks[agent].command("accept", call_id=call_id))["ok"]
            assert (await desks[agent].command("hangup", call_id=call_id))["ok"]
        busy = []
        for _ in range(2):  # both agents talking
            call_id, agent = await offered_call(centre, desks)
            assert (await desks[agent].command("accept", call_id=call_id))["ok"]
            busy.append((call_id, agent))
        # one caller gives up waiting, another is still waiting
        gives_up = await centre.admin.post("/v1/calls", json={"queue": "sales"})
        waits = await centre.admin.post("/v1/calls", json={"queue": "sales"})
        assert gives_up.status_code == waits.status_code == 201
        hung_up = await centre.admin.delete(f"/v1/calls/{gives_up.json()['id']}")
        assert hung_up.status_code == 200, hung_up.text
        stats = (await centre.admin.get("/v1/queues/sales/stats")).json()
        assert stats["waiting"] == 1

        async with httpx.AsyncClient(base_url=centre.base) as prometheus:
            refused = await prometheus.get("/metrics")
            scraped = await prometheus.get(
                "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
            )
        for desk in desks.values():
            await desk.close()

    assert refused.status_code == 401
    assert scraped.status_code == 200
    page = samples(scraped.text)
    wanted = dashboard_metrics(dashboard())
    empty = sorted(name for name in wanted if not page.get(name))
    assert not empty, f"the dashboard reads metrics with no data: {empty}"
    assert exported_metrics(scraped.text) == documented_metrics(), "README's metrics table"

    def value(name: str, **labels: str) -> float:
        return sum(v for found, v in page[name] if labels.items() <= found.items())

    # the figures the KPI panels divide, as the load made them (KPIS.md)
    assert value("acd_calls_offered_total", queue="sales") == 5  # 4 answered + 1 abandoned
    assert value("acd_calls_answered_total", queue="sales") == 4
    assert value("acd_calls_answered_within_sl_total", queue="sales") == 4
    assert value("acd_calls_abandoned_total", queue="sales") == 1
    assert value("acd_answer_wait_seconds_total", queue="sales") > 0
    assert value("acd_service_level_target", queue="sales") == 0.8
    assert value("acd_calls_waiting", queue="sales") == 1
    assert value("acd_oldest_wait_seconds", queue="sales") > 0
    assert value("acd_ewt_seconds", queue="sales") > 0
    assert value("acd_centre_agents", state="talking") == 2
    assert value("acd_centre_agents") == 2
    assert value("acd_offer_publish_seconds_count") == 6
    assert value("acd_transitions_total", entity="call") > 0
