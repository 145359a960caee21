"""The front door: ``/webhooks/{integration}[/{tenant}]``.

find integration and tenant -> size limit -> handshake? -> verify (fail closed) -> parse ->
split -> id/type -> durable insert through the group-commit writer -> 200 accepted|duplicate.
An event whose id or type expression fails on a genuine request is stored all the same
(deduplicated by a hash of its bytes): nothing verified is dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import TemplateError
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from gateway.config import DEFAULT_TENANT, Config, Handshake, Integration, Webhook
from gateway.credentials import SecretLookup, SecretSource
from gateway.errors import error_response
from gateway.expressions import Expression
from gateway.ids import new_id
from gateway.store.base import NewEvent
from gateway.store.writer import EventWriter
from gateway.verify.base import VerificationFailed, WebhookRequest

log = logging.getLogger("gateway.ingress")

MASK = "**********"
# Never stored: they carry credentials. A token scheme's own header is added per integration.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


class BodyTooLarge(Exception):
    pass


def _query(raw: bytes) -> list[tuple[str, str]]:
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True) if raw else []


async def read_body(request: Request, limit: int, declared: str | None) -> bytes:
    """The body, never more than `limit` bytes read, whatever Content-Length claims."""
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _evaluate(expression: Expression | None, variables: Mapping[str, Any]) -> Any:
    if expression is None:
        return None
    try:
        return expression.render(variables)
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        log.warning("expression %r failed on a verified event: %s", expression.source, exc)
        return None


def _parse(webhook: Webhook, body: bytes, form: list[tuple[str, str]]) -> Any:
    if webhook.format == "form":
        return dict(form)
    if webhook.format == "empty" or not body.strip():
        return {}
    return json.loads(body)


class Ingress:
    def __init__(
        self,
        config: Config,
        writer: EventWriter,
        secrets: SecretSource,
        *,
        public_url: str | None,
        known_tenants: set[str],
    ) -> None:
        self.config = config
        self.writer = writer
        self.secrets = secrets
        self.public_url = public_url
        self.known_tenants = known_tenants
        self._dropped_headers = {
            name: _SECRET_HEADERS | _token_headers(integration)
            for name, integration in config.integrations.items()
        }

    def _tenant_ok(self, tenant: str, integration: str) -> bool:
        if tenant == DEFAULT_TENANT:
            return True
        declared = self.config.tenants.get(tenant)
        if declared is not None:
            return declared.uses(integration)
        return tenant in self.known_tenants

    def _url(self, request: Request) -> str:
        if self.public_url:
            query = request.url.query
            return self.public_url + request.url.path + (f"?{query}" if query else "")
        return str(request.url)

    async def handle(self, request: Request) -> Response:
        name = request.path_params["integration"]
        tenant = request.path_params.get("tenant", DEFAULT_TENANT)
        integration = self.config.integrations.get(name)
        if integration is None or integration.webhook is None:
            return error_response(404, f"no integration '{name}' receives webhooks here")
        if not self._tenant_ok(tenant, name):
            return error_response(404, f"unknown tenant '{tenant}' for integration '{name}'")
        webhook = integration.webhook
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
        try:
            body = await read_body(request, webhook.max_body, headers.get("content-length"))
        except BodyTooLarge:
            return error_response(413, f"body larger than {webhook.max_body} bytes")
        content_type = headers.get("content-type", "")
        form = (
            parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            if content_type.startswith("application/x-www-form-urlencoded")
            else []
        )
        incoming = WebhookRequest(
            method=request.method,
            url=self._url(request) if webhook.needs_url else "",
            headers=headers,
            query=_query(request.scope["query_string"]),
            body=body,
            form=form,
        )
        secrets = await self.secrets.lookup(tenant, name)
        for handshake in webhook.handshakes:
            if _matches(handshake, incoming):
                return self._handshake(integration, handshake, incoming, secrets)
        if request.method != "POST":
            return error_response(405, f"{request.method} is not accepted here: use POST")
        try:
            webhook.verifier.verify(incoming, secrets, time.time())
        except VerificationFailed as failed:
            log.info("rejected webhook for %s/%s: %s", name, tenant, failed.reason)
            return error_response(401, f"verification failed: {failed.reason}", "invalid_signature")
        try:
            payload = _parse(webhook, body, form)
        except (ValueError, RecursionError):
            return error_response(400, "body is not valid JSON", "invalid_body")
        if webhook.secret_body_path:  # the token is the secret: never stored
            payload = _masked(payload, webhook.secret_body_path.split("."))
            incoming = replace(incoming, body=json.dumps(payload).encode())
        return await self._store(integration, tenant, incoming, payload)

    def _handshake(
        self,
        integration: Integration,
        handshake: Handshake,
        incoming: WebhookRequest,
        secrets: SecretLookup,
    ) -> Response:
        assert integration.webhook is not None
        if handshake.token_query is not None:
            given = dict(incoming.query).get(handshake.token_query, "")
            expected = secrets(handshake.token_secret)
            if not expected or not any(
                hmac.compare_digest(given.encode(), e.encode()) for e in expected
            ):
                return error_response(401, "handshake token does not match", "invalid_token")
        if handshake.verified:
            try:
                integration.webhook.verifier.verify(incoming, secrets, time.time())
            except VerificationFailed as failed:
                return error_response(
                    401, f"verification failed: {failed.reason}", "invalid_signature"
                )
        variables = {
            "query": dict(incoming.query),
            "headers": dict(incoming.headers),
            "integration": integration.name,
        }
        text = _evaluate(handshake.body, variables) if handshake.body else ""
        return PlainTextResponse(
            "" if text is None else str(text),
            status_code=handshake.status,
            media_type=handshake.content_type,
            headers={"x-content-type-options": "nosniff"},
        )

    async def _store(
        self, integration: Integration, tenant: str, incoming: WebhookRequest, payload: Any
    ) -> Response:
        webhook = integration.webhook
        assert webhook is not None
        variables: dict[str, Any] = {
            "body": payload,
            "headers": incoming.headers,
            "query": dict(incoming.query),
            "integration": integration.name,
            "tenant": tenant,
        }
        items: list[Any] = [payload]
        split = webhook.split is not None
        if split:
            found = _evaluate(webhook.split, variables)
            items = found if isinstance(found, list) else [payload]
            split = isinstance(found, list)
        dropped = self._dropped_headers[integration.name]
        kept = json.dumps(
            {
                k: v
                for k, v in incoming.headers.items()
                if k not in dropped and not k.startswith("x-gateway-")  # only the gateway marks
            }
        )
        now = time.time()
        events = []
        for item in items:
            item_vars = {**variables, "body": item} if split else variables
            raw = json.dumps(item, separators=(",", ":")).encode() if split else incoming.body
            provider_id = _evaluate(webhook.event_id, item_vars)
            event_type = _evaluate(webhook.event_type, item_vars)
            provider_id = _text(provider_id)
            dedup = provider_id or "sha256:" + hashlib.sha256(raw).hexdigest()
            events.append(
                NewEvent(
                    id=new_id("evt"),
                    integration=integration.name,
                    tenant=tenant,
                    dedup_key=dedup,
                    provider_id=provider_id,
                    type=_text(event_type),
                    received_at=now,
                    headers=kept,
                    body=raw,
                )
            )
        if not events:
            return JSONResponse({"status": "accepted", "event_id": None, "events": []})
        results = await self.writer.submit(events)
        if webhook.respond is not None:
            return Response(
                webhook.respond.get("body", ""),
                status_code=int(webhook.respond.get("status", 200)),
                media_type=webhook.respond.get("content_type", "text/plain; charset=utf-8"),
                headers={"x-gateway-event-id": results[0].event_id},
            )
        status = "duplicate" if all(r.duplicate for r in results) else "accepted"
        if not split:  # the common case, written without the JSON encoder (ids are [a-z0-9_])
            return Response(
                f'{{"status":"{status}","event_id":"{results[0].event_id}"}}',
                media_type="application/json",
            )
        each = [
            {"event_id": r.event_id, "status": "duplicate" if r.duplicate else "accepted"}
            for r in results
        ]
        return JSONResponse({"status": status, "event_id": results[0].event_id, "events": each})


def _masked(value: Any, path: list[str]) -> Any:
    """A copy of `value` with what `path` (dotted, [*] for every item) points at masked."""
    if not path:
        return MASK
    head, rest = path[0], path[1:]
    key, each = head.removesuffix("[*]"), head.endswith("[*]")
    if not isinstance(value, dict) or key not in value:
        return value
    inner = value[key]
    if each and isinstance(inner, list):
        replaced: Any = [_masked(item, rest) for item in inner]
    else:
        replaced = _masked(inner, rest)
    return {**value, key: replaced}


def _text(value: Any) -> str | None:
    """An id or type as storable text: JSON may carry lone surrogates UTF-8 cannot hold."""
    if value in (None, ""):
        return None
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _matches(handshake: Handshake, incoming: WebhookRequest) -> bool:
    if handshake.method != incoming.method:
        return False
    query = dict(incoming.query)
    for key, expected in handshake.query.items():
        if (key in query) != (expected is not False):
            return False
        if isinstance(expected, str) and query[key] != expected:
            return False
    return all(incoming.headers.get(k) == v for k, v in handshake.headers.items())


def _token_headers(integration: Integration) -> frozenset[str]:
    webhook = integration.webhook
    if webhook is None or webhook.verify_spec.get("scheme") != "token":
        return frozenset()
    header = webhook.verify_spec.get("header")
    return frozenset({str(header).lower()}) if header else frozenset()
