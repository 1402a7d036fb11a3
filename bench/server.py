"""Injection to offer through a real server: 1,000 agent WebSockets, 200 calls/s.

``acd serve`` runs as a subprocess on a loopback port against a fresh
PostgreSQL database (dropped after; or ``--database-url``), with 1,000 agents
in 10 queues (every other agent in two), no wrap-up, no announcements. Each
agent is a WebSocket on ``/v1/ws`` that logs in, goes ready, notes when its
offer (``reservation.state_changed`` to ``pending``) arrives, accepts it, and
hangs up after a random 0.5-3 s. Calls are POSTs to ``/v1/calls`` with a
caller number each (so the screen-pop look-up runs), round-robin over the
queues, open loop: call ``i`` is due ``i / rate`` s after the start, whatever
the earlier replies, sent over 128 keep-alive connections (a call due while
all are busy waits: "bench lateness") by a minimal HTTP/1.1 client of the
bench's own, so that the bench's CPU goes to the desktops, not to a client
library.

Latency: from just before a call's POST is sent to its offer's arrival at the
agent's socket (matched by call id; the offer may beat the 201). "Due time to
offer" adds the bench's lateness. Over the load window (first POST to last
reply): rows added to ``events`` per second, the server's CPU (``/proc``),
this process's, and the machine's busy share; 100 % is one core, and bench,
server and database share the machine. This process runs its window with its
heap frozen and its collector off, so that its own pauses are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import sqlalchemy as sa
import websockets
import yaml
from harness import (
    SECRET,
    cpu_of,
    free_port,
    histogram,
    log_warnings,
    machine,
    start_server,
    stop_process,
    wait_ready,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from api.auth import Role, issue

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"
TARGET_P99_MS = 50.0
LANES = 128  # POSTs in flight at most, one connection each
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


# == the database and the server process =============================================


async def on_postgres(url: str, statement: str) -> None:
    """Run ``statement`` in the ``postgres`` database of the server of ``url``."""
    u = make_url(url)
    admin = await asyncpg.connect(
        host=u.host, port=u.port or 5432, user=u.username, password=u.password, database="postgres"
    )
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


async def count_events(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(sa.text("SELECT count(*) FROM events"))).scalar_one())
    finally:
        await engine.dispose()


def offer_histogram(text: str) -> dict[float, float]:
    return histogram(text, "acd_offer_publish_seconds")


def server_view(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """The server's own arrival-to-offer-sent times over the window, from its histogram.

    Percentiles are the upper bound of the bucket they fall in (so "<= 25 ms").
    """
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    out: dict[str, Any] = {"offers": int(total)}
    for name, share in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        bound = next((b for b, c in zip(bounds, counts, strict=True) if c >= share * total), None)
        out[name] = None if bound is None or not total else bound * 1e3
    within = dict(zip(bounds, counts, strict=True)).get(0.05, 0.0)
    out["share_within_50ms"] = round(within / total, 4) if total else None
    return out


# == agents and callers ==============================================================


@dataclass
class Tally:
    sent: dict[str, tuple[float, float]] = field(default_factory=dict)  # call id: t0, due
    offered: dict[str, float] = field(default_factory=dict)  # call id: its offer's arrival
    reply_ms: list[float] = field(default_factory=list)  # POST to its 201
    lag_ms: list[float] = field(default_factory=list)  # due time to t0: the bench's lateness
    injected: int = 0  # POSTs sent
    hangups: int = 0
    failures: Counter[str] = field(default_factory=Counter)
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
                        self.send("accept", data["call_id"])
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
            talk = self.rng.uniform(*self.talk)
            asyncio.get_running_loop().call_later(talk, self.send, "hangup", call_id)
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


class Lane:
    """One keep-alive HTTP/1.1 connection that POSTs JSON, one request at a time.

    Written out instead of httpx: at 200 requests a second httpx cost this
    process a third of a core (its connection pool and a failed import per
    request), and a busy bench measures its own event loop, not the server.
    The server still parses and answers full HTTP/1.1.
    """

    def __init__(self, host: str, port: int, bearer: str) -> None:
        self._address = (host, port)
        self._head = f"Host: {host}:{port}\r\nAuthorization: Bearer {bearer}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(*self._address)
        assert self._reader is not None
        data = json.dumps(body).encode()
        self._writer.write(
            f"POST {path} HTTP/1.1\r\n{self._head}Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()


async def inject(lanes: Sequence[Lane], plan: Plan, tally: Tally) -> None:
    """Open loop: call i is due at i / rate, whatever the earlier replies.

    One POST at a time per lane (connection), as many lanes as POSTs in flight.
    """
    due_calls: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

    async def run_lane(lane: Lane) -> None:
        while (item := await due_calls.get()) is not None:
            i, due = item
            body = {"queue": f"q{i % plan.queues}", "ani": f"+1555{i:07d}"}
            t0 = time.perf_counter()
            tally.lag_ms.append(1e3 * (t0 - due))
            tally.injected += 1
            try:
                status, reply = await lane.post("/v1/calls", body)
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                tally.failures[f"POST: {type(error).__name__}"] += 1
                continue
            if status != 201:
                tally.failures[f"POST: {status}"] += 1
                continue
            tally.reply_ms.append(1e3 * (time.perf_counter() - t0))
            tally.sent[json.loads(reply)["id"]] = (t0, due)

    tasks = [asyncio.create_task(run_lane(lane)) for lane in lanes]
    start = time.perf_counter()
    for i in range(round(plan.rate * plan.seconds)):
        due = start + i / plan.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        due_calls.put_nowait((i, due))
    for _ in tasks:
        due_calls.put_nowait(None)
    await asyncio.gather(*tasks)


# == the run =========================================================================


async def run(plan: Plan, url: str, base: str, pid: int) -> tuple[Tally, dict[str, Any]]:
    tally = Tally()
    ws_url = base.replace("http://", "ws://") + "/v1/ws"
    gate = asyncio.Semaphore(50)

    async def one(i: int) -> Desk:
        async with gate:
            return await open_desk(ws_url, f"a{i:04d}", tally, plan)

    desks = await asyncio.gather(*(one(i) for i in range(plan.agents)))
    admin = issue(SECRET, Role.ADMIN)
    headers = {"Authorization": f"Bearer {admin}"}
    host, port = base.removeprefix("http://").rsplit(":", 1)
    lanes = [Lane(host, int(port), admin) for _ in range(LANES)]
    try:
        await lanes[0].post("/v1/calls", {"queue": "q0"})  # warm the path
        await asyncio.sleep(plan.talk[1] + 1)
        tally.sent.clear()
        tally.offered.clear()
        tally.hangups = 0
        async with httpx.AsyncClient(base_url=base, headers=headers) as client:
            histogram0 = offer_histogram((await client.get("/metrics")).text)
        events0 = await count_events(url)
        gc.collect()
        gc.freeze()
        gc.disable()
        busy0, total0 = machine()
        cpu0, own0, t0 = cpu_of(pid), time.process_time(), time.perf_counter()
        await inject(lanes, plan, tally)
        seconds = time.perf_counter() - t0
        cpu, own, (busy, total) = cpu_of(pid) - cpu0, time.process_time() - own0, machine()
        gc.enable()
        window: dict[str, Any] = {"seconds": seconds}
        window["events"] = await count_events(url) - events0
        window |= {"server_cpu": cpu / seconds, "bench_cpu": own / seconds}
        window["machine_busy"] = (busy - busy0) / (total - total0)
    finally:
        await asyncio.gather(*(lane.close() for lane in lanes))
    deadline = time.perf_counter() + GRACE_SECONDS
    while set(tally.sent) - set(tally.offered) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    async with httpx.AsyncClient(base_url=base, headers=headers) as client:
        histogram = offer_histogram((await client.get("/metrics")).text)
    window["server_view"] = server_view(histogram0, histogram)
    answered = len(set(tally.sent) & set(tally.offered))
    deadline = time.perf_counter() + plan.talk[1] + 5
    while tally.hangups < answered and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    tally.closing = True
    await asyncio.gather(*(d.socket.close() for d in desks))
    await asyncio.gather(*(d.reader for d in desks))
    window["agents"] = len(desks)
    return tally, window


# == output ==========================================================================


def figures(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p90, p99 (nearest rank) and max, in ms rounded to 0.01."""
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for name, share in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
        rank = min(len(ordered), max(1, round(share * len(ordered))))
        out[name] = round(ordered[rank - 1], 2) if ordered else None
    return out


