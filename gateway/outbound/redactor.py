"""Resolves config secrets for one call and remembers them, so no message can repeat them."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from gateway.config.envsubst import SecretRef
from gateway.credentials.secrets import SecretLookup
from gateway.outbound.failures import MissingSecretError

MASK = "***"
_MIN_LENGTH = 4  # shorter values would mangle ordinary text; no real secret is that short


class Redactor:
    """The secrets one call (integration, tenant) uses: resolved on demand, masked in text."""

    __slots__ = ("_lookup", "_values", "integration", "tenant")

    def __init__(self, lookup: SecretLookup, integration: str, tenant: str) -> None:
        self._lookup = lookup
        self._values: set[str] = set()
        self.integration = integration
        self.tenant = tenant

    def __repr__(self) -> str:
        return f"Redactor({self.integration!r}, {self.tenant!r}, {len(self._values)} secrets)"

    def remember(self, *values: str | None) -> None:
        """Treat these values as secret from now on (tokens fetched at run time, say)."""
        self._values.update(v for v in values if v and len(v) >= _MIN_LENGTH)

    def optional(self, value: Any) -> str | None:
        """The secret (or plain text) a config value stands for; None when it is not set."""
        if isinstance(value, list | tuple):  # a rotation list: the first one set is current
            found = self._lookup(value)
            resolved = found[0] if found else None
        else:
            resolved = self._lookup.one(value)
        if resolved is not None and _is_secret(value):
            self.remember(resolved)
        return resolved

    def require(self, value: Any, what: str) -> str:
        """Like `optional`, but a missing value is a permanent error naming it (never a value)."""
        resolved = self.optional(value)
        if resolved is None:
            raise MissingSecretError(self.missing_message(value, what))
        return resolved

    def secret(self, value: Any, what: str) -> str:
        """A credential: required, and masked in every message even when written inline."""
        resolved = self.require(value, what)
        self.remember(resolved)
        return resolved

    def missing_message(self, value: Any, what: str) -> str:
        names = [v.name for v in _refs(value)]
        if names:
            return (
                f"{self.integration}: secret {' or '.join(names)} ({what}) is not set for tenant"
                f" {self.tenant!r}: store it with `gateway credentials set {self.tenant}"
                f" {self.integration} {names[0]}` or set the environment variable"
            )
        return f"{self.integration}: {what} is empty in the integration's YAML"

    def resolve_tree(self, value: Any, what: str) -> Any:
        """A copy of a nested value with every SecretRef replaced by its secret."""
        if isinstance(value, SecretRef):
            return self.secret(value, what)
        if isinstance(value, dict):
            return {k: self.resolve_tree(v, f"{what}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve_tree(v, f"{what}[{i}]") for i, v in enumerate(value)]
        return value

    def redact(self, text: str) -> str:
        """`text` with every remembered secret (plain, URL-quoted or base64) masked."""
        for form in sorted(_forms(self._values), key=len, reverse=True):
            if form in text:
                text = text.replace(form, MASK)
        return text


def _is_secret(value: Any) -> bool:
    return any(True for _ in _refs(value))


def _refs(value: Any) -> Iterable[SecretRef]:
    items = value if isinstance(value, list | tuple) else [value]
    return [v for v in items if isinstance(v, SecretRef)]


def _forms(values: Iterable[str]) -> set[str]:
    forms: set[str] = set()
    for value in values:
        forms.update({value, quote(value, safe=""), quote_plus(value)})
        forms.add(base64.b64encode(value.encode()).decode().rstrip("="))
    return {f for f in forms if len(f) >= _MIN_LENGTH}
