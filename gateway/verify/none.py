"""``scheme: none``: a provider whose webhooks cannot be verified says so, with a reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.verify import options
from gateway.verify.verifier import SecretLookup, WebhookRequest

_KEYS = frozenset({"scheme", "reason"})


class NoVerification:
    """Accepts every request. Only ever built from an explicit ``scheme: none`` with a reason."""

    __slots__ = ("reason",)
    signs_url = False
    secret_headers: frozenset[str] = frozenset()
    signature_headers: frozenset[str] = frozenset()
    secret_body_path: str | None = None

    def __init__(self, spec: Mapping[str, Any]) -> None:
        options.reject_unknown(spec, "verify", _KEYS)
        self.reason = options.required_text(spec, "reason", "verify")

    def verify(self, request: WebhookRequest, secrets: SecretLookup, now: float) -> None:
        return None
