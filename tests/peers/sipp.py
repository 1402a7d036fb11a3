"""SIPp as a real SIP peer: run a scenario to its end, or keep one running in the background.

Theory of operation
-------------------
Every run is a subprocess of ``sipp`` in a working folder of its own, with
SIPp's own records switched on and written there: the statistics
(``-trace_stat``, one CSV row per dump, the last one at exit), the screen
(``-trace_screen``: the per-step table of messages, retransmissions, timeouts
and unexpected messages), the error log (``-trace_err``) and, when asked,
every message sent and received (``-trace_msg``). When SIPp ends, they are
read into a frozen ``SippResult``; nothing else of SIPp is interpreted.

A run is always bounded. ``run_sipp`` waits ``timeout`` seconds for SIPp to
finish its ``calls``; past that, or when the test is cancelled, SIPp is asked
for its screen (SIGUSR2, so the table is there even then), then terminated,
then killed, and the result says ``timed_out``. ``start_sipp`` returns a
``SippPeer`` for a scenario that must keep running while the test does (the
agent phones of ``agent_answer.xml``, the registrar of ``registrar.xml``):
it is listening when ``start_sipp`` returns, and ``stop`` ends it softly
(SIGUSR1: no new calls, the current ones finish) within a grace period, then
firmly. Used as an async context manager it is always stopped on exit.

SIPp runs in the working folder because ``rtp_stream`` (the agents' voice)
reads its file from there: the files next to the scenarios that a scenario
names (``agent_voice.ulaw``) are linked into it. Scenarios are named by their
file in ``loadtest/sipp`` (``"caller"``), by path, or as ``Builtin("uac")``
for SIPp's embedded ones.

Not here: judging the server. A test asserts on the counts (``successful``,
``received("200")``) and on the server's own state.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import TypedDict, Unpack

from peers import (
    LOOPBACK,
    free_port,
    free_port_pair,
    require_binary,
    tcp_port_listening,
    udp_port_taken,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "loadtest" / "sipp"
# Files next to the scenarios that a scenario reads from SIPp's working folder.
MEDIA_FILES = ("agent_voice.ulaw",)

# SIPp's exit codes (sipp(1), "Exit codes").
EXIT_ALL_SUCCESSFUL = 0
EXIT_SOME_FAILED = 1
EXIT_INTERNAL_COMMAND = 97
EXIT_NO_CALLS = 99
EXIT_FATAL = 255  # -1
EXIT_CANNOT_BIND = 254  # -2

# How long a peer may take to bind its port, and to end once asked.
START_TIMEOUT = 5.0
STOP_GRACE = 1.0
_POLL = 0.02

# The talk loops of caller.xml and agent_answer.xml wait for a BYE in slices;
# SIPp logs every slice that ends without one. That is not an error.
_TICK = re.compile(r"receive timeout on message .*, jumping to label")
# Each entry starts with a timestamp, not always on a new line (SIPp ends some
# entries without one).
_ERROR_ENTRY = re.compile(r"\d{4}-\d\d-\d\d\t\d\d:\d\d:\d\d\.\d{6}\t\d+\.\d{6}: ")
_RTD = re.compile(r"\b[BE]-RTD\d+\b")


class Transport(Enum):
    """SIPp's transport modes (-t) that the tests use."""

    UDP = "u1"  # one UDP socket for every call
    TCP = "t1"  # one TCP connection for every call


class Direction(Enum):
    """Which way a scenario step's message went, from SIPp's side."""

    SENT = "sent"
    RECEIVED = "received"


@dataclass(frozen=True, slots=True)
class Builtin:
    """A scenario built into SIPp (-sn): uac, uas, regexp, branchc, ..."""

    name: str


Scenario = str | Path | Builtin


