"""What the engine's users (workers, syncs) need of the outbound engine: `OutboundClient` is
one; tests may pass another."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from gateway.config.api import RetryPolicy


class Response(Protocol):
    """A successful answer (`OutboundResult` is one)."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def json(self) -> Any: ...


class Caller(Protocol):
    """One attempt at an endpoint call, and the integration's retry policy."""

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
    ) -> Response: ...

    def retry_policy(self, integration: str) -> RetryPolicy: ...
