"""SIP load through IVR -> queue -> agent: the highest clean calls/s, the most calls on time.

The server. ``acd serve --sip-port`` runs as a subprocess on loopback, on
SQLite in a temporary folder (removed after), with the demo IVR
(``ivr/demo_ivr.yaml``) and the demo's three queues; N agents serve
``support`` (no wrap-up, no announcements), digest MD5 for SIPp. The agents'
phones are one SIPp ``agent_answer.xml`` UAS: every agent gets SIP
credentials (``PUT /v1/agents/{id}/sip``), is registered (a REGISTER with
digest MD5 sent by the bench, many at a time, its Contact pointing at that
UAS), then logs in and goes ready over REST. The UAS answers each INVITE
after ``--ring-ms``, streams a 440 Hz tone (``rtp_stream``) and waits for the
centre's BYE.

The callers. SIPp ``caller_load.xml`` dials the IVR's entry ``100``: it hears
the greeting, presses ``1`` (English) then ``2`` (technical support) as RFC
4733 events (SIPp's ``play_dtmf``, which needs root or CAP_NET_RAW), hears
"transferring", is queued in ``support`` and bridged to an agent's phone.
It echoes every packet it gets (``-rtp_echo``), so RTP goes both ways
through the server's relay: the agent's tone to the caller, and back from
the caller to the agent. The caller hangs up (BYE) a set time after its
keys: ``IVR_SECONDS`` for the IVR, the ring, then the talk time.

1. Highest calls per second with no failed call. A step sends callers at R
   calls/s for ``--window`` seconds, each talking ``--talk`` s with its agent.
   It is *clean* when SIPp ends by itself, every call is successful (SIPp's
   ``SuccessfulCall``, ``FailedCall`` 0), the agents' UAS failed none, and the
   server bridged every one (its ``acd_transitions_total`` from offered to
   connected went up by the number of calls). R doubles from
   ``--start-rate`` up to ``--max-rate``; after the first failing step, R is
   bisected between the last clean and the first failing rate
   (``--bisections`` times). A failing step's reason is SIPp's own: its
   non-zero ``Failed...`` counters and the first lines of its error log.
   Agents are ``max(--agents, what the rates need)``, so queueing is not the
   limit (a step where R x (ring + talk + 1 s) exceeds them is marked).

2. Most concurrent bridged calls before packets are late. A step brings N
   callers in at ``--ramp-rate`` (at most the highest clean rate of part 1)
   and keeps them all bridged for ``--hold`` seconds; N doubles from
   ``--calls`` up to ``--max-calls``. During the hold, with all N bridged
   and nothing else happening, the server's own meter is read from
   ``/metrics`` (``acd_rtp_relayed_lateness_seconds``, before and after):
   each relayed packet's arrival is timed against its RTP timestamp, its
   lateness being its transit minus the least transit of its stream over
   the last one to two seconds (delay variation, RFC 5481), which takes in
   the server's event loop reading the socket late, and the sender's own
   scheduling (``ivr/media/bridge.py``). A packet is **late** when it
   arrives 20 ms (one packet time) or more after its timestamp's place.
   That figure mixes SIPp's timing with ours, and on a small shared VM
   SIPp's own tone is often that late by itself (a control call,
   ``rtp_probe.py``, straight to the agents' SIPp and not through the
   server, times it the same way: the step is then marked "SIPp's own tone
   late"). So the step is judged on the server's own part, its event loop's
   lag (``acd_event_loop_lag_seconds``, ``api/loop_lag.py``: how much later
   than due the loop woke a 20 ms sleep, fifty times a second): a packet
   that reaches the socket waits to be read at most that long. A step is
   *on time* when at least 99.9 % of the loop's wake-ups were under 20 ms
   late, at least 99 % of the packets expected arrived (2 streams relayed a
   call: the tone to the caller and its echo to the agent, 50 packets a
   second each; the 1 % covers the packets in flight at the window's
   edges), SIPp failed no call and all N were bridged. The relayed packets'
   lateness is shown beside it. The paced frames' lateness (prompts, music
   on hold: ``acd_rtp_paced_lateness_seconds``, a frame sent 20 ms or more
   after its due time is late) is shown over the whole step, as the IVR
   runs during the ramp.

CPU (from ``/proc``; 100 % is one core) of the server and of the SIPp
processes is shown for every step; SIPp, the bench and the server share the
machine, so run it on a quiet one. Both parts stop at their first failing
step or when their budget (``--rate-budget``, ``--hold-budget`` seconds) is
spent: by default the whole bench ends within about 10 minutes.
``--quick`` is a smoke run of two small steps each (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import re
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
from harness import (  # noqa: E402
    LOOPBACK,
    SECRET,
    cpu_of,
    free_port,
    free_port_pair,
    histogram,
    log_warnings,
    machine,
    raise_file_limit,
    sample_sum,
    start_server,
    stop_process,
    udp_taken,
    wait_ready,
)
from rtp_probe import ProbeResult, ToneProbe  # noqa: E402

from api.auth import Role, issue  # noqa: E402
from ivr.sip import Response, parse_message  # noqa: E402
from ivr.sip.digest import answer_challenge  # noqa: E402
from ivr.sip.errors import ParseError  # noqa: E402

SCENARIOS = ROOT / "loadtest" / "sipp"
DEMO_IVR = ROOT / "ivr" / "demo_ivr.yaml"
ENTRY = "100"  # the demo IVR's number
KEYS = "12"  # English, then technical support
QUEUE = "support"
TONE_MS = 60
DTMF_DELAY_MS = 500
# From the caller's keys to its being queued: the keys (0.4 s + 2 x 2 x 60 ms),
# the menus they type ahead of, and the 2.7 s "transferring" prompt, with slack.
IVR_SECONDS = 5.0
REGISTER_CONCURRENCY = 50  # REGISTERs in flight
REST_CONCURRENCY = 10  # set-up requests in flight
POLL_SECONDS = 0.5
SETTLE_SECONDS = 5.0  # margins around a hold, and the wait for a failing step's calls to end
STEP_SLACK = 30.0  # beyond its planned length, how long a step's SIPp may run before it is stopped
ON_TIME = 0.999  # share of the loop's wake-ups (and of SIPp's tone) under 20 ms late
DELIVERED = 0.99  # share of the expected relayed packets that must have come
LATE_SECONDS = 0.020  # one packet time
PACKETS_PER_CALL_SECOND = 2 * 50  # relayed by the server: the tone to the caller, its echo back
CONNECTED = {"entity": "call", "from_state": "offered", "to_state": "connected"}


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


def last_statistics(path: Path) -> dict[str, str]:
    """The last row of a SIPp ``-trace_stat`` CSV, by column."""
    try:
        rows = list(csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";"))
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


def failure_reason(workdir: Path, stats: dict[str, str]) -> str:
    """What SIPp says went wrong: its non-zero failure counters, then its first errors."""
    counters = [
        f"{k.removesuffix('(C)')} {v}"
        for k, v in stats.items()
        if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)" and count(stats, k)
    ]
    errors: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        text = (workdir / "errors.log").read_text(errors="replace")
        # Entries start with a date, a time and a timestamp; a message quoted runs on.
        for entry in re.split(r"\d{4}-\d\d-\d\d\t\S+\t\S+: ", text)[1:]:
            first = re.sub(r"Call-I[Dd] '[^']*'", "a call", entry.split("\n", 1)[0]).strip()
            if "jumping to label" in first:  # a timeout the scenario expects (its talk slices)
                continue
            if first and first[:160] not in errors:
                errors.append(first[:160])
            if len(errors) == 2:
                break
    return "; ".join(counters + errors) or "none given"


class _Registrar(asyncio.DatagramProtocol):
    """The bench's side of REGISTER: final responses handed to whoever waits on the Call-ID."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[Response]] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            message = parse_message(data)
        except ParseError:
            return
        if isinstance(message, Response) and message.status >= 200:
            waiting = self.waiting.pop(message.call_id or "", None)
            if waiting is not None and not waiting.done():
                waiting.set_result(message)


