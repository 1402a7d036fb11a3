"""A report's rows as JSON-ready data and as CSV, the same for the REST API and ``acd report``.

A row is its interval (start and end as local ISO 8601 times with their
offsets), its key (``queue_id``, ``agent_id`` or ``team``) and its figures.
In CSV, ``abandon_times`` becomes one column per bucket (``abandon_le_5``...)
and a ratio with nothing to divide by (None) an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from acd.intervals import Intervals
from acd.reports import Dimension, Figures, ReportRow, empty_figures

KEY_COLUMNS = {Dimension.QUEUES: "queue_id", Dimension.AGENTS: "agent_id", Dimension.TEAMS: "team"}


def row_data(row: ReportRow, dimension: Dimension, intervals: Intervals) -> Figures:
    """One row as JSON-ready data: its interval, its key, its figures."""
    return {
        "interval_start": intervals.label(row.start),
        "interval_end": intervals.label(row.end),
        KEY_COLUMNS[dimension]: row.key,
        **row.figures,
    }


def json_body(
    rows: Sequence[ReportRow],
    dimension: Dimension,
    intervals: Intervals,
    *,
    since: float,
    until: float,
    short_abandon_seconds: float,
    fcr_window_seconds: float,
) -> Figures:
    """The whole report as JSON-ready data: what it covers, then its rows."""
    return {
        "dimension": dimension.value,
        "interval": intervals.interval.value,
        "timezone": intervals.zone.key,
        "from": intervals.label(since),
        "to": intervals.label(until),
        "short_abandon_seconds": short_abandon_seconds,
        "fcr_window_hours": fcr_window_seconds / 3600.0,
        "rows": [row_data(r, dimension, intervals) for r in rows],
    }


def csv_text(rows: Sequence[ReportRow], dimension: Dimension, intervals: Intervals) -> str:
    """The rows as CSV with a header, even when there is no row."""
    nothing = ReportRow(start=0, end=0, key="", figures=empty_figures(dimension))
    header = _flat(row_data(nothing, dimension, intervals))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(header), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = _flat(row_data(row, dimension, intervals))
        writer.writerow({k: "" if v is None else v for k, v in flat.items()})
    return out.getvalue()


def _flat(data: Figures) -> Figures:
    times = data.pop("abandon_times", None)
    if times is not None:
        data.update({f"abandon_{label}": count for label, count in times.items()})
    return data
