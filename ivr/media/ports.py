"""RTP ports: a bounded pool of even UDP ports on one local address.

Theory of operation. Each call leg needs one UDP socket for its RTP. RFC 3550
§11 puts RTP on an even port and its RTCP on the next odd one; we keep to the
even ports so that a peer assuming that rule finds nothing of ours there, but
RTCP itself is not implemented (no sender or receiver reports are sent, and
RTCP arriving on the odd port is not read: that port is never bound).

``PortPool`` hands out the even ports of ``[first, last]`` in turn, oldest
released first: a port just given back is the last to be reused, so stray
packets still flowing to a finished call are unlikely to reach the next one.
A port that another process holds (the bind fails with ``EADDRINUSE``) is
skipped and kept in the rotation for later; uvloop, the server's loop,
reports that failure as an ``OSError`` without an errno whose cause holds
it, so the cause is looked at too. When every port is taken, or
every free one fails to bind, ``bind`` raises ``PortsExhausted``: the SIP
layer answers the INVITE with 503 rather than queue the call without audio.

A port returns to the pool when the socket holding it has closed, that is,
from the datagram protocol's ``connection_lost``: asyncio closes a UDP socket
one loop iteration after ``transport.close()``, and a port handed out before
then would not bind.
"""

from __future__ import annotations

import asyncio
import errno
from collections import deque
from collections.abc import Callable
from typing import TypeVar

P = TypeVar("P", bound=asyncio.DatagramProtocol)

DEFAULT_FIRST = 16384  # a usual RTP range for PBXes
DEFAULT_LAST = 32767


class PortsExhausted(RuntimeError):
    """No RTP port is free (or every free one is held by another process)."""


class PortPool:
    """The even UDP ports of a range on one local address, bound one per leg."""

    __slots__ = ("_free", "_in_use", "first", "host", "last")

    def __init__(
        self, *, host: str = "127.0.0.1", first: int = DEFAULT_FIRST, last: int = DEFAULT_LAST
    ) -> None:
        if not 0 < first <= last <= 0xFFFF:
            raise ValueError(f"the port range {first}-{last} is not within 1-65535")
        start = first + (first & 1)  # RFC 3550 §11: RTP on even ports
        if start > last:
            raise ValueError(f"the port range {first}-{last} holds no even port")
        self.host = host
        self.first = first
        self.last = last
        self._free: deque[int] = deque(range(start, last + 1, 2))
        self._in_use: set[int] = set()

    @property
    def capacity(self) -> int:
        """How many ports the range holds."""
        return len(self._free) + len(self._in_use)

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    @property
    def available(self) -> int:
        return len(self._free)

    async def bind(
        self, protocol_factory: Callable[[], P]
    ) -> tuple[asyncio.DatagramTransport, P, int]:
        """A datagram endpoint on the next free port: its transport, protocol and port.

        The protocol must call ``release(port)`` from its ``connection_lost``.
        """
        loop = asyncio.get_running_loop()
        for _ in range(len(self._free)):
            port = self._free.popleft()
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    protocol_factory, local_addr=(self.host, port)
                )
            except OSError as exc:
                self._free.append(port)  # try it again on a later turn
                if _held_elsewhere(exc):
                    continue
                raise
            self._in_use.add(port)
            return transport, protocol, port
        raise PortsExhausted(
            f"no free RTP port in {self.host}:{self.first}-{self.last} "
            f"({len(self._in_use)} in use, {len(self._free)} held by other processes)"
        )

    def release(self, port: int) -> None:
        """Give ``port`` back once its socket has closed; releasing twice is harmless."""
        if port in self._in_use:
            self._in_use.discard(port)
            self._free.append(port)


def _held_elsewhere(exc: OSError) -> bool:
    """Whether a bind failed because the port is taken (or not ours to take)."""
    for error in (exc, exc.__cause__):  # uvloop: "could not bind", the errno in its cause
        if isinstance(error, OSError) and error.errno in (errno.EADDRINUSE, errno.EACCES):
            return True
    return False
