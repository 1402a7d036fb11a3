"""What the server benches share: loopback ports, the server as a subprocess, /proc, /metrics.

``server.py`` (WebSocket agents, PostgreSQL) and ``sip.py`` (SIPp phones,
SQLite) both run ``acd serve`` as a child process in its own session, so
that stopping it (and, for SIPp, each peer) is one ``killpg`` that also takes
whatever it started, and a Ctrl-C at the terminal reaches only the bench,
which then stops its children itself. CPU is read from ``/proc`` (user plus
system time, 100 % = one core); histograms from a Prometheus scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
from collections import Counter
from pathlib import Path

import httpx

SECRET = "bench-secret-key-that-is-long-enough-for-hs256"
ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
LOOPBACK = "127.0.0.1"


# == ports =============================================================================


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


def udp_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


# == processes and /proc ===============================================================


def raise_file_limit() -> None:
    """Up to the hard limit of open files, inherited by the children (a socket per RTP leg)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_server(
    tmp: Path,
    database_url: str,
    http_port: int,
    *,
    sip_port: int | None = None,
    ivr_flow: Path | None = None,
) -> subprocess.Popen[bytes]:
    """``acd serve`` on ``tmp / "centre.yaml"``, logging to ``tmp / "server.log"``."""
    env = {**os.environ, "ACD_JWT_SECRET": SECRET, "ACD_SPOOL_PATH": str(tmp / "acd.spool")}
    env["ACD_DRAIN_SECONDS"] = "2"
    command = [str(PYTHON), "-m", "acd.cli", "serve", "--config", str(tmp / "centre.yaml")]
    command += ["--port", str(http_port), "--database-url", database_url]
    if sip_port is not None:
        env["ACD_SIP_DIGEST"] = "MD5"  # all SIPp can answer
        command += ["--sip-port", str(sip_port)]
    if ivr_flow is not None:
        env["ACD_IVR_FLOW"] = str(ivr_flow)
    with open(tmp / "server.log", "wb") as log:
        return subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_process(process: subprocess.Popen[bytes], first: signal.Signals) -> None:
    """``first``, then SIGTERM, then SIGKILL: the process (its own group) is gone on return."""
    if process.poll() is not None:
        return
    for sig, patience in ((first, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(patience)
            return
        except subprocess.TimeoutExpired:
            continue


async def wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(1200):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the server was not ready within 60 s:\n{log.read_text()}")


def log_warnings(log: Path) -> dict[str, int]:
    """The server's warnings and errors, counted by the start of their message.

    The server writes JSON lines (``api.logs``); anything else in the file
    (the start-up banner on stdout) is not a log record and is skipped.
    """
    found: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            message = str(record.get("message", "")).split(":")[0][:60]
            found[f"{record['level']} {record.get('logger')}: {message}"] += 1
    return dict(found)


def cpu_of(pid: int) -> float:
    """User plus system CPU seconds of a process, from /proc/<pid>/stat (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> tuple[float, float]:
    """Busy and total CPU time of the whole machine (all cores), from /proc/stat, in ticks."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # only the ratio is used


# == /metrics ==========================================================================


def histogram(text: str, name: str) -> dict[float, float]:
    """Cumulative counts of the (unlabelled) histogram ``name`` by upper bound, from a scrape."""
    out: dict[float, float] = {}
    prefix = f"{name}_bucket{{"
    for line in text.splitlines():
        if line.startswith(prefix):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(bound)] = float(line.rsplit(" ", 1)[1])
    return out


def sample_sum(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``, from a scrape."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            series = line.rsplit(" ", 1)[0]
            if all(w in series for w in wanted):
                total += float(line.rsplit(" ", 1)[1])
    return total
