"""SIP over UDP and TCP on one address: bytes in and out, parsed at the edge (RFC 3261 §18).

Theory of operation. ``SipTransport`` listens on UDP and TCP at the same
host and port. Every datagram, and every message the ``StreamFramer`` cuts
from a TCP stream, is parsed here; what arrives intact goes up to
``on_message(message, peer)``, where ``Peer`` says where it came from and
over what. What does not parse is answered here when the RFC lets us (a
``ParseError`` that kept the headers a response needs: 400, or 505 for a
version we do not speak) and dropped otherwise; a TCP stream whose framing
is lost is closed, since nothing after the break can be trusted.

Where a response goes (the Via's received and rport, RFC 3581) is the
transaction layer's business (``ivr.sip.transactions``): it stamps the Via of
each new request with where it really came from.

Sending: over UDP a datagram to the peer's address; over TCP on the
connection the peer opened, else on one we open (kept for the peer's later
messages). Every connection is bounded by the framer's size limits and closed
after ``idle_seconds`` without traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Callable

from ivr.sip.errors import ParseError
from ivr.sip.message import Message, error_response, parse_message, serialize
from ivr.sip.stream import StreamFramer
from ivr.sip.transaction_outputs import Peer

log = logging.getLogger(__name__)

OnMessage = Callable[[Message, Peer], None]


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        host, port = str(addr[0]), int(str(addr[1]))
        self._owner._received(data, Peer(host, port, "udp"), None)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable and the like
        log.debug("UDP error: %r", exc)


class _Stream(asyncio.Protocol):
    """One TCP connection: bytes framed into messages."""

    def __init__(self, owner: SipTransport) -> None:
        self._owner = owner
        self._framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Peer(str(host), int(port), "tcp")
        self._owner._connections[(self.peer.host, self.peer.port)] = self
        self._touch()

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.transport is not None
        self._touch()
        for item in self._framer.feed(data):
            self._owner._deliver(item, self.peer, self)
        for _ in range(self._framer.take_pongs()):
            self.transport.write(b"\r\n")  # RFC 5626 §3.5.1: CRLFCRLF ping, CRLF pong
        if self._framer.broken:
            self.transport.close()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._touch()
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self.peer is not None:
            key = (self.peer.host, self.peer.port)
            if self._owner._connections.get(key) is self:
                del self._owner._connections[key]

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._owner.idle_seconds, self._close_idle)

    def _close_idle(self) -> None:
        if self.transport is not None:
            self.transport.close()


class SipTransport:
    def __init__(
        self, host: str, port: int, on_message: OnMessage, *, idle_seconds: float = 300.0
    ) -> None:
        self.host = host
        self.port = port
        self.idle_seconds = idle_seconds
        self._on_message = on_message
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: dict[tuple[str, int], _Stream] = {}
        self._connecting: dict[tuple[str, int], asyncio.Task[None]] = {}
        self.dropped = 0  # messages that did not parse and could not be answered
        self.answered_errors = 0  # messages that did not parse and got a 4xx/5xx

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ephemeral = self.port == 0
        for attempt in range(20):
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=(self.host, self.port if not ephemeral else 0)
            )
            port = int(self._udp.get_extra_info("sockname")[1])
            try:
                self._tcp = await loop.create_server(lambda: _Stream(self), self.host, port)
            except OSError as error:
                # An ephemeral UDP port (tests) may be a TCP port in use: try another one.
                self._udp.close()
                if not ephemeral or error.errno != errno.EADDRINUSE or attempt == 19:
                    raise
                continue
            self.port = port
            return

    async def close(self) -> None:
        for task in self._connecting.values():
            task.cancel()
        if self._udp is not None:
            self._udp.close()
        for stream in list(self._connections.values()):
            if stream.transport is not None:
                stream.transport.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()

    def send(self, message: Message | bytes, peer: Peer) -> None:
        """Send to ``peer`` (never waits: a TCP connection still being opened queues it)."""
        data = message if isinstance(message, bytes) else serialize(message)
        if peer.transport == "udp":
            if self._udp is not None:
                self._udp.sendto(data, (peer.host, peer.port))
            return
        stream = self._connections.get((peer.host, peer.port))
        if stream is not None:
            stream.write(data)
            return
        self._connect_then_send(peer, data)

    def _connect_then_send(self, peer: Peer, data: bytes) -> None:
        key = (peer.host, peer.port)
        earlier = self._connecting.get(key)

        async def connect() -> None:
            if earlier is not None:
                with contextlib.suppress(Exception):
                    await earlier
            stream = self._connections.get(key)
            if stream is None:
                loop = asyncio.get_running_loop()
                try:
                    _, protocol = await asyncio.wait_for(
                        loop.create_connection(lambda: _Stream(self), peer.host, peer.port), 5.0
                    )
                except (OSError, TimeoutError) as error:
                    log.info("no TCP connection to %s:%d: %r", peer.host, peer.port, error)
                    return
                stream = protocol
            stream.write(data)

        task = asyncio.create_task(connect())
        self._connecting[key] = task
        task.add_done_callback(lambda t: self._connecting.pop(key, None) if t is task else None)

    # == arrivals ======================================================================

    def _received(self, data: bytes, peer: Peer, stream: _Stream | None) -> None:
        if data.strip(b"\r\n") == b"":
            return  # a keep-alive (RFC 5626 §4.4.1 sends these over UDP too)
        try:
            item: Message | ParseError = parse_message(data)
        except ParseError as error:
            item = error
        self._deliver(item, peer, stream)

    def _deliver(self, item: Message | ParseError, peer: Peer, stream: _Stream | None) -> None:
        if isinstance(item, ParseError):
            response = error_response(item)
            if response is None:
                self.dropped += 1
                log.debug("dropped a message from %s: %s", peer, item)
                return
            self.answered_errors += 1
            self.send(response, peer)  # the headers could not be trusted enough to route by
            return
        try:
            self._on_message(item, peer)
        except Exception:  # a bug above must not take the listener down
            log.exception("SIP message handler failed on a message from %s", peer)
