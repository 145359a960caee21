"""An integration's ``api`` section, compiled once: base URL, defaults, endpoints, and the
policies the outbound engine applies (retry, circuit breaker, rate limit). Every default of
that section lives here."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from gateway.config.envsubst import secret_names
from gateway.durations import parse_duration
from gateway.expr.expressions import RENDER_ERRORS, Expression, compile_expression

log = logging.getLogger("gateway.outbound")

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_RETRY_ON: tuple[int | str, ...] = (429, "5xx", "network", "timeout")
DEFAULT_MAX_WAIT = 30.0  # seconds a call may wait for the rate limiter
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """An integration's ``api.retry`` mapping."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff: Literal["exponential", "linear", "constant"] = "exponential"
    base: float = 1.0
    max: float = 60.0
    jitter: bool = True
    retry_on: frozenset[int | str] = frozenset(DEFAULT_RETRY_ON)
    retryable: Expression | None = None  # over status, headers, body: true, false or none

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> RetryPolicy:
        spec = spec or {}
        default = cls()
        retry_on: Sequence[int | str] = spec.get("retry_on", DEFAULT_RETRY_ON)
        return cls(
            max_attempts=int(spec.get("max_attempts", default.max_attempts)),
            backoff=spec.get("backoff", default.backoff),
            base=parse_duration(spec.get("base", default.base)),
            max=parse_duration(spec.get("max", default.max)),
            jitter=spec.get("jitter", default.jitter),
            retry_on=frozenset(retry_on),
            retryable=compile_expression(spec["retryable"]) if spec.get("retryable") else None,
        )

    def retries_status(self, status: int) -> bool:
        return status in self.retry_on or f"{status // 100}xx" in self.retry_on

    def retries(self, status: int, headers: Mapping[str, str], body: str) -> bool:
        """Whether an error answer is worth another attempt: what `retryable` says of it
        (Stripe-Should-Retry, an error code in the body), else `retry_on`."""
        if self.retryable is not None:
            variables = {"status": status, "headers": headers, "body": _parsed(body)}
            try:
                verdict = self.retryable.render(variables)
            except RENDER_ERRORS as exc:
                log.warning("retry.retryable failed on a %d answer: %s", status, exc)
                verdict = None
            if isinstance(verdict, str):
                verdict = {"true": True, "false": False}.get(verdict.strip().lower())
            if isinstance(verdict, bool):
                return verdict
        return self.retries_status(status)


