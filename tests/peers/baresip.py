"""baresip as a real agent phone: registers with a password, answers by itself, logs what happens.

Theory of operation
-------------------
``baresip_phone(account)`` writes a configuration folder of its own (``-f``)
for one SIP account and starts ``baresip`` on it, bound to loopback only
(``-4 -n 127.0.0.1``, ``sip_listen 127.0.0.1:<port>``, so its SDP offers
127.0.0.1 too). No sound card: the phone "speaks" a sine tone (``ausine``,
resampled from 48 kHz stereo to the call's 8 kHz) and plays what it hears
into an ``aubridge`` device nobody reads. Auto-answer is the account's
``answermode=auto``; ``answer=False`` leaves calls ringing (a phone nobody
picks up). Only G.711 (PCMU, PCMA) is offered and accepted.

baresip says what it does on stdout, one line per event (the ``menu`` module;
the call status line it redraws with carriage returns is dropped), line by
line thanks to ``stdbuf -oL`` (a pipe would be block-buffered). A reader
task turns the lines into ``Logged`` events: registered, registration
failed, call answered, call established, call closed, key received. Tests
wait for them with a timeout: ``wait_registered``, ``wait_for``.

``control_port`` loads baresip's ``ctrl_tcp`` module on that loopback port:
``command("accept")`` is then the agent pressing the phone's answer key (a
JSON command in a netstring, answered the same way).

``stop`` is SIGINT, on which baresip unregisters and quits; a second SIGINT
makes it quit at once (when the registrar is gone and the unregistration
would wait for Timer F), SIGKILL last. Used as an async context manager the
phone is always stopped.

What baresip 1.0 (Debian 12) cannot do, and so neither can these tests: a
401 with a SHA-256 challenge in it, even after an MD5 one, fails the
registration ("Function not implemented"); register with a server offering
MD5 only. It may miss the first key of a run sent with SIPp's play_dtmf.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

from peers import LOOPBACK, require_binary

MODULE_DIRS = (
    Path("/usr/lib/baresip/modules"),
    Path("/usr/local/lib/baresip/modules"),
    Path("/usr/lib/x86_64-linux-gnu/baresip/modules"),
)
MODULES = ("g711.so", "ausine.so", "aubridge.so")
STOP_PATIENCE = 1.0

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REGISTERED = re.compile(r"^(?P<aor>\S+): \{\d+/(?P<transport>\w+)/v\d\} (?P<status>\d{3}) ")
_REGISTER_FAILED = re.compile(r"^reg: (?P<aor>\S+): (?P<reason>.+)$")
_INCOMING = re.compile(r": Incoming call from: +(?P<peer>.*?) - \(press")
_REINVITED = re.compile(r"^call: got re-INVITE")
_ANSWERED = re.compile(r"^call: answering call on line \d+ from (?P<peer>\S+) with (?P<status>\d+)")
_ESTABLISHED = re.compile(r"Call established: (?P<peer>\S+)")
_CLOSED = re.compile(r"^(?P<peer>\S+): session closed: (?P<reason>.*)$")
_DIGIT = re.compile(r"received event: '(?P<digit>[^']+)' \(end=(?P<end>[01])\)")


class Event(Enum):
    """What baresip logged, as far as a test cares."""

    REGISTERED = "registered"  # a 2xx to its REGISTER
    REGISTRATION_FAILED = "registration failed"  # a final error, or no answer at all
    INCOMING = "incoming"  # an INVITE rings it (answer mode manual)
    ANSWERED = "answered"  # it answered an incoming call (auto-answer)
    ESTABLISHED = "established"  # the call is up (ACK received, or 2xx to ours)
    CLOSED = "closed"  # the call ended, by BYE either way or failure ("session closed")
    REINVITED = "re-invited"  # a re-INVITE in a call (hold, resume)
    KEY = "key"  # a telephone-event key (RFC 4733) began or ended


@dataclass(frozen=True, slots=True, kw_only=True)
class Logged:
    """One event from baresip's log, with the line it came from."""

    event: Event
    line: str
    detail: str = ""  # the registration status, failure reason, peer, or key
    end: bool = False  # for KEY: the event's end (E bit) rather than its start


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """A SIP account for the phone: ``user`` at ``registrar`` (host:port), digest password."""

    user: str
    password: str
    registrar: str  # host:port of the registrar; the address of record's domain too
    transport: str = "udp"
    expires: int = 3600  # regint: the registration's lifetime, refreshed by baresip
    answer: bool = True  # auto-answer; False leaves incoming calls ringing

    def line(self) -> str:
        """The account's line in baresip's ``accounts`` file."""
        mode = "auto" if self.answer else "manual"
        return (
            f"<sip:{self.user}@{self.registrar};transport={self.transport}>"
            f";auth_pass={self.password};answermode={mode};regint={self.expires}"
            ";audio_codecs=PCMU,PCMA;ptime=20"
        )


