"""The admin API under /admin/api (bearer GATEWAY_ADMIN_TOKEN; off when no token is set)."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.envsubst import Secret
from gateway.errors import error_response
from gateway.store.base import EventQuery, Store, StoredEvent

Endpoint = Callable[[Request], Awaitable[Response]]
MAX_LIMIT = 500


def guarded(token: Secret | None, endpoint: Endpoint) -> Endpoint:
    async def guard(request: Request) -> Response:
        if token is None:
            return error_response(
                404, "the admin API is off: set GATEWAY_ADMIN_TOKEN to turn it on"
            )
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.encode(), token.reveal().encode()
        ):
            return error_response(401, "missing or wrong admin token", "unauthorized")
        return await endpoint(request)

    return guard


def _event_json(event: StoredEvent) -> dict[str, object]:
    detail = event.summary()
    detail["headers"] = event.headers
    try:
        detail["body"] = event.body.decode("utf-8")
        detail["body_encoding"] = "utf-8"
    except UnicodeDecodeError:
        detail["body"] = base64.b64encode(event.body).decode()
        detail["body_encoding"] = "base64"
    return detail


def routes(store: Store, token: Secret | None) -> list[Route]:
    async def list_events(request: Request) -> Response:
        params = request.query_params
        raw_limit = params.get("limit", "50")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            return error_response(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
        query = EventQuery(
            integration=params.get("integration") or None,
            tenant=params.get("tenant") or None,
            type=params.get("type") or None,
            limit=int(raw_limit),
            before=params.get("before") or None,
        )
        events = await store.list_events(query)
        page: dict[str, object] = {"events": [e.summary() for e in events]}
        if len(events) == query.limit:
            page["next_before"] = events[-1].id
        return JSONResponse(page)

    async def get_event(request: Request) -> Response:
        event = await store.get_event(request.path_params["event_id"])
        if event is None:
            return error_response(404, "no such event")
        return JSONResponse(_event_json(event))

    return [
        Route("/admin/api/events", guarded(token, list_events), methods=["GET"]),
        Route("/admin/api/events/{event_id}", guarded(token, get_event), methods=["GET"]),
    ]
