"""Every RFC 4475 torture message, sent as it is to the running server over UDP.

Each gets the class of answer its section asks for, and the server serves
on: an OPTIONS afterwards is still answered 200. Responses go where RFC 3261
§18.2.2 sends them: to the source address and the port of the top Via (5060
when it names none), or, for what could not be parsed, straight back to the
source; so the test listens on every such port.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from server.harness import running

from ivr.sip import ParseError, Request, parse_message
from sip_server.phone import UdpPhone

CORPUS = Path(__file__).resolve().parent.parent / "data" / "sip" / "rfc4475"
CENTRE: dict[str, Any] = {"queues": [{"id": "sales"}], "agents": []}

VALID = {  # §3.1.1: parsed as well-formed, so never refused as malformed (400)
    "wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "dblreq",
    "semiuri", "transports", "mpart01", "unreason", "noreason",
}  # fmt: skip
INVALID = {  # §3.1.2: refused (4xx or 5xx), or dropped when no response can be built
    "badinv01", "clerr", "ncl", "scalar02", "scalarlg", "quotbal", "ltgtruri", "lwsruri",
    "lwsstart", "trws", "escruri", "baddate", "regbadct", "badaspec", "baddn", "badvers",
    "mismatch01", "mismatch02", "bigcode",
}  # fmt: skip
APPLICATION = {  # §3.3: the answer the section names
    "unkscm": {416}, "novelsc": {416}, "bext01": {420}, "invut": {415}, "sdp01": {406, 400},
    "insuf": {400}, "multi01": {400}, "mcl01": {400}, "unksm2": {400, 416},
}  # fmt: skip


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append(data)


def _corpus() -> dict[str, bytes]:
    return {path.stem: path.read_bytes() for path in sorted(CORPUS.glob("*.dat"))}


def _via_port(data: bytes) -> int | None:
    try:
        message = parse_message(data)
    except ParseError:
        return None
    via = message.top_via
    return None if via is None else (via.port or 5060)


async def test_every_torture_message_gets_the_answer_its_section_asks_for(
    database_url: str, tmp_path: Path
) -> None:
    corpus = _corpus()
    assert len(corpus) == 49
    loop = asyncio.get_running_loop()
    listeners: dict[int, _Inbox] = {}
    transports: list[asyncio.BaseTransport] = []
    try:
        for port in sorted({p for d in corpus.values() if (p := _via_port(d)) is not None}):
            try:
                transport, inbox = await loop.create_datagram_endpoint(
                    _Inbox, local_addr=("127.0.0.1", port), family=socket.AF_INET
                )
            except OSError as error:
                pytest.fail(f"cannot listen on 127.0.0.1:{port} for the responses: {error}")
            listeners[port] = inbox
            transports.append(transport)
        async with running(database_url, tmp_path, CENTRE, sip_port=0) as centre:
            server_port = centre.server.switchboard.port
            answers: dict[str, list[int]] = {}
            for name, data in corpus.items():
                sender, inbox = await loop.create_datagram_endpoint(
                    _Inbox, local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", server_port)
                )
                transports.append(sender)
                for box in listeners.values():
                    box.got.clear()
                sender.sendto(data)
                await asyncio.sleep(0.15)
                statuses = []
                for raw in inbox.got + [d for box in listeners.values() for d in box.got]:
                    status = _status(raw)
                    if status >= 200:
                        statuses.append(status)
                answers[name] = statuses
            phone = await UdpPhone.open(server_port)
            try:
                assert (await phone.request("OPTIONS", "probe")).status == 200, "still serving"
            finally:
                phone.close()
    finally:
        for transport in transports:
            transport.close()
    wrong = {n: s for n, s in answers.items() if not _as_asked(n, s, corpus[n])}
    assert not wrong, f"answers not as RFC 4475 asks: {wrong}"


def _status(raw: bytes) -> int:
    """The status of a response (its headers may echo what the request had wrong)."""
    version, code, _ = raw.split(b"\r\n", 1)[0].split(b" ", 2)
    assert version == b"SIP/2.0", raw[:80]
    return int(code)


def _as_asked(name: str, statuses: list[int], data: bytes) -> bool:
    if name in INVALID:
        return all(s >= 400 for s in statuses)
    if name in APPLICATION:
        return bool(set(statuses) & APPLICATION[name])
    if name in VALID:
        if any(s == 400 or (s >= 500 and s != 501) for s in statuses):
            return False  # 501: an unknown method (esc02, intmeth: §3.1.1.4, §3.1.1.5)
        request = isinstance(parse_message(data), Request)
        return bool(statuses) or not request  # a valid request must be answered
    return True  # §3.2 and §3.4 and the rest: any answer, as long as the server serves on
