"""Real SIP peers for tests and the load bench: SIPp scenarios and a baresip phone.

``peers.sipp`` runs the scenarios of ``loadtest/sipp/`` (and SIPp's built-in
ones) as subprocesses, to completion or in the background, and reads back what
SIPp counted; ``peers.baresip`` runs a baresip agent phone with a generated
configuration and reads its log. Both are installed by
``scripts/install-sip-peers.sh``. Without them a test that needs them is
skipped, or fails when ``CI=true``: CI must not go green without the real peers.
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import NoReturn

import pytest

LOOPBACK = "127.0.0.1"
INSTALL_HINT = "install them with scripts/install-sip-peers.sh"


def peer_unavailable(message: str) -> NoReturn:
    """Skip the test, or fail it in CI, where the real SIP peers must be installed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: the SIP peer tests must run)", pytrace=False)
    pytest.skip(message)


def require_binary(name: str) -> str:
    """The path of a peer's program; skips (fails in CI) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        peer_unavailable(f"{name} is not installed: {INSTALL_HINT}")
    return path


def free_port(host: str = LOOPBACK) -> int:
    """A port free for both UDP and TCP on ``host`` just now (a peer binds it next)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise OSError("no port free for both UDP and TCP")


def free_port_pair(host: str = LOOPBACK) -> int:
    """An even UDP port whose successor is free too: an RTP and RTCP pair (RFC 3550 §11)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1]) & ~1
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtcp,
            ):
                rtp.bind((host, port))
                rtcp.bind((host, port + 1))
        except OSError:
            continue
        return port
    raise OSError("no free even/odd UDP port pair")


def udp_port_taken(port: int, host: str = LOOPBACK) -> bool:
    """Whether something is bound to ``host:port`` over UDP: a peer is listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def tcp_port_listening(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0
