"""The one place where the core's refusals and the server's troubles become HTTP statuses.

Every error body is ``{"error_id", "message", "state"}``: ``error_id`` is
stable for clients to branch on; ``state`` is the entity's current state when
that is why the command was refused (a 409).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from acd.errors import CommandRejected
from api.schemas import ErrorBody
from api.server import Unavailable
from cti.softphone import BadCommand

STATUS: dict[str, int] = {
    "unknown_queue": 404,
    "unknown_agent": 404,
    "unknown_call": 404,
    "unknown_customer": 404,
    "unknown_case": 404,
    "no_sip_account": 404,
    "unknown_voicemail": 404,
    "voicemail_audio_missing": 404,
    "forbidden": 403,
    "bad_target": 422,
    "invalid_number": 422,
    "site_required": 422,
    "invalid_config": 422,
    "invalid_report": 422,
}
"""Refusals that are not about the current state; every other refusal is a 409 Conflict."""


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        401: "no token, or a token that is not valid",
        403: "the token's role or agent may not do this",
        404: "no such queue, agent, call, customer, case, SIP account or voicemail",
        409: "the command does not fit the current state (``state`` says which)",
        422: "the request is malformed",
        503: "draining, or the database is needed and unreachable",
    }.items()
}
"""Documented on every route, so clients (and schema checks) know every error's shape."""


def error(status: int, error_id: str, message: str, state: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error_id": error_id, "message": message, "state": state}, status_code=status
    )


def rejected(exc: CommandRejected) -> JSONResponse:
    return error(STATUS.get(exc.error_id, 409), exc.error_id, exc.message, exc.state)


def install(app: FastAPI) -> None:
    @app.exception_handler(CommandRejected)
    async def _rejected(request: Request, exc: CommandRejected) -> JSONResponse:
        return rejected(exc)

    @app.exception_handler(BadCommand)
    async def _bad_command(request: Request, exc: BadCommand) -> JSONResponse:
        return error(422, "bad_request", str(exc))

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        response = error(503, exc.error_id, exc.message)
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()[:10]
        )
        return error(422, "invalid_request", problems or "the request is not valid")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_id = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "bad_method"}
        response = error(exc.status_code, error_id.get(exc.status_code, "error"), str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response
