"""Authentication from ``api.auth``: none, bearer, basic, api_key, and the OAuth2 flows
(`gateway.outbound.oauth`). Credentials are resolved per call through the tenant's secrets."""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx

from gateway.config.api import DEFAULT_TIMEOUT, AuthSpec
from gateway.outbound.failures import RequestBuildError
from gateway.outbound.oauth import ClientCredentialsAuth, RefreshTokenAuth
from gateway.outbound.redactor import Redactor
from gateway.outbound.tokens import MemoryTokenStore, TokenStore

__all__ = [
    "ApiKeyAuth",
    "Auth",
    "BasicAuth",
    "BearerAuth",
    "ClientCredentialsAuth",
    "MemoryTokenStore",
    "NoAuth",
    "RefreshTokenAuth",
    "TokenStore",
    "basic_credentials",
    "build_auth",
]

Send = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Auth(Protocol):
    """Adds credentials to a request. `refreshable`: a 401 answer may be cured by calling
    `apply` again with ``stale=`` the token the 401 came back for."""

    refreshable: bool

    async def apply(
        self, request: httpx.Request, redactor: Redactor, *, stale: str | None = None
    ) -> str | None:
        """Authenticate `request` in place; return the token used (for `stale`), if any."""
        ...


def basic_credentials(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class NoAuth:
    refreshable = False

    async def apply(
        self, request: httpx.Request, redactor: Redactor, *, stale: str | None = None
    ) -> str | None:
        return None


class BearerAuth:
    refreshable = False

    def __init__(self, spec: AuthSpec) -> None:
        self._token = spec.token

    async def apply(
        self, request: httpx.Request, redactor: Redactor, *, stale: str | None = None
    ) -> str | None:
        token = redactor.secret(self._token, "auth.token")
        request.headers["Authorization"] = f"Bearer {token}"
        return token


class BasicAuth:
    refreshable = False

    def __init__(self, spec: AuthSpec) -> None:
        self._username = spec.username
        self._password = spec.password

    async def apply(
        self, request: httpx.Request, redactor: Redactor, *, stale: str | None = None
    ) -> str | None:
        username = redactor.require(self._username, "auth.username")
        password = ""
        if self._password not in (None, ""):  # an empty password is written as ""
            password = redactor.secret(self._password, "auth.password")
        redactor.remember(f"{username}:{password}")
        request.headers["Authorization"] = basic_credentials(username, password)
        return None


class ApiKeyAuth:
    """``key`` sent in the header or query parameter ``name``, after an optional literal
    ``prefix`` (write ``"Token "`` with its space if the provider wants one)."""

    refreshable = False

    def __init__(self, spec: AuthSpec) -> None:
        self._key = spec.key
        self._name = spec.name
        self._in = spec.location
        self._prefix = spec.prefix

    async def apply(
        self, request: httpx.Request, redactor: Redactor, *, stale: str | None = None
    ) -> str | None:
        value = self._prefix + redactor.secret(self._key, "auth.key")
        if self._in == "query":
            request.url = request.url.copy_merge_params({self._name: value})
        else:
            request.headers[self._name] = value
        return None


def build_auth(
    integration: str,
    spec: AuthSpec,
    *,
    tokens: TokenStore,
    send: Send,
    timeout: float = DEFAULT_TIMEOUT,
    wall_clock: Callable[[], float] = time.time,
) -> Auth:
    """The `Auth` for an integration's compiled ``api.auth``. `send` posts token requests (the
    engine's pooled client); `wall_clock` dates token expiry (Unix time)."""
    kind = spec.type
    if kind == "none":
        return NoAuth()
    if kind == "bearer":
        return BearerAuth(spec)
    if kind == "basic":
        return BasicAuth(spec)
    if kind == "api_key":
        return ApiKeyAuth(spec)
    if kind == "oauth2_client_credentials":
        return ClientCredentialsAuth(
            integration, spec, send=send, timeout=timeout, wall_clock=wall_clock
        )
    if kind == "oauth2_refresh_token":
        return RefreshTokenAuth(
            integration, spec, tokens=tokens, send=send, timeout=timeout, wall_clock=wall_clock
        )
    raise RequestBuildError(f"integration {integration}: unknown auth type {kind!r}")
