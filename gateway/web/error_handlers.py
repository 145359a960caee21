"""The HTTP edge for the Starlette routes: every error answered in `errors.error_body`'s shape."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import error_body

log = logging.getLogger("gateway")


def error_response(status: int, message: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code), status_code=status)


async def http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    response = error_response(exc.status_code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def server_error(_request: Request, exc: Exception) -> Response:
    # The one place unexpected errors are caught: logged with their trace, answered without it.
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "internal error")
