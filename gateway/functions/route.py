"""The in-call function door: ``POST /functions/{integration}/{function}[/{tenant}]``.

find integration, function and tenant -> size limit -> verify with the integration's
``webhook.verify`` (fail closed: 401) -> parse (a JSON object) -> the engine -> its answer.
Served as plain ASGI, like the webhooks (gateway/replies.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.datastructures import URL
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from gateway.config.model import DEFAULT_MAX_BODY, DEFAULT_TENANT, Config
from gateway.counters import Counters
from gateway.credentials.secrets import SecretSource, tenant_shares
from gateway.functions.engine import FunctionEngine, Request
from gateway.outbound.verification_keys import VerificationKeys, verify_request
from gateway.replies import (
    BodyTooLarge,
    Reply,
    error_reply,
    media_type,
    query_pairs,
    read_body,
    route_path,
)
from gateway.verify.verifier import VerificationFailed, WebhookRequest

log = logging.getLogger("gateway.functions.route")

PREFIX = "/functions/"


class FunctionRoute:
    """The ASGI app for every path under ``/functions/`` (mounted ahead of Starlette)."""

    def __init__(
        self,
        config: Config,
        engine: FunctionEngine,
        secrets: SecretSource,
        *,
        public_url: str | None,
        counters: Counters | None = None,
        keys: VerificationKeys | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.keys = keys  # fetches the keys of verifiers whose keys are fetched
        self.secrets = secrets
        self.public_url = public_url
        self.counters = counters if counters is not None else Counters()

    def _url(self, scope: Scope) -> str:
        url = URL(scope=scope)
        if self.public_url:
            return self.public_url + url.path + (f"?{url.query}" if url.query else "")
        return str(url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = route_path(scope)[len(PREFIX) :].split("/")
        try:
            reply = await self.handle(scope, receive, parts)
        except ClientDisconnect:
            return
        except Exception as exc:
            log.error("unhandled error", exc_info=exc)
            reply = error_reply(500, "internal error")
        await reply.send(send)

    async def handle(self, scope: Scope, receive: Receive, parts: list[str]) -> Reply:
        """The reply to a request under ``/functions/{integration}/{function}[/{tenant}]``."""
        if len(parts) not in (2, 3) or not all(parts):
            return error_reply(404, "not found: expected /functions/{integration}/{function}")
        name, function_name = parts[0], parts[1]
        tenant = parts[2] if len(parts) == 3 else DEFAULT_TENANT
        integration = self.config.integrations.get(name)
        function = integration.functions.get(function_name) if integration else None
        if integration is None or function is None:
            return error_reply(404, f"no function '{function_name}' of integration '{name}'")
        webhook = integration.webhook
        if webhook is None:  # lint refuses functions without webhook.verify
            return error_reply(404, f"integration '{name}' verifies no requests")
        shared = await tenant_shares(self.config, self.secrets, tenant, name)
        if shared is None:
            return error_reply(404, f"unknown tenant '{tenant}' for integration '{name}'")
        method: str = scope["method"]
        if method != "POST":
            refused = error_reply(405, f"{method} is not accepted here: use POST")
            return refused._replace(headers=((b"allow", b"POST"),))
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        limit = webhook.max_body or DEFAULT_MAX_BODY
        try:
            body = await read_body(receive, limit, headers.get("content-length"))
        except BodyTooLarge:
            return error_reply(413, f"body larger than {limit} bytes")
        url = self._url(scope) if webhook.needs_url else ""
        incoming = WebhookRequest(method, url, headers, query_pairs(scope["query_string"]), body)
        secrets = self.secrets.cached(tenant, name, shared) or await self.secrets.lookup(
            tenant, name, shared
        )
        try:
            await verify_request(
                self.keys, name, tenant, webhook.verifier, incoming, secrets, time.time()
            )
        except VerificationFailed as failed:
            log.info("rejected function call %s.%s/%s: %s", name, function_name, tenant, failed)
            self.counters.function_calls[(name, function_name, "rejected")] += 1
            return error_reply(401, "verification failed", "invalid_signature")
        try:
            payload: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            return error_reply(400, "body is not valid JSON", "invalid_body")
        if not isinstance(payload, dict):
            return error_reply(400, "body is not a JSON object", "invalid_body")
        call = await self.engine.invoke(
            function, Request(name, function_name, tenant, payload, body)
        )
        return Reply(
            call.status,
            call.answer.encode(),
            media_type(call.content_type),
            ((b"x-gateway-function-call", call.id.encode()),),
        )
