"""The health of each integration under /admin/api (bearer GATEWAY_ADMIN_TOKEN).

- ``GET /admin/api/integrations`` -> ``{"integrations": [{"name", "status", "tenants":
  [row, ...]}]}``: each integration's worst status across its tenants, and a row per tenant
  (see `gateway.health.prober` for the fields);
- ``GET /admin/api/integrations/{name}`` -> one of those; 404 for an unknown integration.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config.envsubst import Secret
from gateway.health.prober import HealthChecks, summarise
from gateway.web.admin_api import guarded
from gateway.web.error_handlers import error_response


def routes(checks: HealthChecks, token: Secret | None) -> list[Route]:
    async def list_integrations(_request: Request) -> Response:
        return JSONResponse({"integrations": summarise(await checks.report())})

    async def get_integration(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in checks.config.integrations:
            return error_response(404, "no such integration")
        found = [i for i in summarise(await checks.report()) if i["name"] == name]
        return JSONResponse(found[0])

    return [
        Route("/admin/api/integrations", guarded(token, list_integrations), methods=["GET"]),
        Route("/admin/api/integrations/{name}", guarded(token, get_integration), methods=["GET"]),
    ]
