"""The FastAPI application: routes, error mapping, and the server's life in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from api import errors, ws
from api.routes import agents, calls, customers, queues, reports, system, voicemails
from api.server import Server
from api.settings import Settings

DESCRIPTION = """\
The REST side of the ACD: configuration (queues, agents, customers, cases),
calls injected by integrations, the agents' softphone commands, live queue
figures and disaster mode. Every endpoint but `/livez`, `/readyz` and
`/metrics` needs a bearer token (`acd token --role admin`).

Softphone commands accept an `Idempotency-Key` header: a repeated key returns
the first reply. A command that does not fit the current state is refused
with 409 and `{"error_id", "message", "state"}`. The CTI WebSocket is
`/v1/ws` (see the README).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    server = Server(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await server.start(stack)
            yield

    app = FastAPI(
        title="acd",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.server = server
    errors.install(app)
    for module in (system, agents, calls, queues, customers, voicemails, reports):
        app.include_router(module.router)
    app.include_router(ws.router)
    return app
