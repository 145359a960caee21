"""The sandbox application: provider paths answered from rules, a control API under /_sandbox.

Every path outside ``/_sandbox`` belongs to the stand-in providers; their prefixes
(``/twilio``, ``/calcom``, ...) are just part of the path the rules match, so one sandbox
serves them all. The control API:

- ``GET /_sandbox/health``
- ``GET /_sandbox/requests?path_prefix=/twilio&method=POST&after=SEQ`` -> ``{"requests": [...]}``
- ``DELETE /_sandbox/requests`` -> forget the recorded requests
- ``GET /_sandbox/rules`` -> the rules in matching order, with the answers each has left
- ``POST /_sandbox/rules`` (a JSON list of rules, or one) -> added ahead of the others;
  ``?at=end`` appends them instead
- ``DELETE /_sandbox/rules`` -> back to the loaded rules
- ``POST /_sandbox/reset`` -> both of the above
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.sandbox.loading import parse_rules
from gateway.sandbox.provider import serve_provider
from gateway.sandbox.rules import ResponseRule, RuleError
from gateway.sandbox.state import RuleLike, Sandbox
from gateway.web.error_handlers import error_response, http_exception

__all__ = ["CONTROL_PREFIX", "Sandbox", "SandboxApp", "create_sandbox_app"]

CONTROL_PREFIX = "/_sandbox"


class SandboxApp(Starlette):
    """A Starlette app for the control API that hands provider paths to the raw handler."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(
            routes=_control_routes(sandbox), exception_handlers={HTTPException: http_exception}
        )
        self.sandbox = sandbox
        self.state.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _is_control(scope["path"]):
            await serve_provider(self.sandbox, scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_sandbox_app(
    responses: Iterable[RuleLike] | None = None,
    *,
    default_status: int = 200,
    record_limit: int | None = 10_000,
) -> SandboxApp:
    """The sandbox app answering from ``responses``; its state is ``app.sandbox``.

    Unmatched requests get ``default_status`` with ``{}`` (or a JSON error from 400 up).
    """
    sandbox = Sandbox(responses or (), default_status=default_status, record_limit=record_limit)
    return SandboxApp(sandbox)


def _is_control(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def _rule_entry(rule: ResponseRule, remaining: int | None) -> dict[str, object]:
    return {**rule.to_dict(), "remaining": remaining}


def _control_routes(sandbox: Sandbox) -> list[Route]:
    async def health(_request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "rules": len(sandbox.rules()), "requests": len(sandbox.requests())}
        )

    async def list_requests(request: Request) -> Response:
        params = request.query_params
        try:
            after = int(params.get("after", "0"))
        except ValueError:
            return error_response(400, "after: expected a sequence number")
        found = sandbox.requests(params.get("path_prefix"), params.get("method"), after)
        return JSONResponse({"requests": [r.to_dict() for r in found]})

    async def clear_requests(_request: Request) -> Response:
        return JSONResponse({"cleared": sandbox.clear_requests()})

    async def list_rules(_request: Request) -> Response:
        return JSONResponse({"rules": [_rule_entry(r, left) for r, left in sandbox.rules()]})

    async def add_rules(request: Request) -> Response:
        try:
            data = json.loads(await request.body())
        except ValueError:
            return error_response(400, "expected a JSON list of rules")
        if isinstance(data, dict) and "rules" not in data:
            data = [data]
        try:
            rules = parse_rules(data, "request body")
        except RuleError as exc:
            return error_response(400, str(exc), "bad_rule")
        sandbox.add_rules(rules, first=request.query_params.get("at") != "end")
        return JSONResponse({"added": len(rules)}, status_code=201)

    async def reset_rules(_request: Request) -> Response:
        sandbox.reset_rules()
        return JSONResponse({"rules": len(sandbox.rules())})

    async def reset(_request: Request) -> Response:
        sandbox.reset()
        return JSONResponse({"rules": len(sandbox.rules()), "requests": 0})

    p = CONTROL_PREFIX
    return [
        Route(f"{p}/health", health, methods=["GET"]),
        Route(f"{p}/requests", list_requests, methods=["GET"]),
        Route(f"{p}/requests", clear_requests, methods=["DELETE"]),
        Route(f"{p}/rules", list_rules, methods=["GET"]),
        Route(f"{p}/rules", add_rules, methods=["POST"]),
        Route(f"{p}/rules", reset_rules, methods=["DELETE"]),
        Route(f"{p}/reset", reset, methods=["POST"]),
    ]