class BaresipError(RuntimeError):
    """baresip did not do what the test waited for (with its log, to see why)."""


def module_dir() -> Path:
    for folder in MODULE_DIRS:
        if all((folder / m).is_file() for m in MODULES):
            return folder
    raise FileNotFoundError(f"no baresip modules {MODULES} in {[str(d) for d in MODULE_DIRS]}")


def write_config(
    folder: Path, account: Account, *, port: int, modules: Path, control_port: int | None = None
) -> None:
    """baresip's ``config`` and ``accounts`` for one headless loopback phone."""
    config = f"""\
poll_method\t\tepoll
sip_listen\t\t{LOOPBACK}:{port}
call_local_timeout\t120
call_max_calls\t\t4
audio_player\t\taubridge,heard-{port}
audio_source\t\tausine,440
ausrc_srate\t\t48000
ausrc_channels\t\t2
audio_alert\t\taubridge,alert-{port}
module_path\t\t{modules}
module\t\t\tg711.so
module\t\t\tausine.so
module\t\t\taubridge.so
module_tmp\t\taccount.so
module_app\t\tmenu.so
"""
    if control_port is not None:
        config += f"module_app\t\tctrl_tcp.so\nctrl_tcp_listen\t\t{LOOPBACK}:{control_port}\n"
    (folder / "config").write_text(config)
    (folder / "accounts").write_text(account.line() + "\n")
    (folder / "contacts").write_text("")


def parse_line(line: str) -> Logged | None:
    """The event a line of baresip's log reports, if any."""
    if m := _REGISTERED.match(line):
        ok = m["status"].startswith("2")
        event = Event.REGISTERED if ok else Event.REGISTRATION_FAILED
        return Logged(event=event, line=line, detail=m["status"])
    if m := _REGISTER_FAILED.match(line):
        return Logged(event=Event.REGISTRATION_FAILED, line=line, detail=m["reason"])
    if m := _INCOMING.search(line):
        return Logged(event=Event.INCOMING, line=line, detail=m["peer"].strip())
    if _REINVITED.match(line):
        return Logged(event=Event.REINVITED, line=line)
    if m := _ANSWERED.match(line):
        return Logged(event=Event.ANSWERED, line=line, detail=m["peer"])
    if m := _ESTABLISHED.search(line):
        return Logged(event=Event.ESTABLISHED, line=line, detail=m["peer"])
    if m := _CLOSED.match(line):
        return Logged(event=Event.CLOSED, line=line, detail=m["peer"])
    if m := _DIGIT.search(line):
        return Logged(event=Event.KEY, line=line, detail=m["digit"], end=m["end"] == "1")
    return None


