#!/usr/bin/env python3
"""Write the Grafana dashboard of the compose stack: deploy/grafana/dashboards/acd.json.

    .venv/bin/python scripts/make_dashboard.py            # (re)write the JSON
    .venv/bin/python scripts/make_dashboard.py --check    # compare, write nothing

The panels are data here (title, PromQL, unit), so the JSON is never edited by
hand and the test suite can check that the file is what this script writes
(tests/deploy/test_dashboard.py). Grafana's dashboard model: one object with
``panels`` (each a ``type``, a ``gridPos`` on a 24-column grid, a
``datasource`` and ``targets`` holding the PromQL), ``templating`` for the
queue selector, ``schemaVersion`` for Grafana's migrations.

The KPI panels follow docs/KPIS.md over a rolling half hour (the interval ASA
and service level are traditionally watched over), from the counters that
api/metrics.py exports from the core's KPI fold: each ratio is the increase of
its numerator over that of its denominator, so it covers the calls that ended
in the last 30 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "deploy" / "grafana" / "dashboards" / "acd.json"
DATASOURCE = {"type": "prometheus", "uid": "acd-prometheus"}  # provisioning/datasources
Q = 'queue=~"$queue"'
WINDOW = "30m"  # KPIS.md: service level and ASA are watched per half hour


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str
    width: int = 12
    height: int = 8
    min: float | None = 0
    max: float | None = None
    stacked: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def _ratio(numerator: str, denominator: str) -> str:
    return (
        f"sum by (queue) (increase({numerator}{{{Q}}}[{WINDOW}]))\n"
        f"/ sum by (queue) (increase({denominator}{{{Q}}}[{WINDOW}]))"
    )


PANELS = (
    Panel(
        title="Calls waiting",
        description="Calls waiting in each queue now (not yet ringing an agent).",
        queries=(Query(expr=f"sum by (queue) (acd_calls_waiting{{{Q}}})", legend="{{queue}}"),),
        unit="short",
    ),
    Panel(
        title="Oldest wait",
        description="How long the oldest waiting call of each queue has waited.",
        queries=(
            Query(expr=f"max by (queue) (acd_oldest_wait_seconds{{{Q}}})", legend="{{queue}}"),
        ),
        unit="s",
    ),
    Panel(
        title=f"Service level (last {WINDOW})",
        description=(
            "KPIS.md: calls answered within the queue's threshold X of entering it, "
            "over the calls offered, for the calls that ended in the window; the "
            "dashed line is the queue's target."
        ),
        queries=(
            Query(
                expr=_ratio("acd_calls_answered_within_sl_total", "acd_calls_offered_total"),
                legend="{{queue}}",
            ),
            Query(
                expr=f"max by (queue) (acd_service_level_target{{{Q}}})",
                legend="{{queue}} target",
            ),
        ),
        unit="percentunit",
        max=1,
    ),
    Panel(
        title=f"Average speed of answer (last {WINDOW})",
        description=(
            "KPIS.md: queue time of the answered calls over the answered calls, "
            "for the calls that ended in the window."
        ),
        queries=(
            Query(
                expr=_ratio("acd_answer_wait_seconds_total", "acd_calls_answered_total"),
                legend="{{queue}}",
            ),
        ),
        unit="s",
    ),
    Panel(
        title=f"Abandon rate (last {WINDOW})",
        description=(
            "KPIS.md: calls abandoned in queue over the calls offered, short "
            "abandons excluded, for the calls that ended in the window."
        ),
        queries=(
            Query(
                expr=_ratio("acd_calls_abandoned_total", "acd_calls_offered_total"),
                legend="{{queue}}",
            ),
        ),
        unit="percentunit",
        max=1,
    ),
    Panel(
        title="Estimated wait",
        description=(
            "The estimated remaining wait of the caller who joined each queue last; "
            "no line while nobody waits or there is not enough data."
        ),
        queries=(Query(expr=f"max by (queue) (acd_ewt_seconds{{{Q}}})", legend="{{queue}}"),),
        unit="s",
    ),
    Panel(
        title="Agents by state",
        description="Every agent of the centre once, by presence: idle, reserved, talking...",
        queries=(Query(expr="sum by (state) (acd_centre_agents)", legend="{{state}}"),),
        unit="short",
        stacked=True,
    ),
    Panel(
        title="Offer latency",
        description=(
            "A call's arrival at the server to its offer being durable and sent to "
            "the agent's desktop (the server's own measure)."
        ),
        queries=(
            Query(
                expr=(
                    "histogram_quantile(0.5, sum by (le) "
                    "(rate(acd_offer_publish_seconds_bucket[5m])))"
                ),
                legend="p50",
            ),
            Query(
                expr=(
                    "histogram_quantile(0.99, sum by (le) "
                    "(rate(acd_offer_publish_seconds_bucket[5m])))"
                ),
                legend="p99",
            ),
        ),
        unit="s",
    ),
    Panel(
        title="Transitions per second",
        description="State changes of calls, agents and offers (every event the core emits).",
        queries=(
            Query(expr="sum by (entity) (rate(acd_transitions_total[1m]))", legend="{{entity}}"),
        ),
        unit="ops",
        width=24,
    ),
)


def _panel(index: int, panel: Panel, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 20 if panel.stacked else 0,
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
            "spanNulls": False,
            "showPoints": "never",
        },
    }
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    overrides = [
        {
            "matcher": {"id": "byRegexp", "options": ".* target"},
            "properties": [
                {
                    "id": "custom.lineStyle",
                    "value": {"fill": "dash", "dash": [10, 10]},
                }
            ],
        }
        for q in panel.queries
        if q.legend.endswith(" target")
    ]
    return {
        "id": index,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {
                "refId": chr(ord("A") + n),
                "datasource": DATASOURCE,
                "expr": q.expr,
                "legendFormat": q.legend,
                "range": True,
            }
            for n, q in enumerate(panel.queries)
        ],
    }


def dashboard() -> dict[str, Any]:
    panels = []
    x = y = 0
    row_height = 0
    for index, panel in enumerate(PANELS, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel(index, panel, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return {
        "uid": "acd-overview",
        "title": "ACD overview",
        "description": "Queues, service level, agents and the server's own latency (acd).",
        "tags": ["acd"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-3h", "to": "now"},
        "schemaVersion": 39,
        "version": 1,
        "links": [],
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "queue",
                    "label": "Queue",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {
                        "query": "label_values(acd_calls_waiting, queue)",
                        "refId": "queues",
                    },
                    "definition": "label_values(acd_calls_waiting, queue)",
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": ["All"], "value": ["$__all"]},
                    "sort": 1,
                }
            ]
        },
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the file, write nothing")
    args = parser.parse_args()
    text = render()
    if args.check:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} differs from what {Path(__file__).name} writes", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
