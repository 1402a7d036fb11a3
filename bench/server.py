"""Injection to offer, through a real server: 1,000 agent WebSockets, 200 calls/s.

What is measured: ``acd serve`` runs as a subprocess on a loopback port,
against a fresh PostgreSQL database (created here, dropped after; or the
``--database-url`` given), with 1,000 agents (``a0000``..``a0999``) in 10
queues, every other agent in two, no wrap-up and no announcements. Each
agent's desktop is a WebSocket on ``/v1/ws`` that logs in and goes ready;
on its offer (``reservation.state_changed`` to ``pending``) it notes the time
the frame arrived, sends ``accept``, and once that is acknowledged talks for
a random 0.5-3 s and sends ``hangup``. Callers are POSTs to ``/v1/calls``
(admin token, one pooled ``httpx.AsyncClient``), open-loop: call ``i`` is due
at ``i / rate`` s whatever the earlier replies, round-robin over the queues,
each with its own caller number (so the screen-pop look-up runs).

A call's latency runs from just before its POST is sent to the arrival of
its offer at the agent's socket, both on this process's ``perf_counter``;
offers are matched to calls by call id (the 201 reply carries it; the offer
may come first). Events/s: rows of the ``events`` table at the end of the
load window minus those at its start, over the window (from the first POST
to the last reply). CPU: the server's utime+stime from ``/proc``, this
process's own, and the whole machine's busy share, over the same window;
100 % is one core. Everything (bench, server, database) shares the machine,
so the bench's own load is part of the figures: read them together.

Run: ``.venv/bin/python bench/server.py [--json] [--rate N] [--seconds N]
[--database-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import sqlalchemy as sa
import websockets
import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from api.auth import Role, issue

SECRET = "bench-secret-key-that-is-long-enough-for-hs256"
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"
PYTHON = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python"
TARGET_P99_MS = 50.0
GRACE_SECONDS = 10.0  # after the last reply, how long missing offers are waited for


@dataclass(frozen=True)
class Plan:
    agents: int
    queues: int
    rate: float
    seconds: float
    talk: tuple[float, float]
    seed: int


def centre(p: Plan) -> dict[str, Any]:
    queues = [f"q{i}" for i in range(p.queues)]
    agents = []
    for i in range(p.agents):
        mine = [queues[i % p.queues]]
        if i % 2 and p.queues > 1:  # a second queue, never the first one again
            mine.append(queues[(i + 1 + (i // p.queues) % (p.queues - 1)) % p.queues])
        agents.append({"id": f"a{i:04d}", "queues": mine})
    return {
        "queues": [{"id": q, "wrap_up_seconds": 0, "announce_every_seconds": None} for q in queues],
        "agents": agents,
    }


# == the database ====================================================================


async def _postgres_admin(url: str) -> Any:
    u = make_url(url)
    return await asyncpg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password,
        database="postgres",
        timeout=5,
    )


async def create_postgres(server_url: str) -> str:
    name = f"acd_bench_{uuid.uuid4().hex[:12]}"
    admin = await _postgres_admin(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres(url: str) -> None:
    admin = await _postgres_admin(url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await admin.close()


async def count_events(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(sa.text("SELECT count(*) FROM events"))).scalar_one())
    finally:
        await engine.dispose()


# == the server process ==============================================================


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(tmp: Path, url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ACD_JWT_SECRET": SECRET,
        "ACD_SPOOL_PATH": str(tmp / "acd.spool"),
        "ACD_DRAIN_SECONDS": "2",
    }
    command = [str(PYTHON), "-m", "acd.cli", "serve", "--config", str(tmp / "centre.yaml")]
    command += ["--port", str(port), "--database-url", url]
    with open(tmp / "server.log", "wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # drains (no call is left), then stops
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


async def wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(1200):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the server was not ready within 60 s:\n{log.read_text()}")


def cpu_of(pid: int) -> float:
    """User plus system CPU seconds of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine, all cores, from /proc/stat."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4]) / hz, sum(ticks) / hz