async def register_agents(
    server_port: int, accounts: dict[str, str], contact_port: int
) -> list[str]:
    """REGISTER each agent (digest MD5) with its Contact at the agents' UAS; those that failed.

    The bench registers them itself, many at a time, rather than one SIPp run
    each (a process per agent: minutes for hundreds): SIPp's REGISTER is
    checked by the tests (``agent_register.xml``); here it is only set-up.
    """
    loop = asyncio.get_running_loop()
    transport, registrar = await loop.create_datagram_endpoint(
        _Registrar, local_addr=(LOOPBACK, 0), remote_addr=(LOOPBACK, server_port)
    )
    port = int(transport.get_extra_info("sockname")[1])
    gate = asyncio.Semaphore(REGISTER_CONCURRENCY)

    async def send(user: str, cseq: int, extra: str = "") -> Response:
        call_id = f"register-{user}@bench"
        reply = loop.create_future()
        registrar.waiting[call_id] = reply
        transport.sendto(
            (
                f"REGISTER sip:{LOOPBACK}:{server_port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {LOOPBACK}:{port};branch=z9hG4bK-{user}-{cseq};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:{user}@{LOOPBACK}>;tag={user}\r\n"
                f"To: <sip:{user}@{LOOPBACK}>\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
                f"Contact: <sip:{user}@{LOOPBACK}:{contact_port}>;expires=3600\r\n"
                f"{extra}Content-Length: 0\r\n\r\n"
            ).encode()
        )
        return await asyncio.wait_for(reply, 10)

    async def one(user: str, password: str) -> bool:
        async with gate:
            try:
                challenge = await send(user, 1)
                if challenge.status != 401:
                    return False
                authorization = answer_challenge(
                    challenge.headers.get_all("WWW-Authenticate")[0],
                    username=user,
                    password=password,
                    method="REGISTER",
                    uri=f"sip:{LOOPBACK}:{server_port}",
                )
                answer = await send(user, 2, f"Authorization: {authorization}\r\n")
            except TimeoutError:
                return False
            return 200 <= answer.status < 300

    try:
        done = await asyncio.gather(*(one(u, pw) for u, pw in accounts.items()))
    finally:
        transport.close()
    return [user for user, ok in zip(accounts, done, strict=True) if not ok]


