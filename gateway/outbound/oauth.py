"""OAuth2 access tokens: client credentials (cached per tenant until shortly before expiry)
and refresh tokens (per tenant; a rotated refresh token is stored back in the `TokenStore`).

An answer of 400 or 401 from the token endpoint (a revoked grant, a wrong client secret) is
permanent; 429, 5xx and network errors are retryable. Token values never reach a message.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx

from gateway.config.api import DEFAULT_TIMEOUT, AuthSpec, RetryPolicy
from gateway.outbound.classify import (
    classify_exception,
    error_body,
    parse_retry_after,
)
from gateway.outbound.failures import MissingSecretError, PermanentError, RetryableError
from gateway.outbound.formencode import form_encode
from gateway.outbound.redactor import Redactor
from gateway.outbound.tokens import TokenStore

Send = Callable[[httpx.Request], Awaitable[httpx.Response]]

EXPIRY_MARGIN = 60.0  # refresh this long before a token expires (at most half its lifetime)
DEFAULT_EXPIRES_IN = 3600.0  # when the token endpoint does not say
_TOKEN_POLICY = RetryPolicy()


def _fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class _TokenEndpoint:
    """Posts token requests for one integration's ``api.auth``."""

    def __init__(
        self,
        integration: str,
        spec: AuthSpec,
        *,
        send: Send,
        timeout: float,
        wall_clock: Callable[[], float],
    ) -> None:
        self.integration = integration
        self.auth = spec
        self._send = send
        self._timeout = timeout
        self.wall_clock = wall_clock
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, tenant: str) -> asyncio.Lock:
        return self._locks.setdefault(tenant, asyncio.Lock())

    def expires_at(self, token: Mapping[str, Any]) -> float:
        try:
            lifetime = float(token.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            lifetime = DEFAULT_EXPIRES_IN
        return self.wall_clock() + lifetime - min(EXPIRY_MARGIN, lifetime / 2)

    async def fetch(self, form: dict[str, str], redactor: Redactor, what: str) -> dict[str, Any]:
        """POST the token request; the answer's fields (access_token checked)."""
        spec = self.auth
        url = redactor.require(spec.token_url, "auth.token_url")
        client_id = redactor.require(spec.client_id, "auth.client_id")
        client_secret = redactor.secret(spec.client_secret, "auth.client_secret")
        if spec.scope:
            form["scope"] = spec.scope
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        if spec.client_auth == "basic":  # RFC 6749 2.3.1: each part form-encoded
            pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
            redactor.remember(pair)
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form.update(client_id=client_id, client_secret=client_secret)
        request = httpx.Request(
            "POST",
            url,
            headers=headers,
            content=form_encode(form),
            extensions={"timeout": httpx.Timeout(self._timeout).as_dict()},
        )
        label = f"{self.integration}: oauth2 {what}"
        try:
            response = await self._send(request)
        except httpx.TransportError as exc:
            found = classify_exception(exc, _TOKEN_POLICY)
            reason = redactor.redact(f"{label} failed: {type(exc).__name__}: {exc}")
            if found.verdict == "retryable":
                raise RetryableError(reason, kind=found.kind) from None
            raise PermanentError(reason) from None
        return self._token_from(response, redactor, label)

    def _token_from(
        self, response: httpx.Response, redactor: Redactor, label: str
    ) -> dict[str, Any]:
        status = response.status_code
        if not 200 <= status < 300:
            body = redactor.redact(error_body(response))
            reason = f"{label} failed: HTTP {status}{_oauth_error(response)}"
            if status == 429 or status >= 500:
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                raise RetryableError(redactor.redact(reason), retry_after, status, body=body)
            raise PermanentError(redactor.redact(reason), status, body)
        token = _parse(response)
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise PermanentError(
                f"{label}: the token endpoint's answer has no access_token", status
            )
        redactor.remember(access, token.get("refresh_token"))
        return token


def _parse(response: httpx.Response) -> dict[str, Any]:
    if "form-urlencoded" in response.headers.get("content-type", ""):
        return dict(parse_qsl(response.text))
    try:
        parsed = json.loads(response.content)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _oauth_error(response: httpx.Response) -> str:
    """`: invalid_grant (description)` from an RFC 6749 error answer, if it is one."""
    error = _parse(response)
    code = error.get("error")
    if not isinstance(code, str):
        return ""
    description = error.get("error_description")
    return f": {code}" + (f" ({str(description)[:300]})" if description else "")


class ClientCredentialsAuth:
    """grant_type=client_credentials; the token is cached per tenant until shortly before it
    expires, one fetch at a time per tenant."""

    refreshable = True

    def __init__(
        self,
        integration: str,
        spec: AuthSpec,
        *,
        send: Send,
        timeout: float = DEFAULT_TIMEOUT,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoint = _TokenEndpoint(
            integration, spec, send=send, timeout=timeout, wall_clock=wall_clock
        )
        self._cache: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth({self._endpoint.integration!r})"

    async def token(self, redactor: Redactor, *, stale: str | None = None) -> str:
        endpoint = self._endpoint
        async with endpoint.lock(redactor.tenant):
            cached = self._cache.get(redactor.tenant)
            if cached and cached[0] != stale and cached[1] > endpoint.wall_clock():
                redactor.remember(cached[0])
                return cached[0]
            answer = await endpoint.fetch(
                {"grant_type": "client_credentials"}, redactor, "client credentials request"
            )
            access: str = answer["access_token"]
            self._cache[redactor.tenant] = (access, endpoint.expires_at(answer))
            return access

    async def apply(
        self, request: httpx.Request, redactor: Redactor, *, stale: str | None = None
    ) -> str | None:
        access = await self.token(redactor, stale=stale)
        request.headers["Authorization"] = f"Bearer {access}"
        return access


class RefreshTokenAuth:
    """grant_type=refresh_token per tenant. The configured refresh_token is the first one; the
    `TokenStore` keeps the latest (and the access token) with the fingerprint of the configured
    one it descends from, so configuring a new refresh token (re-consent) takes over again."""

    refreshable = True

    def __init__(
        self,
        integration: str,
        spec: AuthSpec,
        *,
        tokens: TokenStore,
        send: Send,
        timeout: float = DEFAULT_TIMEOUT,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._endpoint = _TokenEndpoint(
            integration, spec, send=send, timeout=timeout, wall_clock=wall_clock
        )
        self._tokens = tokens
        self._cache: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"RefreshTokenAuth({self._endpoint.integration!r})"

    async def token(self, redactor: Redactor, *, stale: str | None = None) -> str:
        endpoint = self._endpoint
        tenant, integration = redactor.tenant, endpoint.integration
        async with endpoint.lock(tenant):
            now = endpoint.wall_clock()
            cached = self._cache.get(tenant)
            if cached and cached[0] != stale and cached[1] > now:
                redactor.remember(cached[0])
                return cached[0]
            configured_ref = endpoint.auth.refresh_token
            configured = redactor.optional(configured_ref)
            redactor.remember(configured)
            initial = _fingerprint(configured) if configured else None
            stored = await self._tokens.get(integration, tenant)
            if (
                stored
                and stored.get("refresh_token")
                and initial in (None, stored.get("initial_sha256"))
            ):
                redactor.remember(stored.get("refresh_token"), stored.get("access_token"))
                access = stored.get("access_token")
                expires_at = float(stored.get("expires_at") or 0)
                if isinstance(access, str) and access and access != stale and expires_at > now:
                    self._cache[tenant] = (access, expires_at)
                    return access
                refresh = str(stored["refresh_token"])
                initial = stored.get("initial_sha256")
            elif configured:
                refresh = configured
            else:
                raise MissingSecretError(
                    redactor.missing_message(configured_ref, "auth.refresh_token")
                )
            answer = await endpoint.fetch(
                {"grant_type": "refresh_token", "refresh_token": refresh},
                redactor,
                "refresh token request",
            )
            access = str(answer["access_token"])
            expires_at = endpoint.expires_at(answer)
            await self._tokens.put(
                integration,
                tenant,
                {
                    "access_token": access,
                    "expires_at": expires_at,
                    "refresh_token": answer.get("refresh_token") or refresh,
                    "initial_sha256": initial,
                },
            )
            self._cache[tenant] = (access, expires_at)
            return access

    async def apply(
        self, request: httpx.Request, redactor: Redactor, *, stale: str | None = None
    ) -> str | None:
        access = await self.token(redactor, stale=stale)
        request.headers["Authorization"] = f"Bearer {access}"
        return access