@dataclass(frozen=True, slots=True, kw_only=True)
class SippStep:
    """One line of SIPp's scenario screen: a message, a pause or a nop, with its counts."""

    label: str  # as SIPp shows it: "INVITE ---------->", "200 <----------", "Pause [500ms]"
    name: str  # the method, the status code, "Pause" or "NOP"
    direction: Direction | None  # None for pauses and nops
    messages: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    unexpected: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SippResult:
    """What one SIPp run did, as SIPp itself counted it."""

    command: tuple[str, ...]
    exit_code: int | None  # None: it had to be killed
    timed_out: bool  # it did not end by itself in time
    statistics: Mapping[str, str]  # the last row of the -trace_stat CSV, by column
    steps: tuple[SippStep, ...]  # the scenario screen, step by step
    errors: tuple[str, ...]  # the error log's entries, the talk loops' ticks left out
    output: str  # what SIPp wrote to stderr
    messages: str | None  # the -trace_msg log, when asked for

    @property
    def successful(self) -> int:
        return self._count("SuccessfulCall(C)")

    @property
    def failed(self) -> int:
        return self._count("FailedCall(C)")

    @property
    def created(self) -> int:
        return self._count("TotalCallCreated")

    @property
    def ok(self) -> bool:
        """Ended by itself, every call successful (exit code 0)."""
        return not self.timed_out and self.exit_code == EXIT_ALL_SUCCESSFUL and self.failed == 0

    def received(self, name: str) -> int:
        """How many ``name`` (a method or a status code) SIPp received, over all steps."""
        return sum(s.messages for s in self._steps(name, Direction.RECEIVED))

    def sent(self, name: str) -> int:
        """How many ``name`` SIPp sent, over all steps (retransmissions not included)."""
        return sum(s.messages for s in self._steps(name, Direction.SENT))

    def timeouts(self, name: str) -> int:
        """How often SIPp gave up waiting for ``name``."""
        return sum(s.timeouts for s in self._steps(name, Direction.RECEIVED))

    def unexpected(self) -> int:
        return sum(s.unexpected for s in self.steps)

    def explain(self) -> str:
        """A summary for an assertion message: how it ran, what it counted, what went wrong."""
        lines = [
            " ".join(self.command),
            f"exit code {self.exit_code}, timed out: {self.timed_out}, "
            f"calls {self.created} created, {self.successful} successful, {self.failed} failed",
        ]
        lines += [
            f"  {s.label:<28} {s.messages:>5} msg {s.retransmissions:>3} retrans "
            f"{s.timeouts:>3} timeout {s.unexpected:>3} unexpected"
            for s in self.steps
            if s.name != "NOP"
        ]
        lines += [f"error: {e[:500]}" for e in self.errors[-10:]]
        if self.output.strip():
            lines.append("stderr: " + self.output.strip()[-1500:])
        return "\n".join(lines)

    def _steps(self, name: str, direction: Direction) -> Iterable[SippStep]:
        return (s for s in self.steps if s.name == name and s.direction is direction)

    def _count(self, column: str) -> int:
        try:
            return int(self.statistics.get(column, "0") or 0)
        except ValueError:
            return 0


