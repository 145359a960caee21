"""Per-tenant credentials, encrypted at rest with Fernet; secrets resolved per request.

GATEWAY_SECRET_KEY holds one or more Fernet keys separated by commas: the first encrypts, all
decrypt, so a new key is put first and `gateway credentials rotate` re-encrypts everything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from time import monotonic
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from gateway.config.envsubst import SecretRef
from gateway.config.model import DEFAULT_TENANT, Config
from gateway.config.settings import DEFAULT_CREDENTIALS_TTL
from gateway.errors import CredentialError
from gateway.store.interfaces import CredentialStore

# Seconds a running server keeps what it read of the stored credentials (and of which tenants
# have any): a change made on one replica, or with `gateway credentials`, reaches every
# replica within this time (GATEWAY_CREDENTIALS_TTL).
CREDENTIALS_TTL = DEFAULT_CREDENTIALS_TTL


class Cipher:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise CredentialError(
                "GATEWAY_SECRET_KEY is not set: it must hold a Fernet key to encrypt credentials"
                " (make one with: python -c 'from cryptography.fernet import Fernet;"
                " print(Fernet.generate_key().decode())')"
            )
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError as exc:
            raise CredentialError(
                "GATEWAY_SECRET_KEY holds a key that is not a Fernet key"
                " (32 url-safe base64-encoded bytes)"
            ) from exc

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as exc:
            raise CredentialError(
                "a stored credential cannot be decrypted with GATEWAY_SECRET_KEY"
            ) from exc

    def rotate(self, token: bytes) -> bytes:
        try:
            return self._fernet.rotate(token)
        except InvalidToken as exc:
            raise CredentialError(
                "a stored credential cannot be decrypted with GATEWAY_SECRET_KEY: keep the old"
                " key in the list (after the new one) until rotate has run"
            ) from exc


class SecretSource:
    """Resolves config secrets: a tenant's stored credential first, then (when shared secrets
    are allowed) the environment.

    Stored credentials are read per tenant and kept for `ttl` seconds, so a change made with
    `gateway credentials set` or `delete` reaches running servers within that time; so does
    which tenants hold any credential at all (`has_own`). The environment is read once, when
    the source is made, as a process's environment does not change.
    """

    def __init__(
        self,
        environ: Mapping[str, str],
        store: CredentialStore | None = None,
        cipher: Cipher | None = None,
        ttl: float = CREDENTIALS_TTL,
    ) -> None:
        self._environ = dict(environ)
        self._store = store
        self._cipher = cipher
        self._ttl = self.ttl = ttl
        self._cache: dict[str, tuple[float, dict[tuple[str, str], str]]] = {}
        self._lookups: dict[tuple[str, str, bool], tuple[float, SecretLookup]] = {}
        self._holders: tuple[float, frozenset[str]] = (float("-inf"), frozenset())

    async def tenant_values(self, tenant: str) -> dict[tuple[str, str], str]:
        """(integration, name) -> value for a tenant's stored credentials."""
        if self._store is None or self._cipher is None:
            return {}
        now = monotonic()
        cached = self._cache.get(tenant)
        if cached and cached[0] > now:
            return cached[1]
        rows = await self._store.credential_tokens(tenant)
        values = {
            (integration, name): self._cipher.decrypt(token) for integration, name, token in rows
        }
        self._cache[tenant] = (now + self._ttl, values)
        return values

    async def _tenants_holding(self) -> frozenset[str]:
        """The tenants with any stored credential, read again once the TTL has passed (one
        query for all tenants: a request for a made-up tenant costs no read of its own)."""
        expires, tenants = self._holders
        if expires > monotonic():
            return tenants
        assert self._store is not None
        now = monotonic()
        tenants = frozenset(await self._store.tenants_with_credentials())
        self._holders = (now + self._ttl, tenants)
        return tenants

    async def has_own(self, tenant: str, integration: str) -> bool:
        """The tenant holds a stored credential of its own for this integration (as of at
        most `ttl` seconds ago)."""
        if self._store is None or self._cipher is None:
            return False
        if tenant not in await self._tenants_holding():
            return False
        return any(key[0] == integration for key in await self.tenant_values(tenant))

    def cached(self, tenant: str, integration: str, shared: bool = True) -> SecretLookup | None:
        """The lookup `lookup` would return, when it needs nothing read (no await)."""
        cached = self._lookups.get((tenant, integration, shared))
        if cached is not None and cached[0] > monotonic():
            return cached[1]
        return None

    async def lookup(self, tenant: str, integration: str, shared: bool = True) -> SecretLookup:
        """The secrets of one tenant and integration; the same object until the tenant's
        stored credentials are read again (it remembers what it resolved). Without `shared`
        only the tenant's stored credentials count: neither the environment nor a value
        written in the configuration, which every tenant would share."""
        cached = self.cached(tenant, integration, shared)
        if cached is not None:
            return cached
        stored = await self.tenant_values(tenant)
        lookup = SecretLookup(integration, stored, self._environ, shared=shared)
        expires = self._cache[tenant][0] if tenant in self._cache else float("inf")
        self._lookups[(tenant, integration, shared)] = (expires, lookup)
        return lookup


class SecretLookup:
    """The secrets config values stand for, for one tenant and integration."""

    __slots__ = ("_environ", "_integration", "_resolved", "_shared", "_stored")

    def __init__(
        self,
        integration: str,
        stored: Mapping[tuple[str, str], str],
        environ: Mapping[str, str],
        *,
        shared: bool = True,
    ) -> None:
        self._integration = integration
        self._stored = stored
        self._environ = environ
        self._shared = shared  # False: the stored credentials alone
        self._resolved: dict[Any, list[str]] = {}

    def one(self, value: Any) -> str | None:
        if isinstance(value, SecretRef):
            found = self._stored.get((self._integration, value.name))
            if found is None and self._shared:
                found = self._environ.get(value.name)
            return found or None
        return value if self._shared and isinstance(value, str) and value else None

    def __call__(self, value: Any) -> list[str]:
        if isinstance(value, list):  # several secrets (rotation): a list is not hashable
            value = tuple(value)
        try:
            return list(self._resolved[value])
        except KeyError:
            found = self._resolve(value)
            self._resolved[value] = found
            return list(found)
        except TypeError:  # unhashable, so not a secret reference: not worth remembering
            return self._resolve(value)

    def _resolve(self, value: Any) -> list[str]:
        items = value if isinstance(value, tuple) else (value,)
        return [one for one in (self.one(v) for v in items) if one]


async def tenant_shares(
    config: Config, secrets: SecretSource, tenant: str, integration: str
) -> bool | None:
    """Whether requests naming `tenant` for `integration` are served, and how they verify:
    None when the tenant receives none of them (it neither declares the integration nor holds
    a credential of its own for it, read again within the credential TTL); otherwise whether
    it may also verify with the shared secrets. The default tenant (no tenant in the URL) is
    the gateway's own: True. Another tenant shares only when its document says
    `shared_secrets: true`. Webhooks and in-call functions both ask this."""
    if tenant == DEFAULT_TENANT:
        return True
    declared = config.tenants.get(tenant)
    shares = declared is not None and declared.shared_secrets
    if declared is not None and declared.uses(integration):
        return shares
    if await secrets.has_own(tenant, integration):
        return shares
    return None
