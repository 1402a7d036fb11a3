"""SIP over real UDP and TCP sockets on loopback: parsed at the edge, answered when broken."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ivr.sip import Request, parse_message
from ivr.sip.message import Message, Response
from ivr.sip.transaction_outputs import Peer
from ivr.sip.transport import SipTransport

OPTIONS = (
    "OPTIONS sip:acd@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/{transport} 192.0.2.1:5099;branch=z9hG4bK-{n};rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:probe@example.com>;tag=p{n}\r\n"
    "To: <sip:acd@127.0.0.1>\r\n"
    "Call-ID: c{n}@example.com\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n"
)


class Received:
    def __init__(self) -> None:
        self.items: asyncio.Queue[tuple[Message, Peer]] = asyncio.Queue()

    def __call__(self, message: Message, peer: Peer) -> None:
        self.items.put_nowait((message, peer))

    async def next(self) -> tuple[Message, Peer]:
        return await asyncio.wait_for(self.items.get(), 5)


@pytest.fixture
async def listening() -> AsyncIterator[tuple[SipTransport, Received]]:
    received = Received()
    transport = SipTransport("127.0.0.1", 0, received)
    await transport.start()
    try:
        yield transport, received
    finally:
        await transport.close()


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.datagrams.put_nowait(data)


async def test_a_udp_request_goes_up_with_where_it_came_from_and_is_answered_there(
    listening: tuple[SipTransport, Received],
) -> None:
    transport, received = listening
    loop = asyncio.get_running_loop()
    client, protocol = await loop.create_datagram_endpoint(
        _Client, remote_addr=("127.0.0.1", transport.port)
    )
    try:
        client.sendto(OPTIONS.format(transport="UDP", n=1).encode())
        message, peer = await received.next()
        assert isinstance(message, Request) and message.method == "OPTIONS"
        client_port = client.get_extra_info("sockname")[1]
        assert peer == Peer("127.0.0.1", client_port, "udp")
        reply = Response(status=200, reason="OK", headers=message.headers.copy())
        transport.send(reply, peer)
        answer = parse_message(await asyncio.wait_for(protocol.datagrams.get(), 5))
        assert isinstance(answer, Response) and answer.status == 200
    finally:
        client.close()


async def test_a_broken_request_with_the_headers_a_response_needs_gets_a_400(
    listening: tuple[SipTransport, Received],
) -> None:
    transport, _ = listening
    loop = asyncio.get_running_loop()
    client, protocol = await loop.create_datagram_endpoint(
        _Client, remote_addr=("127.0.0.1", transport.port)
    )
    try:
        broken = OPTIONS.format(transport="UDP", n=2).replace(
            "Content-Length: 0", "Content-Length: 99"
        )
        client.sendto(broken.encode())
        answer = parse_message(await asyncio.wait_for(protocol.datagrams.get(), 5))
        assert isinstance(answer, Response) and answer.status == 400
        client.sendto(b"\x00\xffnot sip at all\r\n\r\n")  # nothing to answer with: dropped
        await asyncio.sleep(0.05)
        assert transport.dropped == 1 and transport.answered_errors == 1
    finally:
        client.close()


async def test_tcp_messages_are_framed_and_answered_on_the_same_connection(
    listening: tuple[SipTransport, Received],
) -> None:
    transport, received = listening
    reader, writer = await asyncio.open_connection("127.0.0.1", transport.port)
    try:
        first, second = (OPTIONS.format(transport="TCP", n=n).encode() for n in (3, 4))
        writer.write(first + b"\r\n\r\n" + second[:40])  # a keep-alive ping between the two
        await writer.drain()
        message, peer = await received.next()
        assert isinstance(message, Request) and message.call_id == "c3@example.com"
        assert peer.transport == "tcp"
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\r\n"  # the pong
        writer.write(second[40:])
        message, _ = await received.next()
        assert message.call_id == "c4@example.com"
        transport.send(Response(status=200, reason="OK", headers=message.headers.copy()), peer)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"SIP/2.0 200 OK")
    finally:
        writer.close()
