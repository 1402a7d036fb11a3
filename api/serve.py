"""``acd serve``: uvicorn on uvloop, with a graceful drain on SIGTERM.

The first SIGTERM (or Ctrl-C) does not stop the listener: the server turns
not ready, refuses new calls and logins with a clear 503, tells every desktop
it is draining, and waits for the calls in progress to end, up to
``drain_seconds``. Then it stops. A second signal stops it at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType

import uvicorn

from api import logs
from api.app import create_app
from api.server import Server
from api.settings import Settings

log = logging.getLogger("acd.serve")


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, settings: Settings) -> None:
        super().__init__(config)
        self._settings = settings
        self._drain: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app_server = _server_of(self.config.app)
        if self._drain is not None or app_server is None or not app_server.started:
            super().handle_exit(sig, frame)  # a second signal, or nothing to drain yet
            return
        log.warning("signal %s: draining for up to %ss", sig, self._settings.drain_seconds)
        loop = asyncio.get_running_loop()
        self._drain = loop.create_future()  # marks the drain as begun; the task follows
        loop.call_soon_threadsafe(self._begin_drain, app_server)

    def _begin_drain(self, app_server: Server) -> None:
        self._task = asyncio.get_running_loop().create_task(self._drain_then_exit(app_server))

    async def _drain_then_exit(self, app_server: Server) -> None:
        try:
            await app_server.drain(self._settings.drain_seconds)
        finally:
            self.should_exit = True


def _server_of(app: object) -> Server | None:
    server = getattr(getattr(app, "state", None), "server", None)
    return server if isinstance(server, Server) else None


def serve(settings: Settings) -> None:
    installed = logs.configure(
        settings.log_format, settings.log_level, audit_path=settings.audit_log
    )
    try:
        _run(settings)
    finally:
        installed.close()


def _run(settings: Settings) -> None:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        lifespan="on",
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's records go through ours (api.logs), in the same format
        access_log=False,
        ws_max_size=64 * 1024,
        ws_per_message_deflate=False,  # small JSON frames: compression costs more CPU than it saves
    )
    server = _DrainingServer(config, settings)
    print(
        f"acd serving on http://{settings.host}:{settings.port}\n"
        f"  API docs   http://{settings.host}:{settings.port}/docs\n"
        f"  WebSocket  ws://{settings.host}:{settings.port}/v1/ws?token=...\n"
        f"  Prometheus http://{settings.host}:{settings.port}/metrics\n"
        f"  database   {settings.database_url}",
        flush=True,
    )
    server.run()


__all__ = ["serve", "signal"]
