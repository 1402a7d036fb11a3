"""SIP load: the highest calls per second the server bridges with no failed call.

``acd serve --sip-port`` runs as a subprocess on loopback, on SQLite in a
temporary folder (removed after), with one queue ``q0`` (no wrap-up, no
announcements) and N agents in it (default 50), digest MD5 for SIPp. The
agents' phones are one SIPp ``agent_answer.xml`` UAS: every agent gets SIP
credentials (``PUT /v1/agents/{id}/sip``), registers with
``agent_register.xml`` (one SIPp run per agent, its Contact pointing at that
UAS), then logs in and goes ready over REST. The UAS answers each INVITE
after ``--ring-ms``, streams a tone, and waits for the centre's BYE.

Callers are SIPp ``caller_load.xml`` dialling ``q0`` (no IVR, no keys),
``-rtp_echo`` on their side only (loadtest/sipp/README.md: never echo on
both sides), at a rate R for ``--window`` seconds, each talking
``--talk`` seconds, then hanging up. Steps double R from ``--start-rate``
up to ``--max-rate`` and stop at the first step with a failed call (or one
whose SIPp run had to be stopped), or when ``--budget`` seconds are spent.
Each step counts SIPp's own statistics (``SuccessfulCall(C)``,
``FailedCall(C)``), the most calls ``connected`` in ``GET /v1/calls`` over
the step (polled twice a second), and the server's CPU from ``/proc`` over
the step (100 % is one core; SIPp and this bench share the machine).

Agents limit what a step can show: R x (talk + ring) above N makes callers
wait in the queue, which is still a success but no longer measures the
SIP side alone; the table marks such a step.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import yaml  # noqa: E402

from api.auth import Role, issue  # noqa: E402

SECRET = "bench-secret-key-that-is-long-enough-for-hs256"
PYTHON = ROOT / ".venv" / "bin" / "python"
SCENARIOS = ROOT / "loadtest" / "sipp"
LOOPBACK = "127.0.0.1"
REGISTER_CONCURRENCY = 8
POLL_SECONDS = 0.5
STEP_SLACK = 30.0  # beyond window + talk, how long a step's callers may take before being stopped


# == ports, processes, /proc ===========================================================


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def free_port_pair() -> int:
    """An even UDP port whose successor is free too (RTP and RTCP, RFC 3550 §11)."""
    for _ in range(100):
        port = free_port(socket.SOCK_DGRAM) & ~1
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
            ):
                a.bind((LOOPBACK, port))
                b.bind((LOOPBACK, port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free even UDP port pair")


def cpu_of(pid: int) -> float:
    """User plus system CPU seconds of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_process(process: subprocess.Popen[bytes], first: signal.Signals) -> None:
    """``first``, then SIGKILL: the process (its own group) is gone when this returns."""
    if process.poll() is not None:
        return
    for sig, patience in ((first, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(patience)
            return
        except subprocess.TimeoutExpired:
            continue


def last_statistics(path: Path) -> dict[str, str]:
    """The last row of a SIPp ``-trace_stat`` CSV, by column."""
    try:
        rows = [r for r in csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";")]
    except FileNotFoundError:
        return {}
    rows = [r for r in rows if r]
    if len(rows) < 2:
        return {}
    return {k: v for k, v in zip(rows[0], rows[-1], strict=False) if k}


def count(stats: dict[str, str], column: str) -> int:
    try:
        return int(stats.get(column, "0") or 0)
    except ValueError:
        return 0


# == the server ========================================================================


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    agents: int
    start_rate: float
    max_rate: float
    window: float
    talk: float
    ring_ms: int
    budget: float


def centre(agents: int) -> dict[str, Any]:
    return {
        "queues": [{"id": "q0", "wrap_up_seconds": 0, "announce_every_seconds": None}],
        "agents": [{"id": agent_id(i), "queues": ["q0"]} for i in range(agents)],
    }


def agent_id(i: int) -> str:
    return f"a{i:04d}"


def start_server(tmp: Path, http_port: int, sip_port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ACD_JWT_SECRET": SECRET, "ACD_SIP_DIGEST": "MD5"}
    env["ACD_SPOOL_PATH"] = str(tmp / "acd.spool")
    env["ACD_DRAIN_SECONDS"] = "2"
    command = [str(PYTHON), "-m", "acd.cli", "serve", "--config", str(tmp / "centre.yaml")]
    command += ["--port", str(http_port), "--sip-port", str(sip_port)]
    command += ["--database-url", f"sqlite+aiosqlite:///{tmp / 'acd.db'}"]
    with open(tmp / "server.log", "wb") as log:
        return subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


async def wait_ready(
    client: httpx.AsyncClient, process: subprocess.Popen[bytes], log: Path
) -> None:
    for _ in range(1200):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if (await client.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the server was not ready within 60 s:\n{log.read_text()}")


# == SIPp ==============================================================================


def sipp_command(scenario: str, workdir: Path, *, port: int, media_port: int) -> list[str]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("no sipp on PATH: scripts/install-sip-peers.sh installs it")
    command = [sipp, "-sf", str(SCENARIOS / f"{scenario}.xml"), "-i", LOOPBACK, "-p", str(port)]
    command += ["-mi", LOOPBACK, "-mp", str(media_port), "-nostdin"]
    command += ["-trace_stat", "-stf", str(workdir / "statistics.csv"), "-fd", "1"]
    command += ["-trace_err", "-error_file", str(workdir / "errors.log")]
    return command


def spawn(command: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    voice = workdir / "agent_voice.ulaw"  # rtp_stream reads it from the working folder
    if not voice.exists():
        voice.symlink_to(SCENARIOS / "agent_voice.ulaw")
    with open(workdir / "stdout.txt", "wb") as out, open(workdir / "stderr.txt", "wb") as err:
        return subprocess.Popen(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own group, stopped as one
        )


def udp_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


async def register(target: str, user: str, password: str, contact_port: int, tmp: Path) -> bool:
    workdir = tmp / "register" / user
    command = sipp_command(
        "agent_register", workdir, port=free_port(socket.SOCK_DGRAM), media_port=free_port_pair()
    )
    command += ["-s", user, "-au", user, "-ap", password, "-m", "1", "-r", "1"]
    command += ["-set", "contact_port", str(contact_port), target]
    process = spawn(command, workdir)
    try:
        for _ in range(200):  # 10 s
            if process.poll() is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        stop_process(process, signal.SIGTERM)
    stats = last_statistics(workdir / "statistics.csv")
    return process.returncode == 0 and count(stats, "SuccessfulCall(C)") == 1


# == the steps =========================================================================


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    rate: float
    calls: int  # asked of SIPp: rate x window
    created: int
    successful: int
    failed: int
    stopped: bool  # SIPp did not end by itself within window + talk + slack
    seconds: float  # the step's wall time, first call to SIPp's end
    peak_connected: int  # most calls "connected" in GET /v1/calls at once
    server_cpu_percent: float  # over the step; 100 = one core
    agents_short: bool  # rate x (talk + ring) > agents: callers may have queued

    @property
    def clean(self) -> bool:
        return not self.stopped and self.failed == 0 and self.successful == self.calls


async def run_step(
    plan: Plan, rate: float, target: str, admin: httpx.AsyncClient, pid: int, tmp: Path
) -> Step:
    workdir = tmp / f"callers-{rate:g}"
    workdir.mkdir(parents=True)
    calls = max(1, round(rate * plan.window))
    injection = workdir / "callers.csv"
    rows = [f"+1555{1000000 + i:07d};q0;" for i in range(calls)]
    injection.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n")
    command = sipp_command(
        "caller_load", workdir, port=free_port(socket.SOCK_DGRAM), media_port=free_port_pair()
    )
    command += ["-inf", str(injection), "-rtp_echo", "-r", f"{rate:g}", "-m", str(calls)]
    command += ["-l", str(calls), "-set", "talk_ms", str(round(plan.talk * 1000)), target]
    peak = 0
    cpu0, t0 = cpu_of(pid), time.monotonic()
    process = spawn(command, workdir)
    deadline = t0 + plan.window + plan.talk + STEP_SLACK
    stopped = False
    try:
        while process.poll() is None:
            if time.monotonic() > deadline:
                stopped = True
                break
            with contextlib.suppress(httpx.HTTPError):
                listed = (await admin.get("/v1/calls")).json()
                peak = max(peak, sum(1 for c in listed if c.get("state") == "connected"))
            await asyncio.sleep(POLL_SECONDS)
    finally:
        stop_process(process, signal.SIGTERM)
    seconds = time.monotonic() - t0
    cpu = cpu_of(pid) - cpu0
    stats = last_statistics(workdir / "statistics.csv")
    return Step(
        rate=rate,
        calls=calls,
        created=count(stats, "TotalCallCreated"),
        successful=count(stats, "SuccessfulCall(C)"),
        failed=count(stats, "FailedCall(C)"),
        stopped=stopped,
        seconds=round(seconds, 2),
        peak_connected=peak,
        server_cpu_percent=round(100.0 * cpu / seconds, 1) if seconds else 0.0,
        agents_short=rate * (plan.talk + plan.ring_ms / 1000) > plan.agents,
    )


async def settle(admin: httpx.AsyncClient, seconds: float = 10.0) -> int:
    """Wait for the centre to have no call left; the number left when it gives up."""
    left = -1  # unknown
    for _ in range(int(seconds / 0.1)):
        with contextlib.suppress(httpx.HTTPError):
            left = len((await admin.get("/v1/calls")).json())
            if left == 0:
                return 0
        await asyncio.sleep(0.1)
    return left


async def run(plan: Plan, tmp: Path) -> dict[str, Any]:
    http_port, sip_port = free_port(), free_port(socket.SOCK_DGRAM)
    (tmp / "centre.yaml").write_text(yaml.safe_dump(centre(plan.agents)))
    server = start_server(tmp, http_port, sip_port)
    phones: subprocess.Popen[bytes] | None = None
    began = time.monotonic()
    target = f"{LOOPBACK}:{sip_port}"
    admin_token = issue(SECRET, Role.ADMIN)
    base = f"http://{LOOPBACK}:{http_port}"
    headers = {"Authorization": f"Bearer {admin_token}"}
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as admin:
            await wait_ready(admin, server, tmp / "server.log")
            for i in range(plan.agents):
                body = {"username": agent_id(i), "password": f"secret-{i}"}
                reply = await admin.put(f"/v1/agents/{agent_id(i)}/sip", json=body)
                reply.raise_for_status()
            phone_port = free_port(socket.SOCK_DGRAM)
            command = sipp_command(
                "agent_answer", tmp / "phones", port=phone_port, media_port=free_port_pair()
            )
            command += ["-set", "ring_ms", str(plan.ring_ms), "-set", "talk_ms", "0"]
            phones = spawn(command, tmp / "phones")
            for _ in range(100):
                if udp_taken(phone_port) or phones.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            if phones.poll() is not None or not udp_taken(phone_port):
                raise RuntimeError("the agents' SIPp UAS did not start: see its stderr")
            gate = asyncio.Semaphore(REGISTER_CONCURRENCY)

            async def one(i: int) -> bool:
                async with gate:
                    return await register(target, agent_id(i), f"secret-{i}", phone_port, tmp)

            registered = await asyncio.gather(*(one(i) for i in range(plan.agents)))
            if not all(registered):
                missing = [agent_id(i) for i, ok in enumerate(registered) if not ok]
                raise RuntimeError(f"{len(missing)} agents did not register: {missing[:5]}...")
            for i in range(plan.agents):
                token = issue(SECRET, Role.AGENT, agent_id=agent_id(i))
                auth = {"Authorization": f"Bearer {token}"}
                for verb in ("login", "ready"):
                    reply = await admin.post(f"/v1/agents/{agent_id(i)}/{verb}", headers=auth)
                    reply.raise_for_status()
            setup = time.monotonic() - began
            steps: list[Step] = []
            left = 0
            rate = plan.start_rate
            while rate <= plan.max_rate:
                spent = time.monotonic() - began
                if steps and spent + plan.window + plan.talk + 5 > plan.budget:
                    break
                step = await run_step(plan, rate, target, admin, server.pid, tmp)
                steps.append(step)
                left = await settle(admin)
                if not step.clean or left:
                    break
                rate *= 2
    finally:
        if phones is not None:  # SIGUSR1: no new calls, then exit with a last statistics row
            stop_process(phones, signal.SIGUSR1)
        stop_process(server, signal.SIGTERM)  # it drains, then stops
    clean = [s for s in steps if s.clean]
    best = max(clean, key=lambda s: s.rate) if clean else None
    return {
        "plan": asdict(plan),
        "database": "SQLite in a temporary folder",
        "cores": os.cpu_count(),
        "setup_seconds": round(setup, 1),
        "steps": [{**asdict(s), "clean": s.clean} for s in steps],
        "calls_left_after_last_step": left,
        "best_rate_without_failure": best.rate if best else None,
        "peak_connected": max((s.peak_connected for s in steps), default=0),
        "peak_connected_at_best": best.peak_connected if best else None,
        "server_exit_code": server.returncode,
        "total_seconds": round(time.monotonic() - began, 1),
    }


# == output ============================================================================


def print_table(s: dict[str, Any]) -> None:
    p = s["plan"]
    print(
        f"ACD SIP load: {p['agents']} agents in q0 on one SIPp UAS (ring {p['ring_ms']} ms), "
        f"SIPp callers with RTP echo, {p['window']:g} s per step, talk {p['talk']:g} s"
    )
    print(f"database: {s['database']}; {s['cores']} cores shared by SIPp, bench and server")
    print(f"setup (credentials, registrations, login, ready): {s['setup_seconds']} s")
    print()
    head = f"{'calls/s':>8}{'calls':>7}{'ok':>6}{'failed':>8}{'stopped':>9}"
    head += f"{'peak conn':>11}{'server CPU':>12}{'seconds':>9}"
    print(head)
    for step in s["steps"]:
        mark = "  (agents short: callers queued)" if step["agents_short"] else ""
        print(
            f"{step['rate']:>8g}{step['calls']:>7}{step['successful']:>6}{step['failed']:>8}"
            f"{'yes' if step['stopped'] else 'no':>9}{step['peak_connected']:>11}"
            f"{step['server_cpu_percent']:>11.1f}%{step['seconds']:>9.1f}{mark}"
        )
    print()
    best = s["best_rate_without_failure"]
    last = s["steps"][-1] if s["steps"] else None
    why = "none" if last is None else ("failures" if not last["clean"] else "max rate or budget")
    print(
        f"highest calls/s with no failed call: {best if best is not None else 'none'}"
        f" (stopped by: {why})"
    )
    print(f"most concurrent bridged calls seen: {s['peak_connected']}")
    print(f"calls left in the centre after the last step: {s['calls_left_after_last_step']}")
    print(f"total {s['total_seconds']} s; server exit code {s['server_exit_code']}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="SIP calls per second through the server.")
    parser.add_argument("--agents", type=int, default=50, help="agents in q0 (50)")
    parser.add_argument("--start-rate", type=float, default=2.0, help="first step, calls/s (2)")
    parser.add_argument("--max-rate", type=float, default=16.0, help="last step at most (16)")
    parser.add_argument("--window", type=float, default=15.0, help="seconds of calls per step (15)")
    parser.add_argument("--talk", type=float, default=2.0, help="seconds per call, whole (2)")
    parser.add_argument("--ring-ms", type=int, default=100, help="agent phones' ring (100)")
    parser.add_argument("--budget", type=float, default=240.0, help="no new step after (240 s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(
        agents=args.agents,
        start_rate=args.start_rate,
        max_rate=args.max_rate,
        window=args.window,
        talk=float(max(1, round(args.talk))),  # caller_load.xml counts whole seconds
        ring_ms=args.ring_ms,
        budget=args.budget,
    )
    tmp = Path(tempfile.mkdtemp(prefix="acd-sip-bench-"))
    try:
        summary = asyncio.run(run(plan, tmp))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
