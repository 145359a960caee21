"""The outbound HTTP engine: one pooled httpx client; per integration a rate limiter, a
circuit breaker, authentication and a retry policy, all built from the integration's
compiled ``api`` section (`gateway.config.api.Api`). With a shared database (PostgreSQL) the
limiter and breaker are the ones every replica agrees on (shared_ratelimit, shared_breaker).

`OutboundClient.call` makes ONE attempt and either returns an `OutboundResult` or raises a
`RetryableError` (its subclasses `CircuitOpenError` and `RateLimitedError` included) or a
`PermanentError`. Rescheduling is the job queue's: `retry_policy(...)` and
`classify.retry_delay` say when. The one retry made here is after a 401 with OAuth2, with a
freshly fetched token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.config.api import Api, Endpoint, RetryPolicy
from gateway.config.model import Config
from gateway.credentials.secrets import SecretSource
from gateway.outbound.aiohttp_transport import AiohttpTransport
from gateway.outbound.auth import Auth, build_auth
from gateway.outbound.breaker import Breaker, CircuitBreaker, Outcome
from gateway.outbound.classify import classify_exception, classify_response
from gateway.outbound.failures import PermanentError, RequestBuildError, RetryableError
from gateway.outbound.ratelimit import Limiter, RateLimiter
from gateway.outbound.redactor import Redactor
from gateway.outbound.request import build_request, find_endpoint
from gateway.outbound.shared_breaker import SharedBreaker
from gateway.outbound.shared_ratelimit import SharedRateLimiter
from gateway.outbound.tokens import TokenStore
from gateway.store.interfaces import Coordination

log = logging.getLogger("gateway.outbound")

DEFAULT_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=8)
_REASON_SNIPPET = 200


@dataclass(frozen=True, slots=True)
class OutboundResult:
    """A successful answer (2xx, or one of the endpoint's `ok_status`). `elapsed`: seconds
    of HTTP exchange; `waited`: seconds spent waiting for the rate limiter first."""

    status: int
    headers: httpx.Headers
    content: bytes = field(repr=False)
    elapsed: float
    waited: float = 0.0
    endpoint: str = ""
    # masks the secrets the call used (its Redactor's): for showing the answer anywhere
    redact: Callable[[str], str] = field(default=str, repr=False, compare=False)

    @property
    def text(self) -> str:
        charset = self.headers.get("content-type", "").partition("charset=")[2].strip()
        return self.content.decode(charset or "utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (None for an empty body)."""
        return json.loads(self.content) if self.content.strip() else None


@dataclass(frozen=True, slots=True)
class _Integration:
    api: Api
    auth: Auth
    limiter: Limiter
    breaker: Breaker

    @property
    def policy(self) -> RetryPolicy:
        return self.api.retry


def _copy(request: httpx.Request) -> httpx.Request:
    return httpx.Request(
        request.method,
        request.url,
        headers=request.headers.copy(),
        content=request.content,
        extensions=dict(request.extensions),
    )


class OutboundClient:
    def __init__(
        self,
        config: Config,
        secrets: SecretSource,
        tokens: TokenStore,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
        limits: httpx.Limits = DEFAULT_LIMITS,
        shared: Coordination | None = None,
    ) -> None:
        """`shared`: the state replicas agree on (PostgreSQL); then rate limits and circuit
        breakers hold across every replica on the database, else in this process."""
        self._config = config
        self._secrets = secrets
        self._tokens = tokens
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._shared = shared
        # aiohttp's pool unless one is injected (tests): calls go straight to the transport
        # (`_send`), OAuth token requests through the client; both leave by `_transport`.
        self._transport = transport or AiohttpTransport(limit=limits.max_connections or 200)
        self._http = httpx.AsyncClient(
            transport=self._transport,
            limits=limits,
            follow_redirects=False,
            trust_env=False,  # the aiohttp transport reads HTTP(S)_PROXY itself
        )
        self._integrations: dict[str, _Integration] = {}

    def __repr__(self) -> str:
        return f"OutboundClient({len(self._integrations)} integrations in use)"

    async def __aenter__(self) -> OutboundClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _integration(self, name: str) -> _Integration:
        found = self._integrations.get(name)
        if found is not None:
            return found
        integration = self._config.integrations.get(name)
        if integration is None:
            raise PermanentError(f"unknown integration {name!r}")
        api = integration.api
        if api is None:
            raise RequestBuildError(f"integration {name} declares no api section")
        found = _Integration(
            api=api,
            auth=build_auth(
                name,
                api.auth,
                tokens=self._tokens,
                send=self._http.send,
                timeout=api.timeout,
                wall_clock=self._wall_clock,
            ),
            limiter=self._limiter(name, api),
            breaker=self._breaker(name, api),
        )
        self._integrations[name] = found
        return found

    def _limiter(self, name: str, api: Api) -> Limiter:
        if self._shared is None:
            return RateLimiter.from_policy(api.rate_limit, clock=self._clock, sleep=self._sleep)
        # a slot is held at most for two requests (a 401 retry) and a margin
        lease = 2 * api.timeout + 30.0
        return SharedRateLimiter(
            self._shared, name, api.rate_limit, lease=lease, sleep=self._sleep, clock=self._clock
        )

    def _breaker(self, name: str, api: Api) -> Breaker:
        if self._shared is None:
            return CircuitBreaker.from_policy(api.circuit_breaker, name=name, clock=self._clock)
        return SharedBreaker(self._shared, name, api.circuit_breaker, lease=2 * api.timeout + 30)

    def retry_policy(self, integration: str) -> RetryPolicy:
        """The integration's ``api.retry``: max_attempts and the backoff to reschedule with."""
        return self._integration(integration).policy

    def endpoint(self, integration: str, endpoint: str) -> Endpoint:
        return find_endpoint(self._integration(integration).api, endpoint)

    async def probe(self, integration: str, tenant: str) -> OutboundResult:
        """The integration's ``api.health`` request for `tenant`: through its authentication
        and rate limit, never refused nor counted by its circuit breaker."""
        api = self._integration(integration).api
        endpoint = api.health.endpoint if api.health is not None else "health"
        return await self.call(integration, endpoint, tenant=tenant, breaker=False)

    def health(self) -> dict[str, dict[str, Any]]:
        """{integration: {"breaker": ..., "limiter": ...}} for every integration with an api."""
        return {
            name: {
                "breaker": state.breaker.snapshot(),
                "limiter": state.limiter.snapshot(),
            }
            for name, state in (
                (name, self._integration(name))
                for name, integration in sorted(self._config.integrations.items())
                if integration.api is not None
            )
        }

    async def call(
        self,
        integration: str,
        endpoint: str,
        *,
        tenant: str,
        params: Mapping[str, Any] | None = None,
        query: Any = None,
        body: Any = None,
        headers: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        url: str | None = None,
        breaker: bool = True,
    ) -> OutboundResult:
        """One attempt at calling `endpoint` of `integration` for `tenant`. `url`: an absolute
        URL on the api's host to call instead of the endpoint's path (a next page or delta
        link), with the endpoint's method, headers and authentication. `breaker=False` (the
        health probes): the circuit breaker neither refuses the call nor counts its outcome;
        authentication and the rate limit apply as to any call."""
        state = self._integration(integration)
        target = find_endpoint(state.api, endpoint)
        redactor = Redactor(await self._secrets.lookup(tenant, integration), integration, tenant)
        request = build_request(
            state.api,
            target,
            redactor,
            variables={"tenant": self._config.tenant_variables(tenant)},
            params=params,
            query=query,
            body=body,
            headers=headers,
            idempotency_key=idempotency_key,
            url=url,
        )
        if breaker:
            await state.breaker.ensure_closed()  # fail fast before waiting for the limiter
        started = self._clock()
        permit = await state.limiter.acquire()
        waited = self._clock() - started
        outcome = Outcome.NEUTRAL
        sent = False
        try:
            ticket = await state.breaker.admit() if breaker else None
            try:
                started = self._clock()
                # authentication writes into the request: keep the built one for a retry
                attempt = _copy(request) if state.auth.refreshable else request
                token = await state.auth.apply(attempt, redactor)
                sent = True
                response = await self._send(attempt, target, redactor, state.policy)
                if response.status_code == 401 and state.auth.refreshable:
                    await permit.finish()
                    permit = await state.limiter.acquire()
                    sent = False
                    attempt = _copy(request)
                    await state.auth.apply(attempt, redactor, stale=token)
                    sent = True
                    response = await self._send(attempt, target, redactor, state.policy)
                elapsed = self._clock() - started
                outcome = self._outcome(response, target, redactor, state.policy)
            except _Failed as failed:
                outcome = failed.outcome
                raise failed.error from None
            finally:
                if ticket is not None:
                    await state.breaker.report(ticket, outcome)
        finally:
            await permit.finish(sent=sent)
        log.debug("%s %s -> %d in %.3fs", target.label, tenant, response.status_code, elapsed)
        return OutboundResult(
            response.status_code,
            response.headers,
            response.content,
            elapsed,
            waited,
            target.label,
            redactor.redact,
        )

    async def _send(
        self, request: httpx.Request, endpoint: Endpoint, redactor: Redactor, policy: RetryPolicy
    ) -> httpx.Response:
        try:
            # the transport itself, not the client: no cookie jar, redirects or auth flow to
            # run (the engine does its own), which cost more than the call's own I/O
            response = await self._transport.handle_async_request(request)
            response.request = request
            try:
                await response.aread()
            finally:
                await response.aclose()
            return response
        except httpx.TransportError as exc:
            found = classify_exception(exc, policy)
            reason = redactor.redact(f"{endpoint.label}: {found.kind} error: {type(exc).__name__}")
            detail = redactor.redact(str(exc))
            if detail:
                reason = f"{reason}: {detail}"
            error: RetryableError | PermanentError
            if found.verdict == "retryable":
                error = RetryableError(reason, None, None, kind=found.kind)
            else:
                error = PermanentError(reason)
            raise _Failed(error, found.breaker) from None

    def _outcome(
        self,
        response: httpx.Response,
        endpoint: Endpoint,
        redactor: Redactor,
        policy: RetryPolicy,
    ) -> Outcome:
        """The breaker's verdict on a success; a failed answer raises `_Failed`."""
        found = classify_response(response, policy, ok_status=endpoint.ok_status)
        if found.verdict == "success":
            return found.breaker
        body = redactor.redact(found.body or "")
        reason = f"{endpoint.label}: HTTP {response.status_code} {response.reason_phrase}"
        snippet = " ".join(body[:_REASON_SNIPPET].split())
        if snippet:
            reason = f"{reason}: {snippet}"
        error: RetryableError | PermanentError
        if found.verdict == "retryable":
            error = RetryableError(reason, found.retry_after, found.status, body=body)
        else:
            error = PermanentError(reason, found.status, body)
        raise _Failed(error, found.breaker)


class _Failed(Exception):
    """Carries an error out of the attempt together with the breaker's verdict on it."""

    def __init__(self, error: RetryableError | PermanentError, outcome: Outcome) -> None:
        super().__init__(error.reason)
        self.error = error
        self.outcome = outcome