# == agents and callers ==============================================================


@dataclass
class Tally:
    sent: dict[str, float] = field(default_factory=dict)  # call id: t0 of its POST
    offered: dict[str, float] = field(default_factory=dict)  # call id: its offer's arrival
    reply_ms: list[float] = field(default_factory=list)  # POST to its 201
    lag_ms: list[float] = field(default_factory=list)  # due time to t0: the bench's own lateness
    injected: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    hangups: int = 0
    closing: bool = False


class Desk:
    """One agent's desktop: accepts every offer, hangs up after a random talk."""

    def __init__(self, agent_id: str, socket: Any, tally: Tally, plan: Plan) -> None:
        self.agent_id = agent_id
        self.socket = socket
        self.tally = tally
        self.talk = plan.talk
        self.rng = random.Random(f"{plan.seed}-{agent_id}")
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        try:
            async for text in self.socket:
                arrived = time.perf_counter()
                message = json.loads(text)
                if "reply_to" in message:
                    self.reply(message)
                elif message.get("type") == "reservation.state_changed":
                    data = message["data"]
                    if data["to_state"] == "pending" and data["agent_id"] == self.agent_id:
                        self.tally.offered.setdefault(data["call_id"], arrived)
                        self.send("accept", call_id=data["call_id"])
        except websockets.ConnectionClosed:
            pass
        if not self.tally.closing:
            self.tally.failures[f"socket closed: {self.socket.close_code}"] += 1

    def reply(self, message: dict[str, Any]) -> None:
        command_id: str = message["reply_to"] or "?"
        waiting = self.waiting.pop(command_id, None)
        if waiting is not None:
            waiting.set_result(message)
        name, _, call_id = command_id.partition(":")
        if not message["ok"]:
            self.tally.failures[f"{name}: {message['error']['error_id']}"] += 1
        elif name == "accept":
            asyncio.get_running_loop().call_later(
                self.rng.uniform(*self.talk), self.send, "hangup", call_id
            )
        elif name == "hangup":
            self.tally.hangups += 1

    def send(self, name: str, call_id: str | None = None) -> None:
        frame = {"id": f"{name}:{call_id}", "command": name, "args": {"call_id": call_id}}
        task = asyncio.create_task(self.socket.send(json.dumps(frame)))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def command(self, name: str) -> dict[str, Any]:
        future = asyncio.get_running_loop().create_future()
        self.waiting[f"{name}:None"] = future
        await self.socket.send(json.dumps({"id": f"{name}:None", "command": name, "args": {}}))
        return await asyncio.wait_for(future, 30)


async def open_desk(ws_url: str, agent_id: str, tally: Tally, plan: Plan) -> Desk:
    bearer = issue(SECRET, Role.AGENT, agent_id=agent_id)
    sock = await websockets.connect(
        ws_url, additional_headers={"Authorization": f"Bearer {bearer}"}, open_timeout=60
    )
    desk = Desk(agent_id, sock, tally, plan)
    for name in ("login", "ready"):
        reply = await desk.command(name)
        if not reply["ok"]:
            raise RuntimeError(f"{agent_id} {name}: {reply['error']}")
    return desk


async def inject(client: httpx.AsyncClient, plan: Plan, tally: Tally) -> None:
    """Open loop: call i is sent when it is due, whatever the earlier replies."""

    async def post(i: int, due: float) -> None:
        body = {"queue": f"q{i % plan.queues}", "ani": f"+1555{i:07d}"}
        t0 = time.perf_counter()
        tally.lag_ms.append(1e3 * (t0 - due))
        try:
            r = await client.post("/v1/calls", json=body)
        except httpx.HTTPError as error:
            tally.failures[f"POST: {type(error).__name__}"] += 1
            return
        if r.status_code != 201:
            tally.failures[f"POST: {r.status_code}"] += 1
            return
        tally.reply_ms.append(1e3 * (time.perf_counter() - t0))
        tally.sent[r.json()["id"]] = t0

    calls = round(plan.rate * plan.seconds)
    posts = []
    start = time.perf_counter()
    for i in range(calls):
        due = start + i / plan.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        posts.append(asyncio.create_task(post(i, due)))
        tally.injected += 1
    await asyncio.gather(*posts)


