"""A minimal SIP phone for tests, over UDP from a real socket: REGISTER, calls made and taken.

``UdpPhone`` speaks just enough SIP to be a caller (``call``: INVITE with an
SDP offer, then ``ack`` and ``hang_up``) or an agent's phone (``register``,
``incoming``: the INVITE the server sends, ``answer`` it, ``hang_up`` as the
callee) and to answer what the server sends in a dialog (``respond``). The
media is ``ivr.media.testing.FarEnd``: the phone's SDP points at it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from ivr.sdp import SessionDescription
from ivr.sip import Request, Response, parse_message
from ivr.sip.digest import answer_challenge
from ivr.sip.message import Message, response_to, serialize

_branches = itertools.count(1)


class _Socket(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.put_nowait(data)


def offer(port: int, formats: str = "0 101") -> str:
    """An SDP offer of one audio stream at 127.0.0.1:``port`` with ``formats`` (PCMU, events)."""
    maps = {"0": "a=rtpmap:0 PCMU/8000\r\n", "101": "a=rtpmap:101 telephone-event/8000\r\n"}
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {formats}\r\n"
        + "".join(maps.get(f, "") for f in formats.split())
        + "a=sendrecv\r\n"
    )


def media_address(message: Message) -> tuple[str, int]:
    """Where the SDP in ``message`` says to send RTP."""
    sdp = SessionDescription.parse(message.body)
    media = sdp.media[0]
    connection = sdp.connection_for(media)
    assert connection is not None
    return connection.address, media.port


class UdpPhone:
    """One UDP socket on loopback, talking to the server at ``port``."""

    def __init__(
        self,
        transport: asyncio.DatagramTransport,
        protocol: _Socket,
        port: int,
        *,
        connected: bool = True,
    ) -> None:
        self._transport = transport
        self._connected = connected
        self._protocol = protocol
        self.server_port = port
        self.port = int(transport.get_extra_info("sockname")[1])
        self.cseq = 0
        self._held: list[Message] = []  # read while waiting for something else
        self.invite: Request | None = None  # the call's INVITE, ours or the server's
        self.answer_to: Response | None = None  # the 2xx that set up our call
        self._calls = itertools.count(1)

    @classmethod
    async def open(cls, server_port: int) -> UdpPhone:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Socket, local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", server_port)
        )
        return cls(transport, protocol, server_port)

    @classmethod
    async def listen(cls) -> UdpPhone:
        """A phone with its port bound before the server it talks to is known (a customer
        reached through a URI in the server's settings); set ``server_port`` later."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Socket, local_addr=("127.0.0.1", 0)
        )
        return cls(transport, protocol, 0, connected=False)

    def send(self, data: bytes | Message) -> None:
        text = data if isinstance(data, bytes) else serialize(data)
        if self._connected:
            self._transport.sendto(text)
        else:
            self._transport.sendto(text, ("127.0.0.1", self.server_port))

    async def wait(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        """The first message (held or new) that ``predicate`` accepts; others are held."""
        for message in self._held:
            if predicate(message):
                self._held.remove(message)
                return message
        async with asyncio.timeout(timeout):
            while True:
                message = parse_message(await self._protocol.datagrams.get())
                if predicate(message):
                    return message
                self._held.append(message)

    async def receive(self, timeout: float = 5.0) -> Response:
        """The next final response."""
        message = await self.wait(lambda m: isinstance(m, Response) and m.status >= 200, timeout)
        assert isinstance(message, Response)
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

    # -- as a caller ----------------------------------------------------------

    def invite_text(self, dnis: str, sdp: str, *, caller: str = "5551234") -> bytes:
        """An INVITE to ``dnis`` (send it again for a retransmission: same branch)."""
        call = next(self._calls)
        body = sdp.encode()
        return (
            f"INVITE sip:{dnis}@127.0.0.1:{self.server_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK-i{next(_branches)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{caller}@127.0.0.1>;tag=c{self.port}-{call}\r\n"
            f"To: <sip:{dnis}@127.0.0.1>\r\n"
            f"Call-ID: call-{call}-{self.port}@127.0.0.1\r\n"
            "CSeq: 1 INVITE\r\n"
            f"Contact: <sip:{caller}@127.0.0.1:{self.port}>\r\n"
            "Content-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def call(self, dnis: str, sdp: str, *, caller: str = "5551234") -> Response:
        """INVITE ``dnis``; the final response (a 2xx is acknowledged)."""
        text = self.invite_text(dnis, sdp, caller=caller)
        invite = parse_message(text)
        assert isinstance(invite, Request)
        self.invite = invite
        self.send(text)
        response = await self.receive()
        if response.status < 300:
            self.answer_to = response
            self.ack()
        else:  # RFC 3261 §17.1.1.3: the ACK of a failure, in the INVITE's transaction
            via, to = invite.headers.get("Via"), response.headers.get("To")
            self.send(
                (
                    f"ACK {invite.uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n"
                    f"From: {invite.headers.get('From')}\r\nTo: {to}\r\n"
                    f"Call-ID: {invite.call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
                ).encode()
            )
        return response

    def ack(self) -> None:
        """The ACK for the 2xx to our INVITE (RFC 3261 §13.2.2.4)."""
        assert self.invite is not None and self.answer_to is not None
        self.send(self._in_dialog("ACK", cseq=1))

    def _in_dialog(self, method: str, *, cseq: int, body: bytes = b"", extra: str = "") -> bytes:
        assert self.invite is not None and self.answer_to is not None
        ours = (
            self.invite.headers.get("From") if self._calling else self.answer_to.headers.get("To")
        )
        theirs = (
            self.answer_to.headers.get("To") if self._calling else self.invite.headers.get("From")
        )
        return (
            f"{method} sip:acd@127.0.0.1:{self.server_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK-d{next(_branches)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: {ours}\r\n"
            f"To: {theirs}\r\n"
            f"Call-ID: {self.invite.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"{extra}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    @property
    def _calling(self) -> bool:
        """Whether we sent the INVITE (else the server did, and we answered)."""
        return self.invite is not None and f"127.0.0.1:{self.port}" in (
            self.invite.headers.get("Via") or ""
        )

    async def hang_up(self) -> Response:
        """BYE in the call's dialog, as caller or callee; its final response."""
        self.send(self._in_dialog("BYE", cseq=2 if self._calling else 9001))
        return await self.receive()

    def press_info(self, digit: str) -> None:
        """A key press as SIP INFO with ``application/dtmf-relay``."""
        body = f"Signal={digit}\r\nDuration=160\r\n".encode()
        extra = "Content-Type: application/dtmf-relay\r\n"
        self.send(self._in_dialog("INFO", cseq=3, body=body, extra=extra))

    # -- as the callee ----------------------------------------------------------

    async def incoming(self, method: str = "INVITE", timeout: float = 5.0) -> Request:
        """The next request ``method`` from the server."""
        message = await self.wait(lambda m: isinstance(m, Request) and m.method == method, timeout)
        assert isinstance(message, Request)
        return message

    def respond(self, request: Request, status: int, *, body: bytes = b"") -> Response:
        headers = [("Contact", f"<sip:agent@127.0.0.1:{self.port}>")] if body else []
        if body:
            headers.append(("Content-Type", "application/sdp"))
        response = response_to(request, status, to_tag=f"a{self.port}", headers=headers, body=body)
        self.send(response)
        return response

    async def answer(self, invite: Request, sdp: str) -> None:
        """Ring, then answer with ``sdp``; wait for the server's ACK."""
        self.invite = invite
        self.respond(invite, 180)
        self.answer_to = self.respond(invite, 200, body=sdp.encode())
        await self.incoming("ACK")

    def close(self) -> None:
        self._transport.close()
