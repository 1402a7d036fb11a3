"""The ``acd`` command: staffing with Erlang C, and day-long simulations of the routing core."""

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