# == the centre ========================================================================


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    agents: int
    ring_ms: int
    # part 1: the rate
    start_rate: float
    max_rate: float
    bisections: int
    window: float
    talk: float
    rate_budget: float
    # part 2: the calls held up at once
    calls: int
    max_calls: int
    ramp_rate: float
    hold: float
    hold_budget: float

    @property
    def agents_needed(self) -> int:
        busy = self.max_rate * (self.ring_ms / 1000 + self.talk + 1.0)
        return max(self.agents, self.max_calls, math.ceil(busy))


def centre(agents: int) -> dict[str, Any]:
    quiet = {"wrap_up_seconds": 0, "announce_every_seconds": None}
    return {
        "queues": [{"id": q, **quiet} for q in ("sales", QUEUE, "billing")],
        "agents": [  # the IVR's language key sets the call's language: agents must speak it
            {"id": agent_id(i), "queues": [QUEUE], "languages": {"en": 5, "es": 5}}
            for i in range(agents)
        ],
    }


def agent_id(i: int) -> str:
    return f"a{i:04d}"


@dataclass
class Centre:
    """The running server and the agents' phones, as the steps see them."""

    server: subprocess.Popen[bytes]
    phones: subprocess.Popen[bytes]
    admin: httpx.AsyncClient
    target: str  # the server's SIP address
    phone_port: int  # the agents' SIPp UAS
    tmp: Path

    async def scrape(self) -> str:
        return (await self.admin.get("/metrics")).text

    async def talking(self) -> int:
        """Agents talking now: calls bridged."""
        with contextlib.suppress(httpx.HTTPError):
            return int(sample_sum(await self.scrape(), "acd_agents", queue=QUEUE, state="talking"))
        return -1

    def phones_failed(self) -> int:
        return count(last_statistics(self.tmp / "phones" / "statistics.csv"), "FailedCall(C)")

    def cpu(self, *processes: subprocess.Popen[bytes]) -> tuple[float, float]:
        """CPU seconds so far: the server's, and SIPp's (the phones and ``processes``)."""
        sipp = sum(cpu_of(p.pid) for p in (self.phones, *processes))
        return cpu_of(self.server.pid), sipp

    async def settle(self, seconds: float = SETTLE_SECONDS * 2) -> int:
        """Wait for the centre to have no call left; the number left when it gives up."""
        left = -1  # unknown
        for _ in range(int(seconds / 0.1)):
            with contextlib.suppress(httpx.HTTPError):
                left = len((await self.admin.get("/v1/calls")).json())
                if left == 0:
                    return 0
            await asyncio.sleep(0.1)
        return left


def callers_command(
    centre: Centre, workdir: Path, *, rate: float, calls: int, talk_seconds: float
) -> list[str]:
    injection = workdir / "callers.csv"
    rows = [f"+1555{1000000 + i:07d};{ENTRY};{KEYS}" for i in range(calls)]
    workdir.mkdir(parents=True)
    injection.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n")
    command = sipp_command(
        "caller_load", workdir, port=free_port(socket.SOCK_DGRAM), media_port=free_port_pair()
    )
    command += ["-inf", str(injection), "-rtp_echo", "-r", f"{rate:g}", "-m", str(calls)]
    command += ["-l", str(calls), "-set", "talk_ms", str(math.ceil(talk_seconds) * 1000)]
    command += ["-set", "tone_ms", str(TONE_MS), "-set", "dtmf_delay_ms", str(DTMF_DELAY_MS)]
    return [*command, centre.target]


# == part 1: the rate ==================================================================


@dataclass(frozen=True, slots=True, kw_only=True)
class RateStep:
    rate: float
    calls: int  # asked of SIPp: rate x window
    successful: int
    failed: int
    bridged: int  # offered -> connected in the server, over the step
    phones_failed: int  # calls the agents' UAS failed
    stopped: bool  # SIPp did not end by itself in time
    reason: str  # SIPp's, when a call failed
    seconds: float
    peak_bridged: int
    server_cpu_percent: float
    sipp_cpu_percent: float
    agents_short: bool

    @property
    def clean(self) -> bool:
        return (
            not self.stopped
            and self.failed == 0
            and self.successful == self.calls
            and self.bridged == self.calls
            and self.phones_failed == 0
        )


