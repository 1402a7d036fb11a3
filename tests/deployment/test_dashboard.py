"""The Grafana dashboard: well formed, on the provisioned data source, reading real metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from server.harness import running

from deployment.layout import DATASOURCES, ROOT, dashboard, expressions, load_yaml
from deployment.promql import exported_names, metric_names, template_metric

# What the issue asks the dashboard to show, and the series that shows it.
REQUIRED = {
    "calls waiting per queue": "acd_calls_waiting",
    "oldest wait per queue": "acd_oldest_wait_seconds",
    "service level": "acd_calls_answered_within_sl_total",
    "average speed of answer": "acd_answer_wait_seconds_total",
    "abandon rate": "acd_calls_abandoned_total",
    "agents by state": "acd_centre_agents",
    "offer latency": "acd_offer_publish_seconds_bucket",
    "transitions per second": "acd_transitions_total",
    "estimated wait per queue": "acd_ewt_seconds",
}
PANEL_TYPES = {"timeseries", "stat", "gauge", "bargauge", "table", "row", "text"}


def dashboard_metrics(board: dict[str, Any]) -> set[str]:
    names = set()
    for _, expr in expressions(board):
        names |= metric_names(expr)
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            names.add(template_metric(variable["definition"]))
    return names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("acd_calls_waiting", {"acd_calls_waiting"}),
        ('sum by (queue) (acd_calls_waiting{queue=~"$queue"})', {"acd_calls_waiting"}),
        (
            "sum by (queue) (increase(a_total{q='x'}[30m])) / sum by (queue) (increase(b[5m:1m]))",
            {"a_total", "b"},
        ),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
        ("rate(x[1m] offset 1h) > bool 0 and on (queue) y", {"x", "y"}),
        ('label_replace(up, "dst", "$1", "src", "(.*)")', {"up"}),
        ("count without (instance) (m) * 1e3", {"m"}),
    ],
)
def test_metric_names_are_found_in_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_the_dashboard_file_is_what_the_generator_writes() -> None:
    checked = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_dashboard.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


def test_the_dashboard_has_an_identity_a_schema_version_and_well_placed_panels() -> None:
    board = dashboard()
    assert board["uid"] == "acd-overview"
    assert board["title"]
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    panels = board["panels"]
    assert len(panels) >= len(REQUIRED)
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["type"]
        assert panel["title"]
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["y"] >= 0
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} runs off the 24-column grid"
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        targets = panel["targets"]
        assert targets, f"{panel['title']} has no query"
        ref_ids = [t["refId"] for t in targets]
        assert len(set(ref_ids)) == len(ref_ids)


def test_every_query_uses_the_provisioned_prometheus_data_source() -> None:
    provisioned = load_yaml(DATASOURCES)["datasources"]
    assert len(provisioned) == 1
    source = provisioned[0]
    assert source["type"] == "prometheus"
    wanted = {"type": "prometheus", "uid": source["uid"]}
    board = dashboard()
    for panel in board["panels"]:
        assert panel["datasource"] == wanted, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == wanted, panel["title"]
    for variable in board["templating"]["list"]:
        assert variable["datasource"] == wanted


def test_every_expression_is_balanced_and_reads_our_metrics() -> None:
    for title, expr in expressions(dashboard()):
        for opening, closing in ("()", "[]", "{}"):
            assert expr.count(opening) == expr.count(closing), f"{title}: {expr}"
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        assert all(n.startswith("acd_") for n in names), f"{title}: {names}"


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    used = dashboard_metrics(dashboard())
    missing = {what: name for what, name in REQUIRED.items() if name not in used}
    assert not missing


async def test_every_metric_the_dashboard_reads_is_exported_by_the_server(
    tmp_path: Path,
) -> None:
    async with running(f"sqlite+aiosqlite:///{tmp_path / 'acd.db'}", tmp_path, {}) as centre:
        page = (await centre.admin.get("/metrics")).text
    unknown = dashboard_metrics(dashboard()) - exported_names(page)
    assert not unknown, f"the dashboard reads metrics the server does not export: {unknown}"