def summary(
    plan: Plan, tally: Tally, w: dict[str, Any], database: str, warnings: dict[str, int]
) -> dict[str, Any]:
    got = tally.offered
    offered = [(got[c], t0, due) for c, (t0, due) in tally.sent.items() if c in got]
    latency = figures([1e3 * (at - t0) for at, t0, _ in offered])
    failures = dict(tally.failures)
    if len(offered) < len(tally.sent):
        failures["offers missing"] = len(tally.sent) - len(offered)
    p99 = latency["p99"]
    return {
        "offer_latency_ms": latency,
        "due_to_offer_ms": figures([1e3 * (at - due) for at, _, due in offered]),
        "post_reply_ms": figures(tally.reply_ms),
        "bench_lateness_ms": figures(tally.lag_ms),
        "server_arrival_to_offer_sent_ms": w["server_view"],
        "calls_injected": tally.injected,
        "calls_created": len(tally.sent),
        "calls_offered": len(offered),
        "calls_hung_up": tally.hangups,
        "failures": failures,
        "target_p99_ms": TARGET_P99_MS,
        "target_met": p99 is not None and p99 <= TARGET_P99_MS and not failures,
        "window_seconds": round(w["seconds"], 2),
        "achieved_calls_per_second": round(tally.injected / w["seconds"], 1),
        "events_persisted": w["events"],
        "events_per_second": round(w["events"] / w["seconds"], 1),
        "server_cpu_percent": round(100 * w["server_cpu"], 1),
        "bench_cpu_percent": round(100 * w["bench_cpu"], 1),
        "machine_busy_percent": round(100 * w["machine_busy"], 1),
        "cores": os.cpu_count(),
        "agents_connected": w["agents"],
        "plan": asdict(plan),
        "database": database,
        "server_log_warnings": warnings,
    }


