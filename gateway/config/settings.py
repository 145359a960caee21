"""Process settings read once from the environment (names are a stable contract)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config.envsubst import Secret
from gateway.durations import parse_duration
from gateway.errors import UsageError

DEFAULT_CREDENTIALS_TTL = 10.0


@dataclass(frozen=True)
class Settings:
    public_url: str | None = None  # GATEWAY_PUBLIC_URL: the base URL providers call
    admin_token: Secret | None = None  # GATEWAY_ADMIN_TOKEN: bearer for /admin; None: admin off
    secret_keys: tuple[str, ...] = ()  # GATEWAY_SECRET_KEY: Fernet keys, first encrypts
    sentry_dsn: str | None = None  # SENTRY_DSN
    # GATEWAY_CREDENTIALS_TTL: how long a server keeps what it read of stored credentials (and
    # which tenants have any); a change elsewhere reaches it within this time
    credentials_ttl: float = DEFAULT_CREDENTIALS_TTL

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        token = environ.get("GATEWAY_ADMIN_TOKEN", "")
        keys = tuple(
            k.strip() for k in environ.get("GATEWAY_SECRET_KEY", "").split(",") if k.strip()
        )
        ttl = environ.get("GATEWAY_CREDENTIALS_TTL") or DEFAULT_CREDENTIALS_TTL
        try:
            credentials_ttl = parse_duration(ttl)
        except ValueError as exc:
            raise UsageError(f"GATEWAY_CREDENTIALS_TTL: {exc}") from None
        return cls(
            public_url=(environ.get("GATEWAY_PUBLIC_URL") or "").rstrip("/") or None,
            admin_token=Secret(token) if token else None,
            secret_keys=keys,
            sentry_dsn=environ.get("SENTRY_DSN") or None,
            credentials_ttl=credentials_ttl,
        )