class SippError(RuntimeError):
    """SIPp could not start: a scenario it would not load, a port it could not bind."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Files:
    workdir: Path
    statistics: Path
    screen: Path
    errors: Path
    messages: Path | None
    stdout: Path
    stderr: Path

    @classmethod
    def under(cls, workdir: Path, *, trace: bool) -> _Files:
        return cls(
            workdir=workdir,
            statistics=workdir / "statistics.csv",
            screen=workdir / "screen.log",
            errors=workdir / "errors.log",
            messages=workdir / "messages.log" if trace else None,
            stdout=workdir / "stdout.txt",
            stderr=workdir / "stderr.txt",
        )


def scenario_path(name: str) -> Path:
    """The file of a scenario of ``loadtest/sipp`` by name, with or without ``.xml``."""
    path = SCENARIOS / (name if name.endswith(".xml") else f"{name}.xml")
    if not path.is_file():
        raise FileNotFoundError(f"no SIPp scenario {path}")
    return path


def _scenario_args(scenario: Scenario) -> list[str]:
    if isinstance(scenario, Builtin):
        return ["-sn", scenario.name]
    path = scenario if isinstance(scenario, Path) else scenario_path(scenario)
    return ["-sf", str(path.resolve())]


def _injection_file(injection: Sequence[Sequence[str]] | Path, workdir: Path) -> Path:
    if isinstance(injection, Path):
        return injection.resolve()
    path = workdir / "injection.csv"
    lines = ["SEQUENTIAL", *(";".join(row) for row in injection)]
    path.write_text("\n".join(lines) + "\n")
    return path


class SippPeer:
    """One SIPp process: started, then awaited to its end or stopped; always bounded."""

    def __init__(
        self,
        command: Sequence[str],
        files: _Files,
        *,
        port: int,
        media_port: int,
        transport: Transport,
        keep_workdir: bool,
        listens: bool,
    ) -> None:
        self.command = tuple(command)
        self.transport = transport
        self.files = files
        self.port = port  # SIPp's SIP port (-p)
        self.media_port = media_port  # SIPp's media port (-mp): echo, pcap play, rtp_stream
        self._keep = keep_workdir
        self._listens = listens
        self._process: asyncio.subprocess.Process | None = None
        self._result: SippResult | None = None

    @property
    def address(self) -> str:
        """Where to send SIP to this peer: ``127.0.0.1:port``."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Start SIPp; a listening scenario returns once its port is bound."""
        for name in MEDIA_FILES:
            link = self.files.workdir / name
            if not link.exists():
                link.symlink_to(SCENARIOS / name)
        with (
            self.files.stdout.open("wb") as stdout,
            self.files.stderr.open("wb") as stderr,
        ):
            self._process = await asyncio.create_subprocess_exec(
                *self.command,
                cwd=self.files.workdir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # its own process group, killed as one
            )
        if not self._listens:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while not self._listening():
            if self._process.returncode is not None or loop.time() > deadline:
                result = await self._halt(timed_out=False)
                raise SippError(f"SIPp is not listening on {self.address}\n{result.explain()}")
            await asyncio.sleep(_POLL)

    async def wait(self, timeout: float) -> SippResult:
        """Wait for SIPp to end by itself (its -m calls done); stop it after ``timeout``."""
        process = self._require_process()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            return await self._halt(timed_out=True)
        except BaseException:
            await self._halt(timed_out=True)
            raise
        return self._collect(timed_out=False)

    async def stop(self, grace: float = STOP_GRACE) -> SippResult:
        """End SIPp softly (no new calls, the current ones finish), firmly after ``grace``."""
        if self._result is not None:
            return self._result
        process = self._require_process()
        if process.returncode is None:
            self._signal(signal.SIGUSR2)  # the screen, as it is now, in case it must be killed
            await asyncio.sleep(0.1)
            self._signal(signal.SIGUSR1)
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), grace)
            except TimeoutError:
                return await self._halt(timed_out=True)
        return self._collect(timed_out=False)

    async def __aenter__(self) -> SippPeer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None and self._result is None:
            if exc is None:
                await self.stop()
            else:
                await self._halt(timed_out=True)

    def _listening(self) -> bool:
        if self.transport is Transport.UDP:
            return udp_port_taken(self.port)
        return tcp_port_listening(self.port)

    def _require_process(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise RuntimeError("SIPp was not started")
        return self._process

    def _signal(self, sig: signal.Signals) -> None:
        process = self._require_process()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)

    async def _halt(self, *, timed_out: bool) -> SippResult:
        """Screen dump, then SIGTERM, then SIGKILL: SIPp is gone when this returns."""
        process = self._require_process()
        if process.returncode is None:
            self._signal(signal.SIGUSR2)
            await asyncio.sleep(0.2)
            for sig, patience in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
                self._signal(sig)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(process.wait()), patience)
                if process.returncode is not None:
                    break
        return self._collect(timed_out=timed_out)

    def _collect(self, *, timed_out: bool) -> SippResult:
        if self._result is not None:
            return self._result
        process = self._require_process()
        files = self.files
        code = process.returncode
        self._result = SippResult(
            command=self.command,
            exit_code=None if code is None or code < 0 else code,
            timed_out=timed_out,
            statistics=parse_statistics(_read(files.statistics)),
            steps=parse_screen(_read(files.screen)),
            errors=parse_errors(_read(files.errors)),
            output=_read(files.stderr),
            messages=_read(files.messages) if files.messages is not None else None,
        )
        if not self._keep:
            shutil.rmtree(files.workdir, ignore_errors=True)
        return self._result


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def parse_statistics(text: str) -> dict[str, str]:
    """The last row of a ``-trace_stat`` CSV (';'-separated, a header row first), by column."""
    rows = [row for row in csv.reader(text.splitlines(), delimiter=";") if row]
    if len(rows) < 2:
        return {}
    return {name: value for name, value in zip(rows[0], rows[-1], strict=False) if name}


