"""The CTI WebSocket: a desktop's live feed of events, and its softphone commands.

Authenticated at the handshake (``Authorization: Bearer`` or ``?token=``): a
bad token closes it before it opens. Then one message, either a ``snapshot``
tagged with the ``seq`` it reflects or, with ``resume_from``, nothing but the
missed events replayed; ``resync: true`` on the snapshot says the gap was
older than what is kept. Then every event the caller may see, in order.

Client frames ``{"id", "command", "args"}`` get ``{"reply_to", "ok", "result"
| "error"}``; a malformed frame gets an error reply and the socket stays up.
Closing the socket changes nothing in the centre: the call goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from acd.errors import CommandRejected
from api import audit, softphone
from api.auth import BadToken, Principal
from api.server import Server, Unavailable
from cti.hub import Lagging, Subscription, serialize
from cti.snapshot import snapshot
from cti.softphone import BadCommand
from cti.wire import iso

router = APIRouter()

CLOSE_UNAUTHORIZED = 4401
CLOSE_LAGGING = 4008
MAX_FRAME = 64 * 1024


def _token(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return websocket.query_params.get("token")


@router.websocket("/v1/ws")
async def cti_socket(websocket: WebSocket) -> None:
    server: Server = websocket.app.state.server
    token = _token(websocket)
    try:
        principal = server.tokens.decode(token or "")
    except BadToken as error:
        client = websocket.client
        source = "-" if client is None else f"{client.host}:{client.port}"
        audit.auth_failed(
            audit.Channel.WS, source, "no token" if not token else str(error), path="/v1/ws"
        )
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="a valid bearer token is required")
        return
    resume_raw = websocket.query_params.get("resume_from")
    try:
        resume_from = None if resume_raw is None else int(resume_raw)
    except ValueError:
        await websocket.close(code=1008, reason="resume_from must be a sequence number")
        return
    await websocket.accept()
    audience = softphone.audience_of(principal)
    send_lock = asyncio.Lock()  # the feed and the replies share the socket

    async def send(message: dict[str, Any]) -> None:
        async with send_lock:
            await websocket.send_text(serialize(message))

    async def send_texts(texts: list[str]) -> None:
        async with send_lock:
            for text in texts:
                await websocket.send_text(text)

    sub: Subscription | None = None
    if resume_from is not None:
        sub = server.hub.attach(audience, resume_from, server.runtime.seq)
    if sub is None:
        snap, seq = await server.runtime.inspect(
            lambda engine: snapshot(
                engine, audience, server.visibility, server.pops, list(server.agents)
            )
        )
        sub = server.hub.attach(audience, seq, server.runtime.seq)
        if sub is None:  # more than the ring holds went by in between: very unlikely
            await websocket.close(code=1013, reason="too busy to snapshot; reconnect")
            return
        snap["resync"] = resume_from is not None
        await send(
            {"seq": seq, "type": "snapshot", "at": iso(server.runtime.clock.now()), "data": snap}
        )
    if server.draining:
        await send(server.draining_notice())
    try:
        async with asyncio.TaskGroup() as group:
            feeder = group.create_task(_feed(sub, send_texts))
            await _serve_commands(websocket, server, principal, send)
            feeder.cancel()
    except* (WebSocketDisconnect, Lagging, ConnectionError):
        pass
    finally:
        server.hub.detach(sub)
    if sub.lagging:
        with contextlib.suppress(RuntimeError):  # the socket may be gone already
            await websocket.close(code=CLOSE_LAGGING, reason="too slow: reconnect with resume_from")


async def _feed(sub: Subscription, send_texts: Any) -> None:
    while True:
        await send_texts(await sub.take())


async def _serve_commands(
    websocket: WebSocket, server: Server, principal: Principal, send: Any
) -> None:
    while True:
        text = await websocket.receive_text()
        reply_to: Any = None
        try:
            if len(text) > MAX_FRAME:
                raise BadCommand(f"frame larger than {MAX_FRAME} bytes")
            try:
                frame = json.loads(text)
            except ValueError:
                raise BadCommand("a frame is a JSON object") from None
            if not isinstance(frame, dict):
                raise BadCommand("a frame is a JSON object")
            reply_to = frame.get("id")
            if not isinstance(reply_to, str) or not reply_to or len(reply_to) > 200:
                raise BadCommand("a command needs an 'id' string (at most 200 characters)")
            name = frame.get("command")
            if not isinstance(name, str):
                raise BadCommand("a command needs a 'command' name")
            result = await softphone.run(
                server, principal, name, frame.get("args"), reply_to, audit.Channel.WS
            )
            await send({"reply_to": reply_to, "ok": True, "result": result})
        except (BadCommand, CommandRejected, Unavailable) as error:
            await send({"reply_to": reply_to, "ok": False, "error": _error(error)})


def _error(error: Exception) -> dict[str, Any]:
    if isinstance(error, CommandRejected):
        return {"error_id": error.error_id, "message": error.message, "state": error.state}
    if isinstance(error, Unavailable):
        return {"error_id": error.error_id, "message": error.message, "state": None}
    return {"error_id": "bad_request", "message": str(error), "state": None}