# == the run =========================================================================


@dataclass
class Window:
    seconds: float
    events: int
    server_cpu: float
    bench_cpu: float
    machine_busy: float
    machine_total: float


async def run(plan: Plan, url: str, base: str, pid: int) -> tuple[Tally, Window, int]:
    tally = Tally()
    ws_url = base.replace("http://", "ws://") + "/v1/ws"
    gate = asyncio.Semaphore(50)

    async def one(i: int) -> Desk:
        async with gate:
            return await open_desk(ws_url, f"a{i:04d}", tally, plan)

    desks = await asyncio.gather(*(one(i) for i in range(plan.agents)))
    gc.collect()
    gc.freeze()
    admin = issue(SECRET, Role.ADMIN)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {admin}"}, limits=limits, timeout=30
    ) as client:
        await client.post("/v1/calls", json={"queue": "q0"})  # one call to warm the path
        await asyncio.sleep(plan.talk[1] + 1)
        tally.sent.clear()
        tally.offered.clear()
        tally.hangups = 0
        events0, busy0 = await count_events(url), machine()
        cpu0, own0, t0 = cpu_of(pid), time.process_time(), time.perf_counter()
        await inject(client, plan, tally)
        seconds = time.perf_counter() - t0
        window = Window(
            seconds=seconds,
            server_cpu=cpu_of(pid) - cpu0,
            bench_cpu=time.process_time() - own0,
            events=0,
            machine_busy=machine()[0] - busy0[0],
            machine_total=machine()[1] - busy0[1],
        )
        window.events = await count_events(url) - events0
    deadline = time.perf_counter() + GRACE_SECONDS
    while set(tally.sent) - set(tally.offered) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    answered = len(set(tally.sent) & set(tally.offered))
    deadline = time.perf_counter() + plan.talk[1] + 5
    while tally.hangups < answered and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    tally.closing = True
    await asyncio.gather(*(d.socket.close() for d in desks))
    await asyncio.gather(*(d.reader for d in desks))
    return tally, window, len(desks)


def percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def summary(plan: Plan, tally: Tally, w: Window, desks: int, database: str) -> dict[str, Any]:
    latency = [1e3 * (tally.offered[c] - t0) for c, t0 in tally.sent.items() if c in tally.offered]
    failures = dict(tally.failures)
    missing = sum(1 for c in tally.sent if c not in tally.offered)
    if missing:
        failures["offers missing"] = missing

    def figures(values: list[float]) -> dict[str, float | None]:
        shares = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
        return {k: _round(percentile(values, s)) for k, s in shares.items()}

    p99 = percentile(latency, 0.99)
    return {
        "offer_latency_ms": figures(latency),
        "post_reply_ms": figures(tally.reply_ms),
        "bench_send_lag_ms": figures(tally.lag_ms),
        "calls_injected": tally.injected,
        "calls_created": len(tally.sent),
        "calls_offered": len(latency),
        "calls_hung_up": tally.hangups,
        "failures": failures,
        "target_p99_ms": TARGET_P99_MS,
        "target_met": p99 is not None and p99 <= TARGET_P99_MS and not failures,
        "window_seconds": round(w.seconds, 2),
        "achieved_calls_per_second": round(tally.injected / w.seconds, 1),
        "events_persisted": w.events,
        "events_per_second": round(w.events / w.seconds, 1),
        "server_cpu_percent": round(100 * w.server_cpu / w.seconds, 1),
        "bench_cpu_percent": round(100 * w.bench_cpu / w.seconds, 1),
        "machine_busy_percent": round(100 * w.machine_busy / w.machine_total, 1),
        "cores": os.cpu_count(),
        "agents_connected": desks,
        "queues": plan.queues,
        "rate": plan.rate,
        "seconds": plan.seconds,
        "talk_seconds": list(plan.talk),
        "database": database,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def print_table(s: dict[str, Any]) -> None:
    low, high = s["talk_seconds"]
    print(f"ACD server benchmark: {s['agents_connected']:,} agent WebSockets, {s['queues']} queues")
    print(f"{s['rate']:g} calls/s for {s['seconds']:g} s (open loop), talk {low:g}-{high:g} s")
    print(f"database: {s['database']}; {s['cores']} cores shared by bench, server and database")
    print()
    print(f"{'ms':<30}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
    rows = [
        ("POST to offer at the socket", "offer_latency_ms"),
        ("POST to its 201 reply", "post_reply_ms"),
        ("bench lateness sending POST", "bench_send_lag_ms"),
    ]
    for label, key in rows:
        cells = "".join(f"{v:>8.1f}" if v is not None else f"{'-':>8}" for v in s[key].values())
        print(f"{label:<30}{cells}")
    print()
    print(
        f"calls: {s['calls_injected']:,} injected, {s['calls_created']:,} created (201), "
        f"{s['calls_offered']:,} offered, {s['calls_hung_up']:,} hung up"
    )
    failures = ", ".join(f"{k} x{v}" for k, v in s["failures"].items()) or "none"
    print(f"failures: {failures}")
    print(
        f"window {s['window_seconds']:.1f} s: {s['achieved_calls_per_second']:,.1f} calls/s, "
        f"{s['events_per_second']:,.0f} events/s persisted ({s['events_persisted']:,} rows)"
    )
    print(
        f"CPU (100% = one core): server {s['server_cpu_percent']:.0f}%, "
        f"bench {s['bench_cpu_percent']:.0f}%, machine busy {s['machine_busy_percent']:.0f}% "
        "of all cores"
    )
    p99 = s["offer_latency_ms"]["p99"]
    shown = "-" if p99 is None else f"{p99:.1f} ms"
    verdict = "met" if s["target_met"] else "NOT met"
    print(f"p99 POST to offer: {shown}  (target <= {TARGET_P99_MS:g} ms, no failures: {verdict})")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Injection-to-offer latency through the server.")
    parser.add_argument("--rate", type=float, default=200.0, help="calls per second (200)")
    parser.add_argument("--seconds", type=float, default=30.0, help="injection window (30)")
    parser.add_argument("--agents", type=int, default=1000, help="agent WebSockets (1000)")
    parser.add_argument("--queues", type=int, default=10, help="queues (10)")
    parser.add_argument("--seed", type=int, default=1, help="talk times (default 1)")
    parser.add_argument(
        "--database-url",
        help=f"use this database (kept) instead of a fresh one on {POSTGRES} (dropped)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(args.agents, args.queues, args.rate, args.seconds, (0.5, 3.0), args.seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the finally blocks run
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    fresh = args.database_url is None
    url = asyncio.run(create_postgres(POSTGRES)) if fresh else args.database_url
    try:
        with tempfile.TemporaryDirectory(prefix="acd-bench-") as tmp_name:
            tmp = Path(tmp_name)
            (tmp / "centre.yaml").write_text(yaml.safe_dump(centre(plan)))
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            process = start_server(tmp, url, port)
            try:
                runner(wait_ready(base, process, tmp / "server.log"))
                tally, window, desks = runner(run(plan, url, base, process.pid))
            finally:
                stop_server(process)
    except KeyboardInterrupt:
        return 130
    finally:
        if fresh:
            asyncio.run(drop_postgres(url))
    shown = make_url(url).render_as_string(hide_password=True)
    s = summary(plan, tally, window, desks, shown)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print_table(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
