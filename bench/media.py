"""How many concurrent legs the media engine keeps on time: bridged calls, and legs playing prompts.

Bridged calls (the headline). Each call is two ``MediaLeg``s joined by a
``Bridge``, as a caller talking to an agent. Both phones of every call are
played by a load generator in a child process (so its work is not counted as
ours): every 20 ms it sends one 160-octet µ-law packet from the "callers"
socket to each caller leg and one from the "agents" socket to each agent
leg, the send time (``time.monotonic``, the same clock in both processes)
written into the payload, which a same-codec bridge passes on untouched. It
reads what the bridges send on to the other side and takes, for every
packet, its delay from send to arrival: what the engine adds to the path (its
parsing, counting, re-stamping and sending), plus the loopback and the
generator's own reading. A step of N calls (2N legs) is *sustained* when,
over the measuring window, at least 99.9 % of the packets sent came through
and 99.9 % of those within 20 ms (one packet time), and the generator kept
its own schedule (else the figure is the generator's limit, and says so).

Paced legs. N legs play music on hold (``Player.hold_music``), all ticked by
the one ``Pacer`` task, to a socket nobody reads (the kernel drops what
overflows). A step is sustained when 99.9 % of the frames went out within
20 ms of their due time (the pacer's own lateness histogram).

CPU is this process's (``time.process_time``) over the measuring window, as a
share of one core; the generator's is shown apart. Steps double until one is
not sustained. The machine's other load counts against the figures: run it
on a quiet machine. ``--quick`` is a smoke run of a few small steps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import resource
import select
import socket
import struct
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection

from ivr.media import Bridge, MediaLeg, Pacer, Player, PortPool
from ivr.rtp.g711 import Codec
from ivr.sdp import AudioAgreement, Direction

PERIOD = 0.020
ON_TIME = 0.020
TARGET = 0.999
HOST = "127.0.0.1"
_HEADER = struct.Struct("!BBHII")
_SENT_AT = struct.Struct("!d")


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgedStep:
    calls: int
    legs: int
    packets_sent: int
    packets_received: int
    on_time: float  # share of received packets within 20 ms
    p50_ms: float
    p99_ms: float
    max_ms: float
    engine_cpu: float  # share of one core
    generator_cpu: float
    generator_late_ms: float  # the generator's worst lateness at sending a round
    sustained: bool
    limited_by_generator: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PacedStep:
    legs: int
    frames: int
    on_time: float  # share of frames sent within 20 ms of due
    mean_ms: float
    p99_ms: float
    max_ms: float
    engine_cpu: float
    sustained: bool


def agreement(address: tuple[str, int]) -> AudioAgreement:
    return AudioAgreement(
        codec=Codec.PCMU,
        payload_type=0,
        telephone_event=101,
        remote_address=address[0],
        remote_port=address[1],
        direction=Direction.SENDRECV,
        remote_hold=False,
        ptime=None,
        media_index=0,
    )


# ----------------------------------------------------------------- generator


def _phones(conn: Connection, warmup: float, seconds: float) -> None:
    """The child process: both phones of every call."""
    callers = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    agents = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for sock in (callers, agents):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.bind((HOST, 0))
        sock.setblocking(False)
    conn.send((callers.getsockname(), agents.getsockname()))
    caller_ports, agent_ports = conn.recv()
    targets = [(callers, (HOST, port), 0x1000_0000 + i) for i, port in enumerate(caller_ports)]
    targets += [(agents, (HOST, port), 0x2000_0000 + i) for i, port in enumerate(agent_ports)]
    filler = b"\xff" * (160 - _SENT_AT.size)
    histogram = [0] * 1001  # 0.1 ms bins to 100 ms
    received = sent = 0
    worst_late = 0.0
    cpu_start: float | None = None
    start = time.monotonic() + 0.05
    measure_from = start + warmup
    end = measure_from + seconds
    due = start

    def drain() -> None:
        nonlocal received
        now = time.monotonic()
        for sock in (callers, agents):
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    break
                (sent_at,) = _SENT_AT.unpack_from(data, 12)
                if sent_at >= measure_from:
                    received += 1
                    histogram[min(int((now - sent_at) * 10_000), 1000)] += 1

    n = 0
    while due < end:
        wait = due - time.monotonic()
        while wait > 0:
            select.select([callers, agents], [], [], wait)
            drain()
            wait = due - time.monotonic()
        if due >= measure_from:
            if cpu_start is None:
                cpu_start = time.process_time()
            worst_late = max(worst_late, time.monotonic() - due)
        for k, (sock, address, ssrc) in enumerate(targets):
            payload = _SENT_AT.pack(time.monotonic()) + filler
            header = _HEADER.pack(0x80, 0, n & 0xFFFF, (n * 160) & 0xFFFF_FFFF, ssrc)
            with contextlib.suppress(BlockingIOError):
                sock.sendto(header + payload, address)
            if due >= measure_from:
                sent += 1
            if k % 64 == 63:
                drain()
        n += 1
        due += PERIOD
    settle = time.monotonic() + 0.2  # the last round's packets are still on their way
    while time.monotonic() < settle:
        select.select([callers, agents], [], [], 0.01)
        drain()
    cpu = time.process_time() - (cpu_start or 0.0)
    conn.send(
        {
            "sent": sent,
            "received": received,
            "histogram": histogram,
            "cpu": cpu / seconds,
            "late": worst_late,
        }
    )


def _quantile(histogram: list[int], fraction: float, width: float) -> float:
    total = sum(histogram)
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if total and seen >= fraction * total:
            return (index + 1) * width
    return len(histogram) * width


async def bridged_step(calls: int, warmup: float, seconds: float, ports: PortPool) -> BridgedStep:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_phones, args=(child, warmup, seconds), daemon=True)
    process.start()
    try:
        caller_address, agent_address = await asyncio.to_thread(parent.recv)
        pacer = Pacer()
        legs: list[MediaLeg] = []
        bridges: list[Bridge] = []
        for _ in range(calls):
            a = await MediaLeg.open(ports=ports, pacer=pacer)
            b = await MediaLeg.open(ports=ports, pacer=pacer)
            a.configure(agreement(caller_address))
            b.configure(agreement(agent_address))
            bridges.append(Bridge(a, b))
            legs += (a, b)
        parent.send(([leg.port for leg in legs[::2]], [leg.port for leg in legs[1::2]]))
        await asyncio.sleep(0.05 + warmup)
        cpu = time.process_time()
        await asyncio.sleep(seconds)
        cpu = (time.process_time() - cpu) / seconds
        result = await asyncio.to_thread(parent.recv)
    finally:
        process.join(5)
        if process.is_alive():
            process.terminate()
    for bridge in bridges:
        bridge.close()
    for leg in legs:
        leg.close()
    await asyncio.sleep(0.05)  # the sockets close, their ports return
    histogram: list[int] = result["histogram"]
    received = int(result["received"])
    on_time = sum(histogram[: int(ON_TIME * 10_000)]) / received if received else 0.0
    generator_late = float(result["late"])
    delivered = received / result["sent"] if result["sent"] else 0.0
    limited = generator_late >= PERIOD
    return BridgedStep(
        calls=calls,
        legs=2 * calls,
        packets_sent=int(result["sent"]),
        packets_received=received,
        on_time=on_time,
        p50_ms=_quantile(histogram, 0.5, 0.1),
        p99_ms=_quantile(histogram, 0.99, 0.1),
        max_ms=max((i + 1) * 0.1 for i, count in enumerate(histogram) if count) if received else 0,
        engine_cpu=cpu,
        generator_cpu=float(result["cpu"]),
        generator_late_ms=generator_late * 1000,
        sustained=delivered >= TARGET and on_time >= TARGET and not limited,
        limited_by_generator=limited,
    )


# --------------------------------------------------------------- paced legs


async def paced_step(count: int, warmup: float, seconds: float, ports: PortPool) -> PacedStep:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((HOST, 0))
    pacer = Pacer()
    player = Player()
    legs = [await MediaLeg.open(ports=ports, pacer=pacer) for _ in range(count)]
    try:
        async with asyncio.TaskGroup() as group:
            ticking = group.create_task(pacer.run())
            for leg in legs:
                leg.configure(agreement(sink.getsockname()))
                player.hold_music(leg)
            await asyncio.sleep(warmup)
            pacer.reset_statistics()
            cpu = time.process_time()
            await asyncio.sleep(seconds)
            cpu = (time.process_time() - cpu) / seconds
            statistics = pacer.statistics()
            ticking.cancel()
    finally:
        for leg in legs:
            leg.close()
        sink.close()
        await asyncio.sleep(0.05)
    frames = statistics.frames
    on_time = (frames - statistics.late_frames) / frames if frames else 0.0
    return PacedStep(
        legs=count,
        frames=frames,
        on_time=on_time,
        mean_ms=statistics.mean_lateness * 1000,
        p99_ms=statistics.percentile(0.99) * 1000,
        max_ms=statistics.max_lateness * 1000,
        engine_cpu=cpu,
        sustained=on_time >= TARGET,
    )


# --------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> dict[str, object]:
    ports = PortPool(host=HOST, first=args.first_port, last=args.last_port)
    bridged: list[BridgedStep] = []
    calls = args.calls
    while calls <= args.max_calls:
        step = await bridged_step(calls, args.warmup, args.seconds, ports)
        bridged.append(step)
        if not args.json:
            print(
                f"bridged {step.calls:5d} calls ({step.legs:5d} legs): "
                f"{step.packets_received}/{step.packets_sent} packets, "
                f"{step.on_time:7.3%} within 20 ms, p50 {step.p50_ms:.1f} ms, "
                f"p99 {step.p99_ms:.1f} ms, max {step.max_ms:.1f} ms; "
                f"CPU {step.engine_cpu:.0%} (generator {step.generator_cpu:.0%}, "
                f"late {step.generator_late_ms:.1f} ms)"
                + ("" if step.sustained else "  <- not sustained")
                + ("  [generator-limited]" if step.limited_by_generator else ""),
                flush=True,
            )
        if not step.sustained:
            break
        calls *= 2
    paced: list[PacedStep] = []
    count = args.legs
    while count <= args.max_legs:
        paced_result = await paced_step(count, args.warmup, args.seconds, ports)
        paced.append(paced_result)
        if not args.json:
            print(
                f"paced   {paced_result.legs:5d} legs: {paced_result.frames} frames, "
                f"{paced_result.on_time:7.3%} within 20 ms, mean {paced_result.mean_ms:.1f} ms, "
                f"p99 {paced_result.p99_ms:.0f} ms, max {paced_result.max_ms:.1f} ms; "
                f"CPU {paced_result.engine_cpu:.0%}"
                + ("" if paced_result.sustained else "  <- not sustained"),
                flush=True,
            )
        if not paced_result.sustained:
            break
        count *= 2
    best_bridged = max((s.legs for s in bridged if s.sustained), default=0)
    best_paced = max((s.legs for s in paced if s.sustained), default=0)
    summary = {
        "bridged_legs_sustained": best_bridged,
        "paced_legs_sustained": best_paced,
        "bridged": [asdict(s) for s in bridged],
        "paced": [asdict(s) for s in paced],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"\nconcurrent bridged legs sustained (packets within 20 ms): {best_bridged}"
            f"\nconcurrent paced legs sustained (frames within 20 ms of due): {best_paced}"
        )
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=100, help="bridged calls in the first step")
    parser.add_argument("--max-calls", type=int, default=3200)
    parser.add_argument("--legs", type=int, default=250, help="paced legs in the first step")
    parser.add_argument("--max-legs", type=int, default=8000)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring window per step")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--first-port", type=int, default=20000)
    parser.add_argument("--last-port", type=int, default=39999)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small, short steps")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.max_calls, args.legs, args.max_legs = 10, 20, 20, 40
        args.seconds, args.warmup = 0.5, 0.2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # one socket per leg
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
