"""The ``acd`` command: the server, tokens, KPI reports, staffing with Erlang C, simulations."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (ValueError, FileNotFoundError) as error:
        print(f"acd {args.command}: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    erlang = commands.add_parser(
        "erlang",
        help="agents needed for an interval (Erlang C)",
        description="From a forecast (calls per interval, AHT) and a service-level goal, "
        "the agents needed and the figures they would give; or, with --agents, "
        "the figures for that many agents.",
    )
    erlang.add_argument("--calls", type=float, required=True, help="calls offered in the interval")
    erlang.add_argument("--interval-seconds", type=float, default=1800.0, help="default 1800")
    erlang.add_argument("--aht", type=float, required=True, help="average handle time, seconds")
    erlang.add_argument("--sl-seconds", type=float, default=20.0, help="answer within, default 20")
    erlang.add_argument(
        "--sl-target", type=float, default=0.8, help="service-level goal: 0.8 or 80 (default 0.8)"
    )
    erlang.add_argument("--agents", type=int, help="evaluate this many agents instead of searching")
    erlang.add_argument("--json", action="store_true", help="print JSON")
    erlang.set_defaults(run=_erlang)

    simulate = commands.add_parser(
        "simulate",
        help="replay a scenario through the routing core on a virtual clock",
        description="Drive the real routing core with a scenario's agents and traffic "
        "on a virtual clock, and report the KPIs and the error of the wait estimates.",
    )
    simulate.add_argument("scenario", help="a scenario YAML file (see scenarios/README.md)")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--json", action="store_true", help="print JSON")
    simulate.set_defaults(run=_simulate)

    serve = commands.add_parser(
        "serve",
        help="run the server (REST, CTI WebSocket, metrics)",
        description="Run the ACD server. With no --config and no --database-url it starts "
        "the demo configuration on SQLite ./acd.db. Every option has an ACD_ variable.",
    )
    serve.add_argument("--config", help="queues, agents and customers (YAML)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument("--database-url", help="default sqlite+aiosqlite:///./acd.db")
    serve.add_argument(
        "--sip-port", type=int, help="listen for SIP on UDP and TCP at --host (default: no SIP)"
    )
    serve.set_defaults(run=_serve)

    report = commands.add_parser(
        "report",
        help="KPI reports per interval, from the server's database",
        description="KPIs (docs/KPIS.md) per half hour, day, week or month, for each queue, "
        "agent or team, read from the database the server uses (ACD_DATABASE_URL or "
        "--database-url); the same figures as GET /v1/reports/{queues|agents|teams}.",
    )
    report.add_argument("dimension", choices=["queues", "agents", "teams"])
    report.add_argument(
        "--from", dest="since", required=True, help="ISO 8601 date or date-time (included)"
    )
    report.add_argument(
        "--to", dest="until", required=True, help="ISO 8601 date or date-time (excluded)"
    )
    report.add_argument(
        "--interval", choices=["halfhour", "day", "week", "month"], default="halfhour"
    )
    report.add_argument("--tz", help="IANA time zone of the intervals (ACD_REPORT_TIMEZONE)")
    report.add_argument("--format", choices=["csv", "json"], default="csv", help="default csv")
    report.add_argument("--database-url", help="default sqlite+aiosqlite:///./acd.db")
    report.set_defaults(run=_report)

    token = commands.add_parser(
        "token",
        help="print a bearer token",
        description="Sign a token with the server's key (ACD_JWT_SECRET or ./acd.secret).",
    )
    token.add_argument("--role", choices=["agent", "supervisor", "admin"], required=True)
    token.add_argument("--agent", help="the agent an agent token acts for")
    token.add_argument("--team", action="append", default=[], help="a supervisor's team")
    token.add_argument("--minutes", type=int, default=720, help="validity, default 720")
    token.set_defaults(run=_token)
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from api.settings import Settings

    given = {
        k: v
        for k, v in {
            "config": getattr(args, "config", None),
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "database_url": getattr(args, "database_url", None),
            "sip_port": getattr(args, "sip_port", None),
        }.items()
        if v is not None
    }
    settings = Settings(**given)
    # The demo is for a bare `acd serve`: a database named on the command line
    # or in ACD_DATABASE_URL (a container, a production host) gets no demo.
    default_database = Settings.model_fields["database_url"].default
    if settings.config is None and settings.database_url == default_database:
        settings = settings.model_copy(update={"demo": True})
    return settings


def _serve(args: argparse.Namespace) -> int:
    from api.serve import serve

    serve(_settings(args))
    return 0


def _token(args: argparse.Namespace) -> int:
    from api.auth import Role, issue

    settings = _settings(args)
    print(
        issue(
            settings.signing_key(),
            Role(args.role),
            agent_id=args.agent,
            teams=frozenset(args.team),
            minutes=args.minutes,
        )
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    import asyncio
    import time
    from pathlib import Path

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from acd.intervals import Interval, parse_range
    from acd.report_formats import csv_text, json_body
    from acd.reports import Dimension
    from api.store.database import Database
    from api.store.reports import Thresholds, report

    settings = _settings(args)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise FileNotFoundError(f"no database at {url.database}")  # rather than make an empty one
    zone = args.tz or settings.report_timezone
    intervals, since, until = parse_range(args.since, args.until, zone, Interval(args.interval))
    thresholds = Thresholds(
        short_abandon_seconds=settings.short_abandon_seconds,
        fcr_window_seconds=settings.fcr_window_hours * 3600.0,
    )

    async def read() -> Any:
        database = Database(settings.database_url, command_timeout=300.0)
        await database.open()
        try:
            return await report(
                database,
                since=since,
                until=until,
                intervals=intervals,
                thresholds=thresholds,
                now=time.time(),
            )
        finally:
            await database.close()

    try:
        rows = asyncio.run(read())[Dimension(args.dimension)]
    except (SQLAlchemyError, OSError) as error:
        where = url.render_as_string(hide_password=True)
        print(f"acd report: cannot read the database at {where}: {error}", file=sys.stderr)
        return 1
    if args.format == "json":
        body = json_body(
            rows,
            Dimension(args.dimension),
            intervals,
            since=since,
            until=until,
            short_abandon_seconds=thresholds.short_abandon_seconds,
            fcr_window_seconds=thresholds.fcr_window_seconds,
        )
        print(json.dumps(body))
    else:
        sys.stdout.write(csv_text(rows, Dimension(args.dimension), intervals))
    return 0


def _erlang(args: argparse.Namespace) -> int:
    from acd.erlang import agents_needed, evaluate

    target = args.sl_target / 100.0 if args.sl_target > 1 else args.sl_target
    if args.agents is not None:
        staffing = evaluate(
            calls=args.calls,
            interval_seconds=args.interval_seconds,
            aht_seconds=args.aht,
            sl_seconds=args.sl_seconds,
            agents=args.agents,
        )
    else:
        staffing = agents_needed(
            calls=args.calls,
            interval_seconds=args.interval_seconds,
            aht_seconds=args.aht,
            sl_seconds=args.sl_seconds,
            sl_target=target,
        )
    if args.json:
        print(json.dumps(_finite(staffing.as_dict())))
        return 0
    asa = "unbounded" if math.isinf(staffing.asa_seconds) else f"{staffing.asa_seconds:.1f} s"
    print(f"traffic        {staffing.traffic_erlangs:.2f} Erlangs")
    print(f"agents         {staffing.agents}")
    print(f"P(wait)        {staffing.p_wait:.1%}")
    print(f"ASA            {asa}")
    print(f"service level  {staffing.service_level:.1%} within {args.sl_seconds:g} s")
    print(f"occupancy      {staffing.occupancy:.1%}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from acd.sim import load_scenario, simulate

    report = simulate(load_scenario(args.scenario), args.seed)
    if args.json:
        print(json.dumps(_finite(report.as_dict())))
    else:
        print(report.format_text())
    return 0


def _finite(value: Any) -> Any:
    """JSON has no infinity: an unbounded figure becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    raise SystemExit(main())