def parse_screen(text: str) -> tuple[SippStep, ...]:
    """The per-step table of the last scenario screen in a ``-trace_screen`` dump.

    The numbers sit in fixed columns under the header ``Messages Retrans
    Timeout Unexpected-Msg``; a step shows only the ones that apply to it
    (a pause has no retransmissions), so each is read at its column.
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if "Messages  Retrans" in line]
    if not starts:
        return ()
    header = lines[starts[-1]]
    columns = [header.index(word) for word in ("Messages", "Retrans", "Timeout", "Unexpected")]
    steps = []
    for line in lines[starts[-1] + 1 :]:
        if not line.strip():
            continue
        if line.startswith(("Last Error", "-----", "Call-Id")) or "Press [q]" in line:
            break
        step = _parse_step(line, columns)
        if step is not None:
            steps.append(step)
    return tuple(steps)


def _parse_step(line: str, columns: list[int]) -> SippStep | None:
    label = _RTD.sub("", line[: columns[0]]).strip()
    if not label:
        return None
    if "[ NOP ]" in label:
        return SippStep(label="[ NOP ]", name="NOP", direction=None)
    counts = []
    for start, end in zip(columns, [*columns[1:], len(line) + 10], strict=True):
        cell = line[start:end].strip()
        counts.append(int(cell) if cell.isdigit() else 0)
    words = label.split()
    if "Pause" in words:
        name, direction = "Pause", None
    elif words[0].startswith("-") or words[0].startswith("<"):
        # A server's screen: the arrow first, pointing at SIPp for what it received.
        name = words[-1]
        direction = Direction.RECEIVED if words[0].startswith("-") else Direction.SENT
    else:
        # A client's screen: the name first, the arrow pointing away for what it sent.
        name = words[0]
        direction = Direction.SENT if words[-1].startswith("-") else Direction.RECEIVED
    return SippStep(
        label=" ".join(words),
        name=name,
        direction=direction,
        messages=counts[0],
        retransmissions=counts[1],
        timeouts=counts[2],
        unexpected=counts[3],
    )


def parse_errors(text: str) -> tuple[str, ...]:
    """The entries of a ``-trace_err`` log (each starts with a timestamp), ticks left out."""
    marks = [m.start() for m in _ERROR_ENTRY.finditer(text)]
    if not marks:
        return (text.strip(),) if text.strip() else ()
    ends = [*marks[1:], len(text)]
    entries = (text[start:end].strip() for start, end in zip(marks, ends, strict=True))
    return tuple(e for e in entries if not _TICK.search(e))


class SippOptions(TypedDict, total=False):
    """How to run a scenario, every key optional: addresses, load, variables, records."""

    local_port: int  # SIPp's SIP port (-p); a free one by default
    media_port: int  # its media port (-mp); a free even one by default
    transport: Transport  # UDP by default
    calls: int  # -m: end after this many calls (run_sipp: 1; start_sipp: no end)
    rate: float  # -r: new calls per second (10)
    limit: int  # -l: calls up at once
    service: str  # -s: the Request-URI's user part, and -au's default
    variables: Mapping[str, object]  # -set name value, for the scenario's globals
    injection: Sequence[Sequence[str]] | Path  # -inf: a CSV file, or rows for one (SEQUENTIAL)
    auth: tuple[str, str]  # -au, -ap: the digest username and password
    rtp_echo: bool  # -rtp_echo: send back whatever arrives at the media port
    trace: bool  # -trace_msg: keep every message sent and received
    extra: Sequence[str]  # more SIPp options, as they are
    workdir: Path  # keep SIPp's records there, not in a temp folder removed after


def sipp_command(
    scenario: Scenario,
    target: str | None,
    files: _Files,
    options: SippOptions,
    *,
    port: int,
    media_port: int,
) -> list[str]:
    """The command line for one run: addresses, load, variables and SIPp's records."""
    command = [require_binary("sipp"), *_scenario_args(scenario)]
    if target is not None:
        command.append(target)
    transport = options.get("transport", Transport.UDP)
    command += ["-i", LOOPBACK, "-p", str(port), "-t", transport.value]
    command += ["-mi", LOOPBACK, "-mp", str(media_port)]
    if "calls" in options:
        command += ["-m", str(options["calls"])]
    command += ["-r", f"{options.get('rate', 10.0):g}", "-nostdin"]
    if "limit" in options:
        command += ["-l", str(options["limit"])]
    if "service" in options:
        command += ["-s", options["service"]]
    for name, value in options.get("variables", {}).items():
        command += ["-set", name, str(value)]
    if "injection" in options:
        command += ["-inf", str(_injection_file(options["injection"], files.workdir))]
    if "auth" in options:
        command += ["-au", options["auth"][0], "-ap", options["auth"][1]]
    if options.get("rtp_echo", False):
        command.append("-rtp_echo")
    command += ["-trace_stat", "-stf", str(files.statistics), "-fd", "1"]
    command += ["-trace_screen", "-screen_file", str(files.screen)]
    command += ["-trace_err", "-error_file", str(files.errors)]
    if files.messages is not None:
        command += ["-trace_msg", "-message_file", str(files.messages)]
    command += list(options.get("extra", ()))
    return command