async def rate_step(plan: Plan, centre: Centre, rate: float, agents: int) -> RateStep:
    workdir = centre.tmp / f"rate-{rate:g}"
    calls = max(1, round(rate * plan.window))
    talk = IVR_SECONDS + plan.ring_ms / 1000 + plan.talk
    command = callers_command(centre, workdir, rate=rate, calls=calls, talk_seconds=talk)
    bridged0 = sample_sum(await centre.scrape(), "acd_transitions_total", **CONNECTED)
    phones0 = centre.phones_failed()
    peak = 0
    process = spawn(command, workdir)
    (server0, sipp0), t0 = centre.cpu(process), time.monotonic()
    deadline = t0 + plan.window + talk + STEP_SLACK
    stopped = False
    server1, sipp1 = server0, sipp0
    try:
        while process.poll() is None:
            # read while it runs: once reaped, /proc has nothing of it
            server1, sipp1 = centre.cpu(process)
            if time.monotonic() > deadline:
                stopped = True
                break
            peak = max(peak, await centre.talking())
            await asyncio.sleep(POLL_SECONDS)
    finally:
        stop_process(process, signal.SIGTERM)
    seconds = time.monotonic() - t0
    await centre.settle()
    await asyncio.sleep(1.5)  # the phones' next statistics row
    stats = last_statistics(workdir / "statistics.csv")
    failed = count(stats, "FailedCall(C)")
    bridged = sample_sum(await centre.scrape(), "acd_transitions_total", **CONNECTED) - bridged0
    return RateStep(
        rate=rate,
        calls=calls,
        successful=count(stats, "SuccessfulCall(C)"),
        failed=failed,
        bridged=round(bridged),
        phones_failed=centre.phones_failed() - phones0,
        stopped=stopped,
        reason=failure_reason(workdir, stats) if failed or stopped else "",
        seconds=round(seconds, 1),
        peak_bridged=peak,
        server_cpu_percent=round(100 * (server1 - server0) / seconds, 1),
        sipp_cpu_percent=round(100 * (sipp1 - sipp0) / seconds, 1),
        agents_short=rate * (plan.ring_ms / 1000 + plan.talk + 1.0) > agents,
    )


async def search_rate(plan: Plan, centre: Centre, agents: int) -> list[RateStep]:
    """Double until a step fails, then bisect between the last clean and the first failing."""
    began = time.monotonic()
    step_seconds = plan.window + IVR_SECONDS + plan.talk + SETTLE_SECONDS + 3
    steps: list[RateStep] = []
    clean: float | None = None
    failing: float | None = None
    rate = plan.start_rate
    bisections = 0
    while True:
        if steps and time.monotonic() - began + step_seconds > plan.rate_budget:
            break
        step = await rate_step(plan, centre, rate, agents)
        steps.append(step)
        print(rate_line(asdict(step) | {"clean": step.clean}), file=sys.stderr, flush=True)
        if step.clean:
            clean = rate
        else:
            failing = rate
        if failing is None:
            if rate * 2 > plan.max_rate:
                break
            rate *= 2
            continue
        if clean is None or bisections >= plan.bisections:
            break
        rate = round((clean + failing) / 2, 1)
        if rate in (clean, failing):
            break
        bisections += 1
    return steps


# == part 2: calls held up at once =====================================================


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldStep:
    calls: int
    ramp_rate: float
    bridged: int  # agents talking when the hold began (all of them, or the step failed)
    bridged_after: int  # and when it ended
    failed: int  # SIPp's failed calls over the whole step
    phones_failed: int
    stopped: bool
    reason: str
    hold_seconds: float
    packets: int  # relayed during the hold
    expected: int  # calls x 100 x hold
    late: int  # 20 ms or more after their timestamps' place (SIPp's own timing included)
    p99_ms: float | None  # upper bound of the bucket (<= that)
    loop_samples: int  # the server's loop-lag probe over the hold (50 a second)
    loop_late: int  # woke 20 ms or more after due: the server's own lateness
    loop_p99_ms: float | None
    generator_packets: int  # the control call's, straight from the agents' SIPp (rtp_probe)
    generator_late: int
    paced_frames: int  # over the whole step (the IVR during the ramp)
    paced_late: int
    server_cpu_percent: float  # over the hold
    sipp_cpu_percent: float
    machine_busy_percent: float

    @property
    def on_time_share(self) -> float:
        """Relayed packets arriving under 20 ms late: the senders' timing and ours together."""
        return 1.0 - self.late / self.packets if self.packets else 0.0

    @property
    def loop_on_time_share(self) -> float:
        """The server's own part: its loop's wake-ups under 20 ms late."""
        return 1.0 - self.loop_late / self.loop_samples if self.loop_samples else 0.0

    @property
    def delivered_share(self) -> float:
        return self.packets / self.expected if self.expected else 0.0

    @property
    def generator_late_share(self) -> float:
        return self.generator_late / self.generator_packets if self.generator_packets else 0.0

    @property
    def limited_by_generator(self) -> bool:
        """SIPp's own tone was late (or not measured): the figure is SIPp's limit as much."""
        return self.generator_packets == 0 or self.generator_late_share > 1 - ON_TIME

    @property
    def on_time(self) -> bool:
        return (
            not self.stopped
            and self.failed == 0
            and self.phones_failed == 0
            and self.bridged == self.calls
            and self.bridged_after == self.calls
            and self.loop_on_time_share >= ON_TIME
            and self.delivered_share >= DELIVERED
        )


