"""The front door: ``/webhooks/{integration}[/{tenant}]``.

find integration and tenant -> size limit -> handshake? -> verify (fail closed) -> parse ->
split -> id/type -> durable insert through the group-commit writer -> 200 accepted|duplicate.
An event whose id or type expression fails on a genuine request is stored all the same
(deduplicated by a hash of its bytes): nothing verified is dropped.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.datastructures import URL
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from gateway.config.envsubst import SecretRef
from gateway.config.model import DEFAULT_TENANT, Config, Handshake, Integration
from gateway.config.pipeline import Failure, dedup_key, request_variables
from gateway.counters import Counters
from gateway.credentials.secrets import SecretLookup, SecretSource, tenant_shares
from gateway.expr.expressions import RENDER_ERRORS, Expression
from gateway.expr.sealed import Sealed
from gateway.ids import new_id
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
from gateway.store.entities import NewEvent
from gateway.store.writer import EventWriter
from gateway.verify.verifier import VerificationFailed, WebhookRequest

log = logging.getLogger("gateway.ingress.webhooks")

PREFIX = "/webhooks/"
MASK = "**********"
# Never stored: they carry credentials. Each verifier adds the headers its scheme reads a
# token or a signature from (a stored signature is a ready-made replay and lets anyone who can
# read events guess a weak secret offline).
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
# One answer to every request that fails verification, whatever the reason: a caller must not
# learn whether a secret is configured, or which header it got wrong. The reason is logged.
_REJECTED = error_reply(401, "verification failed", "invalid_signature")
_TOKEN_REJECTED = error_reply(401, "verification failed", "invalid_token")


def _evaluate(expression: Expression | None, variables: Mapping[str, Any]) -> Any:
    if expression is None:
        return None
    try:  # a lookup of present keys is answered without Jinja (see Expression.render)
        return expression.render(variables)
    except RENDER_ERRORS as exc:
        log.warning("expression %r failed on a verified event: %s", expression.source, exc)
        return None


class Ingress:
    """The ASGI app for every path under ``/webhooks/`` (mounted ahead of Starlette)."""

    def __init__(
        self,
        config: Config,
        writer: EventWriter,
        secrets: SecretSource,
        *,
        public_url: str | None,
        counters: Counters | None = None,
        keys: VerificationKeys | None = None,
    ) -> None:
        """`keys`: fetches the keys of verifiers whose keys are fetched (the outbound engine's);
        without it their requests fail verification."""
        self.config = config
        self.counters = counters if counters is not None else Counters()
        self.writer = writer
        self.keys = keys
        self.secrets = secrets
        self.public_url = public_url
        self._dropped_headers = {
            name: _SECRET_HEADERS
            | integration.webhook.verifier.secret_headers
            | integration.webhook.verifier.signature_headers
            for name, integration in config.integrations.items()
            if integration.webhook is not None
        }

    def _url(self, scope: Scope) -> str:
        url = URL(scope=scope)
        if self.public_url:
            return self.public_url + url.path + (f"?{url.query}" if url.query else "")
        return str(url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name, slash, tenant = route_path(scope)[len(PREFIX) :].partition("/")
        try:
            reply = await self.handle(scope, receive, name, tenant if slash else DEFAULT_TENANT)
        except ClientDisconnect:
            return  # nothing was stored: the provider will send it again
        except Exception as exc:
            # Caught here, not by Starlette: logged with its trace, answered without it.
            log.error("unhandled error", exc_info=exc)
            reply = error_reply(500, "internal error")
        # An integration this gateway does not have is counted under "": the name is the
        # caller's, and any number of them would make as many series.
        known = name if name in self.config.integrations else ""
        self.counters.webhook_requests[(known, reply.status)] += 1
        await reply.send(send)

    async def handle(self, scope: Scope, receive: Receive, name: str, tenant: str) -> Reply:
        """The reply to a request under ``/webhooks/{name}[/{tenant}]``."""
        if not name or not tenant or "/" in tenant:
            return error_reply(404, "not found")
        integration = self.config.integrations.get(name)
        if integration is None or integration.webhook is None:
            return error_reply(404, f"no integration '{name}' receives webhooks here")
        # The default tenant (the URL without one) is the gateway's own: the shared secrets.
        shared = True
        if tenant != DEFAULT_TENANT:
            shares = await tenant_shares(self.config, self.secrets, tenant, name)
            if shares is None:
                return error_reply(404, f"unknown tenant '{tenant}' for integration '{name}'")
            shared = shares
        webhook = integration.webhook
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await read_body(receive, webhook.max_body, headers.get("content-length"))
        except BodyTooLarge:
            return error_reply(413, f"body larger than {webhook.max_body} bytes")
        form = webhook.pipeline.form_fields(body)  # the declared format decides, not a header
        method: str = scope["method"]
        query: bytes = scope["query_string"]
        url = self._url(scope) if webhook.needs_url else ""
        incoming = WebhookRequest(method, url, headers, query_pairs(query), body, form)
        secrets = self.secrets.cached(tenant, name, shared) or await self.secrets.lookup(
            tenant, name, shared
        )
        parsed: list[Any] = []  # the body, parsed once for the handshakes that read it
        for handshake in webhook.handshakes:
            if _matches(handshake, incoming) and self._when(
                integration, handshake, incoming, parsed
            ):
                return await self._handshake(
                    integration, handshake, incoming, secrets, tenant, parsed
                )
        if method != "POST":
            refused = error_reply(405, f"{method} is not accepted here: use POST")
            return refused._replace(headers=((b"allow", webhook.allow),))
        try:
            await verify_request(
                self.keys, name, tenant, webhook.verifier, incoming, secrets, time.time()
            )
        except VerificationFailed as failed:
            log.info("rejected webhook for %s/%s: %s", name, tenant, failed.reason)
            return _REJECTED
        try:
            # parsed already when a handshake's `when` read it (a large body is parsed once)
            payload = (
                parsed[0] if parsed and parsed[0] is not None else webhook.pipeline.parse(body)
            )
        except (ValueError, RecursionError):
            return error_reply(400, "body is not valid JSON", "invalid_body")
        try:
            secret_path = webhook.verifier.secret_body_path
            if secret_path:  # the token is the secret: never stored
                payload = _masked(payload, secret_path.split("."))
                incoming = incoming._replace(body=_serialised(payload))
            return await self._store(integration, tenant, incoming, payload)
        except TooDeep:
            return error_reply(400, "body nests too deeply to be stored", "invalid_body")

    def _when(
        self,
        integration: Integration,
        handshake: Handshake,
        incoming: WebhookRequest,
        parsed: list[Any],
    ) -> bool:
        """Whether the handshake's `when` holds over the (not yet verified) body: it only
        picks the handshake; a verified one is verified before it answers."""
        if handshake.when is None:
            return True
        assert integration.webhook is not None
        if not parsed:
            try:
                parsed.append(integration.webhook.pipeline.parse(incoming.body))
            except (ValueError, RecursionError):
                parsed.append(None)
        variables = {
            "body": parsed[0],
            "query": dict(incoming.query),
            "headers": dict(incoming.headers),
            "integration": integration.name,
        }
        try:
            return bool(handshake.when.render(variables))
        except RENDER_ERRORS:
            return False

    async def _handshake(
        self,
        integration: Integration,
        handshake: Handshake,
        incoming: WebhookRequest,
        secrets: SecretLookup,
        tenant: str,
        parsed: list[Any],
    ) -> Reply:
        assert integration.webhook is not None
        where = f"{integration.name}/{tenant}"
        if handshake.token_query is not None:
            given = dict(incoming.query).get(handshake.token_query, "")
            expected = secrets(handshake.token_secret)
            if not expected:
                log.info("rejected handshake %s for %s: no token configured", handshake.name, where)
                return _TOKEN_REJECTED
            if not any(hmac.compare_digest(given.encode(), e.encode()) for e in expected):
                log.info("rejected handshake %s for %s: token mismatch", handshake.name, where)
                return _TOKEN_REJECTED
        if handshake.verified:
            try:
                await verify_request(
                    self.keys,
                    integration.name,
                    tenant,
                    integration.webhook.verifier,
                    incoming,
                    secrets,
                    time.time(),
                )
            except VerificationFailed as failed:
                log.info("rejected handshake %s for %s: %s", handshake.name, where, failed.reason)
                return _REJECTED
        variables: dict[str, Any] = {
            "query": dict(incoming.query),
            "headers": dict(incoming.headers),
            "integration": integration.name,
            "tenant": self.config.tenant_variables(tenant),
            "secret": _secret_reader(integration, secrets),
        }
        if handshake.verified:  # only a verified body is answered from
            if not parsed:
                try:
                    parsed.append(integration.webhook.pipeline.parse(incoming.body))
                except (ValueError, RecursionError):
                    return error_reply(400, "body is not valid JSON", "invalid_body")
            variables["body"] = parsed[0]
        text = _evaluate(handshake.body, variables) if handshake.body else ""
        return Reply(
            handshake.status,
            ("" if text is None else str(text)).encode(),
            media_type(handshake.content_type),
            ((b"x-content-type-options", b"nosniff"),),
        )

    async def _store(
        self, integration: Integration, tenant: str, incoming: WebhookRequest, payload: Any
    ) -> Reply:
        webhook = integration.webhook
        assert webhook is not None
        name = integration.name
        variables = request_variables(payload, incoming.headers, dict(incoming.query), name, tenant)
        failures: list[Failure] = []
        batch = webhook.pipeline.items(payload, variables, failures)
        split = batch is not None
        dropped = self._dropped_headers[integration.name]
        kept = orjson.dumps(
            {
                k: v
                for k, v in incoming.headers.items()
                if k not in dropped and not k.startswith("x-gateway-")  # only the gateway marks
            }
        ).decode()
        now = time.time()
        events = []
        for item in batch if batch is not None else (payload,):
            item_vars = {**variables, "body": item} if split else variables
            raw = _serialised(item) if split else incoming.body
            provider_id, event_type = webhook.pipeline.identify(item_vars, failures)
            dedup = dedup_key(provider_id, raw)
            events.append(
                NewEvent(
                    new_id("evt"), name, tenant, dedup, provider_id, event_type, now, kept, raw
                )
            )
        for failure in failures:  # stored all the same: nothing verified is dropped
            log.warning(
                "%s/%s: webhook.%s failed on a verified event: %s",
                name,
                tenant,
                failure.where().removeprefix("webhook."),
                failure.reason,
            )
        if not events:
            return Reply(200, b'{"status":"accepted","event_id":null,"events":[]}')
        results = await self.writer.submit(events)
        for result in results:
            self.counters.webhook_events[(name, "duplicate" if result.duplicate else "stored")] += 1
        if webhook.respond is not None:
            respond = webhook.respond
            text = _evaluate(respond.body, variables) if respond.body is not None else ""
            return Reply(
                respond.status,
                ("" if text is None else str(text)).encode(),
                media_type(respond.content_type),
                ((b"x-gateway-event-id", results[0].event_id.encode()),),
            )
        if not split:  # the common case, written without the JSON encoder (ids are [a-z0-9_])
            (result,) = results
            status = "duplicate" if result.duplicate else "accepted"
            return Reply(200, f'{{"status":"{status}","event_id":"{result.event_id}"}}'.encode())
        status = "duplicate" if all(r.duplicate for r in results) else "accepted"
        each = [
            {"event_id": r.event_id, "status": "duplicate" if r.duplicate else "accepted"}
            for r in results
        ]
        return Reply(
            200, orjson.dumps({"status": status, "event_id": results[0].event_id, "events": each})
        )


class TooDeep(Exception):
    """A verified body that parses but nests deeper than it can be written back."""


def _serialised(value: Any) -> bytes:
    """A parsed value as compact JSON (a split item, a masked body)."""
    try:
        return json.dumps(value, separators=(",", ":")).encode()
    except RecursionError as exc:  # orjson reads 1024 levels; Python writes fewer
        raise TooDeep from exc


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


def _secret_reader(integration: Integration, secrets: SecretLookup) -> Callable[[str], Sealed]:
    """``secret('NAME')`` for a handshake's expressions: one of the integration's own declared
    secrets (``${secret:NAME}`` in its file), sealed; any other name is refused."""

    def secret(name: str) -> Sealed:
        if name not in integration.secret_names:
            raise ValueError(f"secret {name!r} is not one of {integration.name}'s secrets")
        value = secrets.one(SecretRef(name))
        if not value:
            raise ValueError(f"secret {name} is not set")
        return Sealed(value)

    return secret


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
