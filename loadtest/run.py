"""``make loadtest``: start a server on loopback, run Locust headless against it, stop both.

The server is ``acd serve`` in a subprocess, on a free loopback port, with
a centre made for the load (``--agents`` agents ``lt0000``... spread over
``--queues`` queues with a 30 s wrap-up the agents end early) on SQLite in
a temporary folder, or on ``--database-url``. Locust runs
``loadtest/locustfile.py`` headless for ``--seconds`` with one ``Agent``
user per agent and ``--callers`` ``Caller`` users each injecting
``--rate-each`` calls a second, then prints its summary (requests,
failures, percentiles, offer latency among them). The exit status is
Locust's: non-zero when any request failed. Everything is bounded: Locust
stops at ``--seconds`` and the server is stopped after it.

The default load is the documented one the README quotes: 50 agents, 5
calls a second for 60 s, 10 % of callers hanging up while they wait.
``--target URL`` skips starting a server and loads one already running
(its JWT secret then comes from ``ACD_JWT_SECRET``, and its centre must
have the agents and queues this run names).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
PREFIX = "lt"


def centre(agents: int, queues: int) -> dict[str, Any]:
    names = [f"q{i}" for i in range(queues)]
    return {
        "queues": [{"id": q, "wrap_up_seconds": 30, "announce_every_seconds": None} for q in names],
        "agents": [
            {"id": f"{PREFIX}{i:04d}", "queues": [names[i % queues], names[(i + 1) % queues]]}
            for i in range(agents)
        ],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(folder: Path, port: int, secret: str, url: str | None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ACD_JWT_SECRET": secret,
        "ACD_SPOOL_PATH": str(folder / "acd.spool"),
        "ACD_DRAIN_SECONDS": "2",
    }
    database = url or f"sqlite+aiosqlite:///{folder / 'acd.db'}"
    command = [sys.executable, "-m", "acd.cli", "serve", "--config", str(folder / "centre.yaml")]
    command += ["--host", "127.0.0.1", "--port", str(port), "--database-url", database]
    with open(folder / "server.log", "wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server was not ready within 60 s:\n{log.read_text()}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # it drains, then stops
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


def run_locust(base: str, secret: str, args: argparse.Namespace) -> int:
    env = {
        **os.environ,
        "ACD_LOADTEST_SECRET": secret,
        "ACD_LOADTEST_AGENTS": str(args.agents),
        "ACD_LOADTEST_AGENT_PREFIX": PREFIX,
        "ACD_LOADTEST_QUEUES": ",".join(f"q{i}" for i in range(args.queues)),
        "ACD_LOADTEST_CALLERS": str(args.callers),
        "ACD_LOADTEST_CALL_RATE_EACH": str(args.rate_each),
        "ACD_LOADTEST_ABANDON": str(args.abandon),
    }
    users = args.agents + args.callers
    csv = ["--csv", args.csv] if args.csv else []
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--host", base, "--users", str(users), "--spawn-rate", str(max(users, 1)),
        "--run-time", f"{args.seconds}s", "--stop-timeout", "15", "--loglevel", "WARNING", *csv,
    ]  # fmt: skip
    return subprocess.run(command, env=env, cwd=ROOT, timeout=args.seconds + 120).returncode


# The stop at the end of the run is a drain, which the server logs as warnings.
_EXPECTED = ("acd.serve signal 15: draining", "drained; stopping")


def server_warnings(log: Path) -> list[str]:
    """The server's warnings and errors, as ``level logger message``: its log is JSON lines
    (``api.logs``), or text with ``ACD_LOG_FORMAT=text``."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            if record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                found.append(f"{record['level']} {record.get('logger')} {record.get('message')}")
        elif " WARNING " in line or " ERROR " in line:
            found.append(line)
    return [line for line in found if not any(e in line for e in _EXPECTED)]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--queues", type=int, default=3)
    parser.add_argument("--callers", type=int, default=5, help="Caller users")
    parser.add_argument("--rate-each", type=float, default=1.0, help="calls/s per caller user")
    parser.add_argument("--abandon", type=float, default=0.1, help="share hanging up waiting")
    parser.add_argument("--seconds", type=int, default=60, help="Locust's run time")
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--csv", help="also write Locust's statistics to PREFIX_stats.csv...")
    parser.add_argument("--target", help="load a server already running at this base URL")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.target:
        secret = os.environ.get("ACD_JWT_SECRET", "")
        if not secret:
            raise SystemExit("--target needs the server's ACD_JWT_SECRET in the environment")
        return run_locust(args.target.rstrip("/"), secret, args)
    secret = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="acd-loadtest-") as tmp:
        folder = Path(tmp)
        (folder / "centre.yaml").write_text(yaml.safe_dump(centre(args.agents, args.queues)))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(folder, port, secret, args.database_url)
        try:
            wait_ready(base, server, folder / "server.log")
            print(
                f"load: {args.agents} agents, {args.callers * args.rate_each:g} calls/s into "
                f"{args.queues} queues for {args.seconds} s, {args.abandon:.0%} abandoning; "
                f"server {base}",
                flush=True,
            )
            status = run_locust(base, secret, args)
        finally:
            stop_server(server)
        warnings = server_warnings(folder / "server.log")
        print(f"server log: {len(warnings)} warnings or errors besides the final drain")
        for line in warnings[:20]:
            print(f"  {line}")
    return status


if __name__ == "__main__":
    sys.exit(main())