async def start_sipp(
    scenario: Scenario,
    target: str | None = None,
    *,
    listens: bool | None = None,
    **options: Unpack[SippOptions],
) -> SippPeer:
    """Start a scenario in the background and return it running (``SippOptions`` for the rest).

    A scenario without ``target`` is a server (agent phones, a registrar):
    ``start_sipp`` returns once it listens on its port (``peer.port``,
    ``peer.address``). Without ``calls`` it runs until stopped. Use as
    ``async with await start_sipp(...) as peer:``, which stops it after.
    """
    workdir = options.get("workdir")
    folder = Path(tempfile.mkdtemp(prefix="sipp-")) if workdir is None else workdir
    folder.mkdir(parents=True, exist_ok=True)
    files = _Files.under(folder, trace=options.get("trace", False))
    port = options.get("local_port") or free_port()
    media = options.get("media_port") or free_port_pair()
    peer = SippPeer(
        sipp_command(scenario, target, files, options, port=port, media_port=media),
        files,
        port=port,
        media_port=media,
        transport=options.get("transport", Transport.UDP),
        keep_workdir=workdir is not None,
        listens=target is None if listens is None else listens,
    )
    await peer.start()
    return peer


async def run_sipp(
    scenario: Scenario,
    target: str | None = None,
    *,
    timeout: float = 10.0,
    **options: Unpack[SippOptions],
) -> SippResult:
    """Run a scenario to its end, ``calls`` calls (1) at ``rate`` per second, in ``timeout`` s.

    ``target`` is ``host:port`` to send to (a client scenario). Returns what
    SIPp counted; ``result.ok`` when every call succeeded, ``explain()`` for
    an assertion message.
    """
    options.setdefault("calls", 1)
    peer = await start_sipp(scenario, target, listens=False, **options)
    return await peer.wait(timeout)


async def register_agents(
    registrar: str,
    agents: Mapping[str, str],
    *,
    contact_port: int,
    expires: int = 3600,
    transport: Transport = Transport.UDP,
    timeout: float = 10.0,
    concurrency: int = 8,
) -> dict[str, SippResult]:
    """Register each agent (user: password) with ``agent_register.xml``; results by user.

    SIPp 3.6 takes the digest username and password from the command line
    only (``[authentication]`` cannot read them from an injection file), so
    each agent is a run of its own, ``concurrency`` at a time. The bindings'
    Contact is ``sip:<user>@127.0.0.1:<contact_port>``: where the agent phones
    (``agent_answer.xml``) listen.
    """
    gate = asyncio.Semaphore(concurrency)

    async def register(user: str, password: str) -> tuple[str, SippResult]:
        async with gate:
            result = await run_sipp(
                "agent_register",
                registrar,
                transport=transport,
                service=user,
                auth=(user, password),
                variables={"contact_port": contact_port, "expires": expires},
                timeout=timeout,
            )
        return user, result

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(register(u, p)) for u, p in agents.items()]
    return dict(task.result() for task in tasks)
