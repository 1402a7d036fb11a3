"""KPI reports per interval, per queue, agent or team (acd.reports), as JSON or CSV."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, Response
from sqlalchemy.exc import SQLAlchemyError

from acd.errors import CommandRejected
from acd.intervals import Interval, Intervals, parse_time
from acd.reports import Dimension, csv_text, row_data
from api.auth import Role
from api.deps import ServerDep, StaffDep
from api.errors import ERROR_RESPONSES
from api.server import Unavailable
from api.store.reports import Thresholds, report

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=ERROR_RESPONSES)

MAX_INTERVALS = 20_000  # rows per key: 400 days of half hours
MAX_RANGE_SECONDS = 3 * 366 * 86_400.0
LATEST = 4_102_444_800.0  # 2100-01-01 UTC


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
    zone_name = tz or settings.report_timezone
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CommandRejected("invalid_report", f"no time zone {zone_name!r}") from None
    try:
        start, end = parse_time(since, zone), parse_time(until, zone)
    except (ValueError, OverflowError, OSError) as error:
        raise CommandRejected("invalid_report", str(error)) from None
    if not start < end:
        raise CommandRejected("invalid_report", "from must come before to")
    if start < 0 or end > LATEST:
        raise CommandRejected("invalid_report", "from and to must lie between 1970 and 2100")
    if end - start > MAX_RANGE_SECONDS:
        raise CommandRejected("invalid_report", "a report covers at most three years")
    intervals = Intervals(interval, zone)
    if interval is Interval.HALFHOUR and (end - start) / 1800 > MAX_INTERVALS:
        raise CommandRejected(
            "invalid_report", f"at most {MAX_INTERVALS} half hours: ask for days instead"
        )
    try:
        everything = await report(
            server.database,
            since=start,
            until=end,
            intervals=intervals,
            thresholds=Thresholds(
                short_abandon_seconds=settings.short_abandon_seconds,
                fcr_window_seconds=settings.fcr_window_hours * 3600.0,
            ),
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
    return {
        "dimension": dimension.value,
        "interval": interval.value,
        "timezone": zone_name,
        "from": intervals.label(start),
        "to": intervals.label(end),
        "short_abandon_seconds": settings.short_abandon_seconds,
        "fcr_window_hours": settings.fcr_window_hours,
        "rows": [row_data(r, dimension, intervals) for r in rows],
    }
