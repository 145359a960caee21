"""The sync admin API (bearer GATEWAY_ADMIN_TOKEN, like the rest of /admin/api).

- ``GET /admin/api/syncs?integration=&tenant=&sync=&limit=`` -> ``{"runs": [...], "syncs":
  [...]}``: the sync log, newest first, and every declared sync with its schedule.
- ``POST /admin/api/syncs/{integration}/{sync}/run?tenant=&full=true&wait=true`` -> 202
  ``{"status": "running", "run_id"}`` (the run goes on in the background), or with
  ``wait=true`` 200 and the run's summary; 409 when a run of that sync is already going on;
  404 for a sync that is not declared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config.envsubst import Secret
from gateway.config.model import DEFAULT_TENANT
from gateway.store.interfaces import SyncStore
from gateway.store.sync_model import SyncRunQuery
from gateway.sync.runner import SyncRunner
from gateway.sync.spec import UnknownSync, declared_syncs
from gateway.web.admin_api import guarded, parse_limit
from gateway.web.error_handlers import error_response

MAX_LIMIT = 500
_TRUE = ("1", "true", "yes")


Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


def routes(store: SyncStore, token: Secret | None, runner: SyncRunner, spawn: Spawn) -> list[Route]:
    """`spawn` runs a background run as a task the app cancels when it stops."""

    async def list_syncs(request: Request) -> Response:
        params = request.query_params
        limit = parse_limit(params.get("limit", "50"), MAX_LIMIT)
        if limit is None:
            return error_response(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
        query = SyncRunQuery(
            integration=params.get("integration") or None,
            tenant=params.get("tenant") or None,
            sync=params.get("sync") or None,
            limit=limit,
        )
        runs = [r.summary() for r in await store.list_sync_runs(query)]
        declared = [
            {"integration": s.integration, "sync": s.name, "schedule": str(s.schedule)}
            for s in declared_syncs(runner.config)
        ]
        return JSONResponse({"runs": runs, "syncs": declared})

    async def run_sync(request: Request) -> Response:
        params = request.query_params
        integration = request.path_params["integration"]
        sync = request.path_params["sync"]
        tenant = params.get("tenant") or DEFAULT_TENANT
        full = params.get("full", "").lower() in _TRUE
        try:
            started = await runner.start(integration, sync, tenant, full=full)
        except UnknownSync as exc:
            return error_response(404, str(exc))
        if started is None:
            message = f"a run of {integration}.{sync} for {tenant} is going on"
            return error_response(409, message, "conflict")
        if params.get("wait", "").lower() in _TRUE:
            summary = await runner.execute(started)
            return JSONResponse(summary.summary())
        spawn(runner.execute(started))
        return JSONResponse(
            {"status": "running", "run_id": started.run_id, "tenant": tenant, "full": full},
            status_code=202,
        )

    return [
        Route("/admin/api/syncs", guarded(token, list_syncs), methods=["GET"]),
        Route(
            "/admin/api/syncs/{integration}/{sync}/run",
            guarded(token, run_sync),
            methods=["POST"],
        ),
    ]