def lateness(before: str, after: str, name: str) -> tuple[int, int, float | None]:
    """Packets, late ones and p99 (ms, a bucket's bound) of a lateness histogram between scrapes."""
    h0, h1 = histogram(before, name), histogram(after, name)
    bounds = sorted(h1)
    counts = {b: h1[b] - h0.get(b, 0.0) for b in bounds}
    total = counts.get(math.inf, 0.0)
    on_time = counts.get(LATE_SECONDS, 0.0)
    p99 = next((b for b in bounds if total and counts[b] >= 0.99 * total), None)
    return round(total), round(total - on_time), None if p99 is None else p99 * 1000


async def hold_step(plan: Plan, centre: Centre, calls: int, ramp_rate: float) -> HoldStep:
    workdir = centre.tmp / f"hold-{calls}"
    ramp = calls / ramp_rate + IVR_SECONDS + plan.ring_ms / 1000 + SETTLE_SECONDS
    talk = ramp + plan.hold + SETTLE_SECONDS
    command = callers_command(centre, workdir, rate=ramp_rate, calls=calls, talk_seconds=talk)
    phones0 = centre.phones_failed()
    start_scrape = await centre.scrape()
    process = spawn(command, workdir)
    t0 = time.monotonic()
    bridged = bridged_after = 0
    hold_seconds = 0.0
    stopped = False
    packets = late = loop_samples = loop_late = 0
    loop_p99: float | None = None
    control = ProbeResult(answered=False, packets=0, late=0, max_ms=0.0)
    p99: float | None = None
    server_cpu = sipp_cpu = busy = 0.0
    try:
        while time.monotonic() - t0 < ramp and process.poll() is None:
            bridged = await centre.talking()
            if bridged >= calls:
                break
            await asyncio.sleep(POLL_SECONDS)
        if bridged >= calls:
            probe = ToneProbe(LOOPBACK, centre.phone_port)
            await asyncio.to_thread(probe.start)
            before = await centre.scrape()
            (server0, sipp0), (busy0, total0), h0 = (
                centre.cpu(process),
                machine(),
                time.monotonic(),
            )
            await asyncio.sleep(plan.hold)
            after = await centre.scrape()
            (server1, sipp1), (busy1, total1), h1 = (
                centre.cpu(process),
                machine(),
                time.monotonic(),
            )
            control = await asyncio.to_thread(probe.stop)
            hold_seconds = h1 - h0
            bridged_after = round(sample_sum(after, "acd_agents", queue=QUEUE, state="talking"))
            packets, late, p99 = lateness(before, after, "acd_rtp_relayed_lateness_seconds")
            loop_samples, loop_late, loop_p99 = lateness(
                before, after, "acd_event_loop_lag_seconds"
            )
            server_cpu = 100 * (server1 - server0) / hold_seconds
            sipp_cpu = 100 * (sipp1 - sipp0) / hold_seconds
            busy = 100 * (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
        deadline = t0 + talk + STEP_SLACK
        while process.poll() is None:
            if time.monotonic() > deadline:
                stopped = True
                break
            await asyncio.sleep(POLL_SECONDS)
    finally:
        stop_process(process, signal.SIGTERM)
    await centre.settle()
    await asyncio.sleep(1.5)  # the phones' next statistics row
    paced, paced_late, _ = lateness(
        start_scrape, await centre.scrape(), "acd_rtp_paced_lateness_seconds"
    )
    stats = last_statistics(workdir / "statistics.csv")
    failed = count(stats, "FailedCall(C)")
    reason = failure_reason(workdir, stats) if failed or stopped else ""
    if bridged < calls:
        reason = f"only {bridged} of {calls} bridged after {ramp:.0f} s; " + reason
    return HoldStep(
        calls=calls,
        ramp_rate=ramp_rate,
        bridged=bridged,
        bridged_after=bridged_after,
        failed=failed,
        phones_failed=centre.phones_failed() - phones0,
        stopped=stopped,
        reason=reason.strip("; "),
        hold_seconds=round(hold_seconds, 2),
        packets=packets,
        expected=round(calls * PACKETS_PER_CALL_SECOND * hold_seconds),
        late=late,
        p99_ms=p99,
        loop_samples=loop_samples,
        loop_late=loop_late,
        loop_p99_ms=loop_p99,
        generator_packets=control.packets,
        generator_late=control.late,
        paced_frames=paced,
        paced_late=paced_late,
        server_cpu_percent=round(server_cpu, 1),
        sipp_cpu_percent=round(sipp_cpu, 1),
        machine_busy_percent=round(busy, 1),
    )


async def step_up_calls(plan: Plan, centre: Centre, ramp_rate: float) -> list[HoldStep]:
    began = time.monotonic()
    steps: list[HoldStep] = []
    calls = plan.calls
    while calls <= plan.max_calls:
        # the last caller starts at calls / rate and stays as long as the first: twice the ramp
        planned = 2 * calls / ramp_rate + IVR_SECONDS + plan.hold + 2 * SETTLE_SECONDS + 3
        if steps and time.monotonic() - began + planned > plan.hold_budget:
            break
        step = await hold_step(plan, centre, calls, ramp_rate)
        steps.append(step)
        print(hold_line(hold_row(step)), file=sys.stderr, flush=True)
        if not step.on_time:
            break
        calls *= 2
    return steps


def hold_row(step: HoldStep) -> dict[str, Any]:
    return asdict(step) | {
        "on_time": step.on_time,
        "on_time_share": round(step.on_time_share, 5),
        "loop_on_time_share": round(step.loop_on_time_share, 5),
        "delivered_share": round(step.delivered_share, 4),
        "generator_late_share": round(step.generator_late_share, 5),
        "limited_by_generator": step.limited_by_generator,
    }


# == the run ===========================================================================


async def start_phones(centre_tmp: Path, ring_ms: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port(socket.SOCK_DGRAM)
    command = sipp_command("agent_answer", centre_tmp / "phones", port=port, media_port=0)
    command[command.index("-mp") + 1] = str(free_port_pair())
    command += ["-set", "ring_ms", str(ring_ms), "-set", "talk_ms", "0"]
    phones = spawn(command, centre_tmp / "phones")
    for _ in range(100):
        if udp_taken(port) or phones.poll() is not None:
            break
        await asyncio.sleep(0.05)
    if phones.poll() is not None or not udp_taken(port):
        stop_process(phones, signal.SIGTERM)
        raise RuntimeError("the agents' SIPp UAS did not start: see its stderr")
    return phones, port


async def staff(admin: httpx.AsyncClient, agents: int, target: str, phone_port: int) -> None:
    """Credentials, registrations, login and ready for every agent, several at a time."""
    gate = asyncio.Semaphore(REST_CONCURRENCY)

    async def credentials(i: int) -> None:
        body = {"username": agent_id(i), "password": f"secret-{i}"}
        async with gate:
            (await admin.put(f"/v1/agents/{agent_id(i)}/sip", json=body)).raise_for_status()

    async def ready(i: int) -> None:
        auth = {"Authorization": f"Bearer {issue(SECRET, Role.AGENT, agent_id=agent_id(i))}"}
        async with gate:
            for verb in ("login", "ready"):
                reply = await admin.post(f"/v1/agents/{agent_id(i)}/{verb}", headers=auth)
                reply.raise_for_status()

    await asyncio.gather(*(credentials(i) for i in range(agents)))
    port = int(target.rsplit(":", 1)[1])
    accounts = {agent_id(i): f"secret-{i}" for i in range(agents)}
    missing = await register_agents(port, accounts, phone_port)
    if missing:
        raise RuntimeError(f"{len(missing)} agents did not register: {missing[:5]}...")
    await asyncio.gather(*(ready(i) for i in range(agents)))


async def run(plan: Plan, tmp: Path, parts: set[str]) -> dict[str, Any]:
    agents = plan.agents_needed
    http_port, sip_port = free_port(), free_port(socket.SOCK_DGRAM)
    (tmp / "centre.yaml").write_text(yaml.safe_dump(centre(agents)))
    database = f"sqlite+aiosqlite:///{tmp / 'acd.db'}"
    raise_file_limit()
    server = start_server(tmp, database, http_port, sip_port=sip_port, ivr_flow=DEMO_IVR)
    phones: subprocess.Popen[bytes] | None = None
    began = time.monotonic()
    base = f"http://{LOOPBACK}:{http_port}"
    headers = {"Authorization": f"Bearer {issue(SECRET, Role.ADMIN)}"}
    rates: list[RateStep] = []
    holds: list[HoldStep] = []
    setup = 0.0
    try:
        await wait_ready(base, server, tmp / "server.log")
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as admin:
            phones, phone_port = await start_phones(tmp, plan.ring_ms)
            target = f"{LOOPBACK}:{sip_port}"
            await staff(admin, agents, target, phone_port)
            setup = time.monotonic() - began
            print(f"setup: {agents} agents in {setup:.1f} s", file=sys.stderr, flush=True)
            live = Centre(
                server=server,
                phones=phones,
                admin=admin,
                target=target,
                phone_port=phone_port,
                tmp=tmp,
            )
            if "rate" in parts:
                rates = await search_rate(plan, live, agents)
            clean = [s.rate for s in rates if s.clean]
            ramp_rate = min(plan.ramp_rate, max(clean)) if clean else plan.ramp_rate
            if "hold" in parts and (clean or "rate" not in parts):
                holds = await step_up_calls(plan, live, ramp_rate)
    finally:
        warnings = log_warnings(tmp / "server.log")
        if phones is not None:  # SIGUSR1: no new calls, then exit with a last statistics row
            stop_process(phones, signal.SIGUSR1)
        stop_process(server, signal.SIGTERM)  # it drains, then stops
    clean_rates = [s for s in rates if s.clean]
    best_rate = max(clean_rates, key=lambda s: s.rate) if clean_rates else None
    first_failing = next((s for s in rates if not s.clean), None)
    on_time = [s for s in holds if s.on_time]
    best_hold = max(on_time, key=lambda s: s.calls) if on_time else None
    first_late = next((s for s in holds if not s.on_time), None)
    return {
        "plan": asdict(plan),
        "agents": agents,
        "database": "SQLite in a temporary folder",
        "cores": os.cpu_count(),
        "setup_seconds": round(setup, 1),
        "rate_steps": [asdict(s) | {"clean": s.clean} for s in rates],
        "hold_steps": [hold_row(s) for s in holds],
        "highest_clean_rate": None if best_rate is None else asdict(best_rate),
        "first_failing_rate": None if first_failing is None else asdict(first_failing),
        "most_calls_on_time": None if best_hold is None else hold_row(best_hold),
        "first_late_step": None if first_late is None else hold_row(first_late),
        "server_log_warnings": warnings,
        "server_exit_code": server.returncode,
        "total_seconds": round(time.monotonic() - began, 1),
    }


# == output ============================================================================


def rate_line(s: dict[str, Any]) -> str:
    mark = "" if s["clean"] else "  <- failed"
    mark += "  (agents short)" if s["agents_short"] else ""
    return (
        f"{s['rate']:>8g}{s['calls']:>7}{s['successful']:>6}{s['failed']:>7}{s['bridged']:>9}"
        f"{'yes' if s['stopped'] else 'no':>8}{s['peak_bridged']:>9}"
        f"{s['server_cpu_percent']:>10.0f}%{s['sipp_cpu_percent']:>8.0f}%{s['seconds']:>8.1f}{mark}"
    )


def hold_line(s: dict[str, Any]) -> str:
    p99 = "-" if s["p99_ms"] is None else f"<={s['p99_ms']:g}"
    loop_p99 = "-" if s["loop_p99_ms"] is None else f"<={s['loop_p99_ms']:g}"
    mark = "" if s["on_time"] else "  <- not on time"
    mark += "  [SIPp's own tone late]" if s["limited_by_generator"] else ""
    return (
        f"{s['calls']:>7}{s['bridged']:>9}{s['packets']:>10}{100 * s['delivered_share']:>9.1f}%"
        f"{s['late']:>7}{100 * s['on_time_share']:>9.2f}%{p99:>8}"
        f"{s['loop_late']:>6}/{s['loop_samples']:<6}{loop_p99:>7}"
        f"{s['generator_late']:>6}/{s['generator_packets']:<6}"
        f"{s['paced_late']:>6}/{s['paced_frames']:<8}"
        f"{s['server_cpu_percent']:>8.0f}%{s['sipp_cpu_percent']:>7.0f}%"
        f"{s['machine_busy_percent']:>7.0f}%{mark}"
    )


RATE_HEAD = (
    f"{'calls/s':>8}{'calls':>7}{'ok':>6}{'failed':>7}{'bridged':>9}{'stopped':>8}"
    f"{'peak br':>9}{'server CPU':>11}{'SIPp':>9}{'seconds':>8}"
)
HOLD_HEAD = (
    f"{'calls':>7}{'bridged':>9}{'relayed':>10}{'arrived':>10}{'late':>7}{'on time':>10}"
    f"{'p99 ms':>8}{'  loop late':<13}{'p99 ms':>7}{'  SIPp late':<13}{'  paced late':<15}"
    f"{'server':>8}{'SIPp':>8}{'busy':>8}"
)


def print_table(s: dict[str, Any]) -> None:
    p = s["plan"]
    print(
        f"ACD SIP load: SIPp callers -> demo IVR (entry {ENTRY}, keys {KEYS} as RFC 4733) -> "
        f"queue {QUEUE} -> {s['agents']} agents on one SIPp UAS (ring {p['ring_ms']} ms); "
        "RTP relayed both ways (callers echo)"
    )
    print(f"database: {s['database']}; {s['cores']} cores shared by SIPp, bench and server")
    print(f"setup (credentials, registrations, login, ready): {s['setup_seconds']} s")
    print("CPU: 100 % = one core; SIPp = the callers' and the agents' SIPp processes")
    if s["rate_steps"]:
        print()
        print(
            f"1. calls per second: {p['window']:g} s of calls per step, each talking "
            f"{p['talk']:g} s with its agent; clean = every call successful in SIPp and bridged"
        )
        print(RATE_HEAD)
        for step in s["rate_steps"]:
            print(rate_line(step))
            if step["reason"]:
                print(f"{'':>8}SIPp: {step['reason']}")
    if s["hold_steps"]:
        print()
        print(
            f"2. calls held up at once for {p['hold']:g} s: a relayed packet is late when it "
            f"reaches the server 20 ms or more after its RTP timestamp's place (SIPp's timing "
            f"and ours); the server's own part is its loop's lag (a 20 ms sleep woken 20 ms or "
            f"more late); on time = {100 * ON_TIME:g} % of the loop's wake-ups not late and "
            f"{100 * DELIVERED:g} % of {PACKETS_PER_CALL_SECOND} packets/s a call arrived"
        )
        print(HOLD_HEAD)
        for step in s["hold_steps"]:
            print(hold_line(step))
            if step["reason"]:
                print(f"{'':>7}{step['reason']}")
    print()
    best, failing = s["highest_clean_rate"], s["first_failing_rate"]
    if best is None:
        print("highest calls/s with no failed call: none")
    else:
        above = (
            f"first failing: {failing['rate']:g}/s ({failing['reason'] or 'not all bridged'})"
            if failing
            else f"no failing step up to {p['max_rate']:g}/s (a lower bound)"
        )
        print(
            f"highest calls/s with no failed call: {best['rate']:g}/s, server CPU "
            f"{best['server_cpu_percent']:.0f}%, SIPp {best['sipp_cpu_percent']:.0f}%; {above}"
        )
    held, late = s["most_calls_on_time"], s["first_late_step"]
    if held is None:
        print("most concurrent bridged calls with the server on time: none")
    else:
        above = (
            f"first late: {late['calls']} calls ({100 * late['loop_on_time_share']:.2f}% of the "
            f"loop's wake-ups on time, {100 * late['on_time_share']:.2f}% of relayed packets"
            f"{', ' + late['reason'] if late['reason'] else ''})"
            if late
            else f"none late up to {held['calls']} (a lower bound)"
        )
        print(
            f"most concurrent bridged calls with the server on time: {held['calls']} "
            f"({100 * held['on_time_share']:.2f}% of relayed packets under 20 ms late), server CPU "
            f"{held['server_cpu_percent']:.0f}%, SIPp {held['sipp_cpu_percent']:.0f}%; {above}"
        )
    logged = ", ".join(f"{k} x{v}" for k, v in s["server_log_warnings"].items())
    print("server log warnings:", logged or "none")
    print(f"total {s['total_seconds']} s; server exit code {s['server_exit_code']}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--agents", type=int, default=50, help="at least this many agents (50)")
    parser.add_argument("--ring-ms", type=int, default=100, help="agent phones' ring (100)")
    parser.add_argument("--start-rate", type=float, default=2.0, help="first rate step (2/s)")
    parser.add_argument("--max-rate", type=float, default=64.0, help="last step at most (64/s)")
    parser.add_argument("--bisections", type=int, default=2, help="after a failure (2)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of calls a step (10)")
    parser.add_argument("--talk", type=float, default=2.0, help="talk with the agent, s (2)")
    parser.add_argument("--rate-budget", type=float, default=240.0, help="part 1, s (240)")
    parser.add_argument("--calls", type=int, default=25, help="first hold step (25 calls)")
    parser.add_argument("--max-calls", type=int, default=800, help="last hold step at most (800)")
    parser.add_argument("--ramp-rate", type=float, default=25.0, help="calls/s into a hold (25)")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds measured (10)")
    parser.add_argument("--hold-budget", type=float, default=360.0, help="part 2, s (360)")
    parser.add_argument("--only", choices=("rate", "hold"), help="run one part only")
    parser.add_argument("--quick", action="store_true", help="a smoke run: two small steps each")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.agents, args.start_rate, args.max_rate, args.bisections = 4, 1.0, 2.0, 0
        args.window, args.talk, args.calls, args.max_calls, args.hold = 3.0, 1.0, 2, 4, 2.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan(
        agents=args.agents,
        ring_ms=args.ring_ms,
        start_rate=args.start_rate,
        max_rate=args.max_rate,
        bisections=args.bisections,
        window=args.window,
        talk=float(max(1, round(args.talk))),  # caller_load.xml counts whole seconds
        rate_budget=args.rate_budget,
        calls=args.calls,
        max_calls=args.max_calls,
        ramp_rate=args.ramp_rate,
        hold=args.hold,
        hold_budget=args.hold_budget,
    )
    parts = {args.only} if args.only else {"rate", "hold"}
    tmp = Path(tempfile.mkdtemp(prefix="acd-sip-bench-"))
    try:
        summary = asyncio.run(run(plan, tmp, parts))
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
