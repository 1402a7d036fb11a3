"""KPI reports per interval, per queue, agent or team (acd.reports), as JSON or CSV."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.exc import SQLAlchemyError

from acd.errors import CommandRejected
from acd.intervals import Interval, parse_range
from acd.report_formats import csv_text, json_body
from acd.reports import Dimension
from api.auth import Role
from api.deps import ServerDep, StaffDep
from api.errors import ERROR_RESPONSES
from api.server import Unavailable
from api.store.reports import Thresholds, report

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=ERROR_RESPONSES)


class ReportFormat(Enum):
    JSON = "json"
    CSV = "csv"


@router.get(
    "/{dimension}",
    summary="KPIs per interval for each queue, agent or team (docs/KPIS.md)",
    response_model=None,
    responses={
        200: {
            "description": "one row per interval and queue, agent or team; zeros where "
            "nothing happened, null for a ratio with nothing to divide by",
            "content": {"application/json": {}, "text/csv": {}},
        }
    },
)
async def get_report(
    dimension: Dimension,
    server: ServerDep,
    principal: StaffDep,
    since: Annotated[str, Query(alias="from", min_length=1, max_length=64)],
    until: Annotated[str, Query(alias="to", min_length=1, max_length=64)],
    interval: Interval = Interval.HALFHOUR,
    tz: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    format_: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.JSON,
) -> Any:
    """``from`` and ``to``: ISO 8601 dates or date-times (``to`` excluded); without an
    offset they are on the clock of ``tz`` (an IANA zone, default the server's
    ``ACD_REPORT_TIMEZONE``), which also sets where intervals begin."""
    settings = server.settings
    try:
        intervals, start, end = parse_range(since, until, tz or settings.report_timezone, interval)
    except ValueError as error:
        raise CommandRejected("invalid_report", str(error)) from None
    thresholds = Thresholds(
        short_abandon_seconds=settings.short_abandon_seconds,
        fcr_window_seconds=settings.fcr_window_hours * 3600.0,
    )
    try:
        everything = await report(
            server.report_database,
            since=start,
            until=end,
            intervals=intervals,
            thresholds=thresholds,
            now=server.runtime.clock.now(),
        )
    except (SQLAlchemyError, OSError) as error:
        raise Unavailable("database_unavailable", "the database is unreachable") from error
    rows = everything[dimension]
    if principal.role is Role.SUPERVISOR and principal.teams:
        # a supervisor sees their teams, their teams' agents and the queues those serve
        visibility = server.visibility
        if dimension is Dimension.TEAMS:
            allowed: set[str] = set(principal.teams)
        elif dimension is Dimension.AGENTS:
            allowed = set(visibility.agents_of(principal.teams))
        else:
            allowed = set(visibility.queues_of(principal.teams))
        rows = [r for r in rows if r.key in allowed]
    if format_ is ReportFormat.CSV:
        return Response(csv_text(rows, dimension, intervals), media_type="text/csv")
    return json_body(
        rows,
        dimension,
        intervals,
        since=start,
        until=end,
        short_abandon_seconds=thresholds.short_abandon_seconds,
        fcr_window_seconds=thresholds.fcr_window_seconds,
    )