def _parsed(body: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python recurses
        return body


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """An integration's ``api.circuit_breaker`` mapping."""

    failure_threshold: int = 5
    success_threshold: int = 2
    timeout: float = 60.0  # seconds open before a trial
    half_open_max_attempts: int = 1

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> BreakerPolicy:
        spec = spec or {}
        default = cls()
        return cls(
            failure_threshold=int(spec.get("failure_threshold", default.failure_threshold)),
            success_threshold=int(spec.get("success_threshold", default.success_threshold)),
            timeout=parse_duration(spec.get("timeout", default.timeout)),
            half_open_max_attempts=int(
                spec.get("half_open_max_attempts", default.half_open_max_attempts)
            ),
        )


@dataclass(frozen=True, slots=True)
class RateLimit:
    """An integration's ``api.rate_limit`` mapping (no limits by default)."""

    per_second: int | None = None
    per_minute: int | None = None
    per_hour: int | None = None
    concurrent: int | None = None
    max_wait: float = DEFAULT_MAX_WAIT

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> RateLimit:
        spec = spec or {}
        return cls(
            per_second=spec.get("per_second"),
            per_minute=spec.get("per_minute"),
            per_hour=spec.get("per_hour"),
            concurrent=spec.get("concurrent"),
            max_wait=parse_duration(spec.get("max_wait", DEFAULT_MAX_WAIT)),
        )


@dataclass(frozen=True, slots=True)
class AuthSpec:
    """An integration's ``api.auth`` mapping. Credentials stay as declared (a secret reference
    or a string): they are resolved per call, for the tenant calling."""

    type: str = "none"  # none | bearer | basic | api_key | oauth2_client_credentials | ...
    token: Any = field(default=None, repr=False)  # bearer
    username: Any = field(default=None, repr=False)  # basic
    password: Any = field(default=None, repr=False)
    key: Any = field(default=None, repr=False)  # api_key: sent in header or query `name`
    name: str = ""
    location: str = "header"  # `in`: header | query
    prefix: str = ""
    token_url: Any = None  # the OAuth2 flows
    client_id: Any = field(default=None, repr=False)
    client_secret: Any = field(default=None, repr=False)
    refresh_token: Any = field(default=None, repr=False)
    scope: str | None = None
    client_auth: str = "body"  # body | basic (RFC 6749 2.3.1)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> AuthSpec:
        spec = spec or {}
        default = cls()
        return cls(
            type=str(spec.get("type", default.type)),
            token=spec.get("token"),
            username=spec.get("username"),
            password=spec.get("password"),
            key=spec.get("key"),
            name=str(spec.get("name", default.name)),
            location=str(spec.get("in", default.location)),
            prefix=str(spec.get("prefix") or default.prefix),
            token_url=spec.get("token_url"),
            client_id=spec.get("client_id"),
            client_secret=spec.get("client_secret"),
            refresh_token=spec.get("refresh_token"),
            scope=str(spec["scope"]) if spec.get("scope") else None,
            client_auth=str(spec.get("client_auth", default.client_auth)),
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    integration: str
    name: str
    method: str
    path: str
    encoding: str = "json"
    headers: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    query: Any = None
    body: Any = None
    timeout: float = DEFAULT_TIMEOUT
    idempotency_header: str | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  # path defaults
    ok_status: frozenset[int] = frozenset()  # non-2xx statuses that count as success

    @property
    def label(self) -> str:
        return f"{self.integration}.{self.name}"


_ENDPOINT_ENCODING = Endpoint.__dataclass_fields__["encoding"].default


DEFAULT_HEALTH_EVERY = 60.0
DEFAULT_HEALTH_SLOW = 2.0


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """An integration's ``api.health``: the request probed in the background (the endpoint
    ``health``), how often, which statuses mean up (empty: any 2xx) and when it is slow."""

    every: float = DEFAULT_HEALTH_EVERY
    slow: float = DEFAULT_HEALTH_SLOW
    expect: frozenset[int] = frozenset()
    endpoint: str = "health"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> HealthCheck:
        return cls(
            every=parse_duration(spec.get("every", DEFAULT_HEALTH_EVERY)),
            slow=parse_duration(spec.get("slow", DEFAULT_HEALTH_SLOW)),
            expect=frozenset(int(status) for status in spec.get("expect") or ()),
        )


@dataclass(frozen=True, slots=True)
class Api:
    integration: str
    base_url: str
    headers: Mapping[str, Any]
    timeout: float
    endpoints: Mapping[str, Endpoint]
    auth: AuthSpec = field(default_factory=AuthSpec)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    circuit_breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    secrets: frozenset[str] = frozenset()  # the secret names the section reads
    health: HealthCheck | None = None  # api.health, probed in the background

    @classmethod
    def build(cls, integration: str, spec: Mapping[str, Any]) -> Api:
        timeout = parse_duration(spec.get("timeout", DEFAULT_TIMEOUT))
        endpoints = {
            name: Endpoint(
                integration=integration,
                name=name,
                method=str(ep["method"]).upper(),
                path=str(ep["path"]),
                encoding=str(ep.get("encoding", _ENDPOINT_ENCODING)),
                headers=MappingProxyType(dict(ep.get("headers") or {})),
                query=ep.get("query"),
                body=ep.get("body"),
                timeout=parse_duration(ep["timeout"]) if "timeout" in ep else timeout,
                idempotency_header=ep.get("idempotency_header"),
                params=MappingProxyType(dict(ep.get("params") or {})),
                ok_status=frozenset(ep.get("ok_status") or ()),
            )
            for name, ep in (spec.get("endpoints") or {}).items()
        }
        health = spec.get("health")
        if isinstance(health, Mapping) and "health" not in endpoints:
            endpoints["health"] = Endpoint(
                integration,
                "health",
                str(health.get("method", "GET")).upper(),
                str(health["path"]),
                timeout=timeout,
                ok_status=frozenset(int(s) for s in health.get("expect") or ()),
            )
        return cls(
            integration=integration,
            base_url=str(spec["base_url"]),
            headers=MappingProxyType(dict(spec.get("headers") or {})),
            timeout=timeout,
            endpoints=MappingProxyType(endpoints),
            auth=AuthSpec.from_spec(spec.get("auth")),
            retry=RetryPolicy.from_spec(spec.get("retry")),
            circuit_breaker=BreakerPolicy.from_spec(spec.get("circuit_breaker")),
            rate_limit=RateLimit.from_spec(spec.get("rate_limit")),
            secrets=frozenset(secret_names(spec)),
            health=HealthCheck.from_spec(health) if isinstance(health, Mapping) else None,
        )
