"""Where OAuth2 refresh tokens live between calls (and processes): the `TokenStore` protocol.

A token is a dict: ``access_token``, ``expires_at`` (Unix time), ``refresh_token`` and
``initial_sha256`` (which configured refresh token it descends from). It holds secrets: a
persistent store must encrypt it at rest (see `gateway.credentials.secrets.Cipher`).
"""

from __future__ import annotations

import copy
from typing import Any, Protocol


class TokenStore(Protocol):
    async def get(self, integration: str, tenant: str) -> dict[str, Any] | None: ...

    async def put(self, integration: str, tenant: str, token: dict[str, Any]) -> None: ...


class MemoryTokenStore:
    """A `TokenStore` in a dict: for tests and single-process runs (lost on restart)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"MemoryTokenStore({len(self._tokens)} tokens)"

    async def get(self, integration: str, tenant: str) -> dict[str, Any] | None:
        found = self._tokens.get((integration, tenant))
        return copy.deepcopy(found) if found is not None else None

    async def put(self, integration: str, tenant: str, token: dict[str, Any]) -> None:
        self._tokens[(integration, tenant)] = copy.deepcopy(token)
