"""A minimal SIP phone for tests: REGISTER with digest over UDP, from a real socket."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from ivr.sip import Response, parse_message
from ivr.sip.digest import answer_challenge

_branches = itertools.count(1)


class _Socket(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.put_nowait(data)


class UdpPhone:
    """One UDP socket on loopback, talking to the server at ``port``."""

    def __init__(self, transport: asyncio.DatagramTransport, protocol: _Socket, port: int) -> None:
        self._transport = transport
        self._protocol = protocol
        self.server_port = port
        self.port = int(transport.get_extra_info("sockname")[1])
        self.cseq = 0

    @classmethod
    async def open(cls, server_port: int) -> UdpPhone:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Socket, local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", server_port)
        )
        return cls(transport, protocol, server_port)

    def send(self, data: bytes) -> None:
        self._transport.sendto(data)

    async def receive(self, timeout: float = 5.0) -> Response:
        while True:
            message = parse_message(await asyncio.wait_for(self._protocol.datagrams.get(), timeout))
            if isinstance(message, Response) and message.status >= 200:
                return message

    async def request(self, method: str, user: str, *, extra: str = "") -> Response:
        self.cseq += 1
        branch = f"z9hG4bK-t{next(_branches)}"
        text = (
            f"{method} sip:127.0.0.1:{self.server_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@127.0.0.1>;tag=ph{self.port}\r\n"
            f"To: <sip:{user}@127.0.0.1>\r\n"
            f"Call-ID: {user}-{self.port}@127.0.0.1\r\n"
            f"CSeq: {self.cseq} {method}\r\n"
            f"{extra}"
            "Content-Length: 0\r\n\r\n"
        )
        self.send(text.encode())
        return await self.receive()

    async def register(self, user: str, password: str, *, expires: int = 300) -> Response:
        contact = f"Contact: <sip:{user}@127.0.0.1:{self.port}>;expires={expires}\r\n"
        challenge = await self.request("REGISTER", user, extra=contact)
        if challenge.status != 401:
            return challenge
        authorization = answer_challenge(
            challenge.headers.get_all("WWW-Authenticate")[0],
            username=user,
            password=password,
            method="REGISTER",
            uri=f"sip:127.0.0.1:{self.server_port}",
        )
        return await self.request(
            "REGISTER", user, extra=f"{contact}Authorization: {authorization}\r\n"
        )

    def close(self) -> None:
        self._transport.close()