def print_table(s: dict[str, Any]) -> None:
    p = s["plan"]
    print(f"ACD server benchmark: {s['agents_connected']:,} agent WebSockets, {p['queues']} queues")
    print(f"{p['rate']:g} calls/s for {p['seconds']:g} s, open loop; talk {p['talk']} s")
    print(f"database: {s['database']}; {s['cores']} cores shared by bench, server and database")
    print()
    print(f"{'ms':<30}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}")
    for label, key in (
        ("POST to offer at the socket", "offer_latency_ms"),
        ("due time to offer", "due_to_offer_ms"),
        ("POST to its 201 reply", "post_reply_ms"),
        ("bench lateness (due to POST)", "bench_lateness_ms"),
    ):
        cells = "".join(f"{'-':>10}" if v is None else f"{v:>10,.1f}" for v in s[key].values())
        print(f"{label:<30}{cells}")
    view = s["server_arrival_to_offer_sent_ms"]
    shown = "  ".join(
        f"{k} {'-' if view[k] is None else f'<= {view[k]:g}'}" for k in ("p50", "p90", "p99")
    )
    print(f"server's own view, arrival to offer sent (its histogram): {shown} ms")
    print()
    print(
        f"calls: {s['calls_injected']:,} injected, {s['calls_created']:,} created (201), "
        f"{s['calls_offered']:,} offered, {s['calls_hung_up']:,} hung up"
    )
    print("failures:", ", ".join(f"{k} x{v}" for k, v in s["failures"].items()) or "none")
    print(
        f"window {s['window_seconds']:.1f} s: {s['achieved_calls_per_second']:,.1f} calls/s, "
        f"{s['events_per_second']:,.0f} events/s persisted ({s['events_persisted']:,} rows)"
    )
    print(
        f"CPU (100% = one core): server {s['server_cpu_percent']:.0f}%, bench "
        f"{s['bench_cpu_percent']:.0f}%; machine busy {s['machine_busy_percent']:.0f}% of all cores"
    )
    logged = ", ".join(f"{k} x{v}" for k, v in s["server_log_warnings"].items())
    print("server log warnings:", logged or "none")
    p99 = s["offer_latency_ms"]["p99"]
    shown = "-" if p99 is None else f"{p99:,.1f} ms"
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
        "--database-url", help=f"this database (kept) instead of a fresh one on {POSTGRES}"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(args.agents, args.queues, args.rate, args.seconds, (0.5, 3.0), args.seed)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    fresh = args.database_url is None
    name = f"acd_bench_{uuid.uuid4().hex[:12]}"
    url: str = args.database_url or make_url(POSTGRES).set(database=name).render_as_string(False)
    if fresh:
        asyncio.run(on_postgres(url, f'CREATE DATABASE "{name}"'))
    try:
        with tempfile.TemporaryDirectory(prefix="acd-bench-") as tmp_name:
            tmp = Path(tmp_name)
            (tmp / "centre.yaml").write_text(yaml.safe_dump(centre(plan)))
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            process = start_server(tmp, url, port)

            def interrupt(signum: int, frame: Any) -> None:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)  # after Ctrl-C's SIGINT: stops at once
                raise KeyboardInterrupt

            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, interrupt)
            try:
                runner(wait_ready(base, process, tmp / "server.log"))
                tally, window = runner(run(plan, url, base, process.pid))
            finally:
                warnings = log_warnings(tmp / "server.log")  # before its stop's own warnings
                stop_process(process, signal.SIGTERM)  # it drains, then stops
    except KeyboardInterrupt:
        return 130
    finally:
        if fresh:
            asyncio.run(on_postgres(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    shown = make_url(url).render_as_string(hide_password=True)
    s = summary(plan, tally, window, shown, warnings)
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        print_table(s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
