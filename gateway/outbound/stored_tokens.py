"""OAuth tokens kept in storage, encrypted like credentials (refreshed tokens survive restarts)."""

from __future__ import annotations

import json
import logging
from typing import Any

from gateway.credentials.secrets import Cipher
from gateway.errors import CredentialError
from gateway.outbound.tokens import MemoryTokenStore, TokenStore
from gateway.store.interfaces import CredentialStore

log = logging.getLogger("gateway.outbound.stored_tokens")


class StoredTokens:
    def __init__(self, store: CredentialStore, cipher: Cipher) -> None:
        self._store = store
        self._cipher = cipher

    async def get(self, integration: str, tenant: str) -> dict[str, Any] | None:
        token = await self._store.get_token(integration, tenant)
        if token is None:
            return None
        try:
            found: dict[str, Any] = json.loads(self._cipher.decrypt(token))
        except CredentialError:
            log.warning("stored OAuth token of %s/%s cannot be decrypted", integration, tenant)
            return None
        return found

    async def put(self, integration: str, tenant: str, token: dict[str, Any]) -> None:
        await self._store.put_token(integration, tenant, self._cipher.encrypt(json.dumps(token)))


def token_store(store: CredentialStore, cipher: Cipher | None) -> TokenStore:
    """Tokens in storage when a GATEWAY_SECRET_KEY can encrypt them; in memory otherwise."""
    if cipher is None:
        return MemoryTokenStore()
    return StoredTokens(store, cipher)
