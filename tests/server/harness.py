"""A real server on a loopback port, and real HTTP and WebSocket clients for it.

``running(...)`` starts the FastAPI app under uvicorn inside the test's event
loop, on a free port, against the database URL given, and stops it after.
``Desk`` is a WebSocket desktop that keeps every message it receives.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websockets
import yaml

from api.app import create_app
from api.auth import Role, issue
from api.settings import Settings

SECRET = "test-secret-key-that-is-long-enough-for-hs256"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token(role: str, agent: str | None = None, teams: tuple[str, ...] = ()) -> str:
    return issue(SECRET, Role(role), agent_id=agent, teams=frozenset(teams))


class Running:
    uvicorn: uvicorn.Server
    serving: asyncio.Task[None]

    def __init__(self, base: str, settings: Settings, app: Any) -> None:
        self.base = base
        self.settings = settings
        self.app = app
        self.admin = httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token('admin')}"}, timeout=10
        )

    @property
    def server(self) -> Any:
        return self.app.state.server

    async def stop(self) -> None:
        """Stop the server now, before the block ends (as SIGTERM would, without the drain)."""
        self.uvicorn.should_exit = True
        await asyncio.wait_for(asyncio.shield(self.serving), 20)

    def client(self, bearer: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base, headers={"Authorization": f"Bearer {bearer}"}, timeout=10
        )

    def ws_url(self, **query: Any) -> str:
        url = self.base.replace("http://", "ws://") + "/v1/ws"
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        return url


def settings_for(
    database_url: str, tmp_path: Path, config: dict[str, Any] | None, **more: Any
) -> Settings:
    config_path = None
    if config is not None:
        config_path = tmp_path / "centre.yaml"
        config_path.write_text(yaml.safe_dump(config))
    return Settings(
        host="127.0.0.1",
        port=free_port(),
        database_url=database_url,
        config=config_path,
        spool_path=tmp_path / "acd.spool",
        jwt_secret=SECRET,
        drain_seconds=2,
        **more,
    )


@asynccontextmanager
async def running(
    database_url: str, tmp_path: Path, config: dict[str, Any] | None = None, **settings_more: Any
) -> AsyncIterator[Running]:
    """The app under uvicorn; ``settings_more`` sets more settings (``sip_port=0``: SIP too)."""
    settings = settings_for(database_url, tmp_path, config, **settings_more)
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on"
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    running = Running(f"http://127.0.0.1:{settings.port}", settings, app)
    running.uvicorn, running.serving = server, task
    try:
        yield running
    finally:
        await running.admin.aclose()
        await running.stop()


class Desk:
    """An agent's (or supervisor's) desktop on the CTI WebSocket."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.messages: list[dict[str, Any]] = []
        self.replies: dict[str, dict[str, Any]] = {}
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self._ids = 0

    @classmethod
    async def open(cls, url: str, bearer: str) -> Desk:
        socket = await websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {bearer}"}
        )
        return cls(socket)

    async def _read(self) -> None:
        try:
            async for text in self.socket:
                message = json.loads(text)
                async with self._arrived:
                    if "reply_to" in message:
                        self.replies[message["reply_to"]] = message
                    else:
                        self.messages.append(message)
                    self._arrived.notify_all()
        except websockets.ConnectionClosed:
            pass

    async def command(self, command: str, **args: Any) -> dict[str, Any]:
        self._ids += 1
        command_id = f"cmd-{self._ids}-{command}"
        await self.socket.send(json.dumps({"id": command_id, "command": command, "args": args}))
        return await self.reply(command_id)

    async def reply(self, command_id: str, timeout: float = 10) -> dict[str, Any]:
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: command_id in self.replies), timeout
            )
        return self.replies[command_id]

    async def wait_for(self, predicate: Any, timeout: float = 10) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((m for m in self.messages if predicate(m)), None)

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: found() is not None), timeout)
        result = found()
        assert result is not None
        return result

    def events(self) -> list[dict[str, Any]]:
        return [
            m for m in self.messages if isinstance(m.get("seq"), int) and m["type"] != "snapshot"
        ]

    async def close(self) -> None:
        await self.socket.close()
        await self._reader


def is_offer(agent: str) -> Any:
    return lambda m: (
        m["type"] == "reservation.state_changed"
        and m["data"]["agent_id"] == agent
        and m["data"]["to_state"] == "pending"
    )


def start_process(
    tmp_path: Path, url: str, port: int, config: dict[str, Any], drain_seconds: float = 2
) -> subprocess.Popen[bytes]:
    """``acd serve`` as a real process; its log in ``tmp_path/server-<port>.log``."""
    settings_for(url, tmp_path, config)  # writes centre.yaml
    env = {
        **os.environ,
        "ACD_JWT_SECRET": SECRET,
        "ACD_SPOOL_PATH": str(tmp_path / "acd.spool"),
        "ACD_DRAIN_SECONDS": str(drain_seconds),
    }
    command = [sys.executable, "-m", "acd.cli", "serve", "--config", str(tmp_path / "centre.yaml")]
    return subprocess.Popen(
        [*command, "--port", str(port), "--database-url", url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / f"server-{port}.log").open("wb"),
    )


async def until_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(300):
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("server did not become ready")