class BaresipPhone:
    """One baresip process with one account, its log read as it comes."""

    def __init__(
        self,
        account: Account,
        *,
        port: int,
        workdir: Path,
        keep_workdir: bool,
        control_port: int | None = None,
    ) -> None:
        self.account = account
        self.port = port  # where it listens for SIP
        self.control_port = control_port  # ctrl_tcp's, when loaded
        self.workdir = workdir
        self.lines: list[str] = []  # everything it printed, ANSI colours removed
        self.events: list[Logged] = []
        self._keep = keep_workdir
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    @property
    def address(self) -> str:
        """Where to send SIP to the phone directly: ``127.0.0.1:port``."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def digits(self) -> str:
        """The keys it heard, one per press: a start, or an end whose start was lost."""
        keys: list[str] = []
        pressed: str | None = None
        for logged in self.events:
            if logged.event is not Event.KEY:
                continue
            if not logged.end:
                keys.append(logged.detail)
                pressed = logged.detail
            elif pressed != logged.detail:
                keys.append(logged.detail)
            else:
                pressed = None
        return "".join(keys)

    def count(self, event: Event) -> int:
        return sum(1 for logged in self.events if logged.event is event)

    async def start(self) -> None:
        binary = require_binary("baresip")
        write_config(
            self.workdir,
            self.account,
            port=self.port,
            modules=module_dir(),
            control_port=self.control_port,
        )
        # Its stdout is a pipe here, which stdio would buffer by the block:
        # stdbuf makes it write each line as it happens.
        unbuffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
        self._process = await asyncio.create_subprocess_exec(
            *unbuffered,
            binary,
            "-4",
            "-n",
            LOOPBACK,
            "-f",
            str(self.workdir),
            cwd=self.workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._read(self._process))

    async def wait_registered(self, timeout: float = 5.0) -> Logged:
        """The registration's 2xx; ``BaresipError`` if it failed or did not come in time."""
        logged = await self.wait_for(
            lambda e: e.event in (Event.REGISTERED, Event.REGISTRATION_FAILED), timeout
        )
        if logged.event is Event.REGISTRATION_FAILED:
            raise BaresipError(f"registration failed: {logged.detail}\n{self.log}")
        return logged

    async def wait_for(
        self, wanted: Event | Callable[[Logged], bool], timeout: float = 5.0, *, count: int = 1
    ) -> Logged:
        """The ``count``-th event (from the start) matching ``wanted``, within ``timeout``."""
        match = wanted if callable(wanted) else (lambda e: e.event is wanted)

        def found() -> list[Logged]:
            return [e for e in self.events if match(e)]

        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(found()) >= count or not self._alive()),
                    timeout,
                )
        hits = found()
        if len(hits) < count:
            what = wanted.value if isinstance(wanted, Event) else "the event"
            raise BaresipError(f"baresip did not log {what} (x{count}) in {timeout}s\n{self.log}")
        return hits[count - 1]

    async def command(self, name: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Run a baresip command through ``ctrl_tcp`` (``accept``, ``hangup``...): its response."""
        if self.control_port is None:
            raise BaresipError("started without a control port")
        token = f"t{random.randrange(1 << 30)}"
        message = json.dumps({"command": name, "params": params, "token": token}).encode()
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(LOOPBACK, self.control_port)
            try:
                writer.write(b"%d:%s," % (len(message), message))
                await writer.drain()
                while True:  # events come on the same socket: wait for our response
                    length = int((await reader.readuntil(b":"))[:-1])
                    reply = json.loads((await reader.readexactly(length + 1))[:-1])
                    if reply.get("response") and reply.get("token") == token:
                        return dict(reply)
            finally:
                writer.close()

    async def stop(self) -> int | None:
        """Unregister and quit (SIGINT), harder if it lingers; its exit code, None if killed."""
        process = self._process
        if process is None:
            return None
        for sig in (signal.SIGINT, signal.SIGINT, signal.SIGKILL):
            if process.returncode is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), STOP_PATIENCE)
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        code = process.returncode
        return None if code is None or code < 0 else code

    async def __aenter__(self) -> BaresipPhone:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        with (self.workdir / "baresip.log").open("w") as copy:
            while raw := await process.stdout.readline():
                text = _ANSI.sub("", raw.decode(errors="replace"))
                copy.write(text)
                # The call status line is redrawn with carriage returns, mid-line.
                parts = [p.strip() for p in text.replace("\r", "\n").split("\n")]
                async with self._changed:
                    for part in parts:
                        if not part or part.startswith("[0:"):
                            continue
                        self.lines.append(part)
                        if (logged := parse_line(part)) is not None:
                            self.events.append(logged)
                    self._changed.notify_all()
        await process.wait()
        async with self._changed:
            self._changed.notify_all()


def sip_listen_port() -> int:
    """A port for baresip's SIP listeners: UDP and TCP on it, and TLS (TCP) on the next.

    Taken below the kernel's ephemeral range (32768-60999 here) and above the
    media ports' default (16384 up), so that an outgoing connection of another
    process cannot take it between this check and baresip's bind.
    """
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(10_000, 16_000, 2)
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tls,
            ):
                udp.bind((LOOPBACK, port))
                tcp.bind((LOOPBACK, port))
                tls.bind((LOOPBACK, port + 1))
        except OSError:
            continue
        return port
    raise OSError("no port free for baresip's SIP listeners")


async def baresip_phone(
    account: Account,
    *,
    port: int | None = None,
    workdir: Path | None = None,
    control_port: int | None = None,
) -> BaresipPhone:
    """Start a baresip phone for ``account`` on a free (or given) loopback port.

    It registers by itself; ``await phone.wait_registered()`` before relying
    on it. Use as ``async with await baresip_phone(...) as phone:``.
    """
    keep = workdir is not None
    folder = Path(tempfile.mkdtemp(prefix="baresip-")) if workdir is None else workdir
    folder.mkdir(parents=True, exist_ok=True)
    phone = BaresipPhone(
        account,
        port=sip_listen_port() if port is None else port,
        workdir=folder,
        keep_workdir=keep,
        control_port=control_port,
    )
    await phone.start()
    return phone
