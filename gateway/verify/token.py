"""``scheme: token``: a shared token compared in constant time, either a header (Google Calendar
``X-Goog-Channel-Token``) or a value in the JSON body (Microsoft Graph ``value[*].clientState``:
``[*]`` means every item of a list, and the list must not be empty)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any

from gateway.verify import options
from gateway.verify.encoding import text_bytes, wire_bytes
from gateway.verify.options import VerifyConfigError
from gateway.verify.verifier import SecretLookup, VerificationFailed, WebhookRequest

_KEYS = frozenset({"scheme", "secret", "header", "body_path"})
_STAR = "[*]"


class TokenVerifier:
    __slots__ = ("_header", "_path", "_path_text", "_secret")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        options.reject_unknown(spec, "verify", _KEYS)
        self._secret = options.secret_value(spec, "secret", "verify")
        header = options.text(spec, "header", "verify") or None
        path = options.text(spec, "body_path", "verify") or None
        if (header is None) == (path is None):
            raise VerifyConfigError("verify: a token check needs either 'header' or 'body_path'")
        self._header = header.lower() if header else None
        self._path_text = path or ""
        self._path = parse_body_path(path) if path else ()

    signs_url = False

    @property
    def secret_headers(self) -> frozenset[str]:
        """The token's header: it is the secret, never stored."""
        return frozenset({self._header}) if self._header else frozenset()

    signature_headers: frozenset[str] = frozenset()  # the token is a secret, not a signature

    @property
    def secret_body_path(self) -> str | None:
        """The token's place in the body: what it points at is masked before storing."""
        return self._path_text or None

    def verify(self, request: WebhookRequest, secrets: SecretLookup, now: float) -> None:
        tokens = [text_bytes(secret) for secret in secrets(self._secret) if secret]
        if not tokens:
            raise VerificationFailed("no secret configured for this integration")
        if self._header is not None:
            header = request.headers.get(self._header)
            if header is None:
                raise VerificationFailed(f"missing header {self._header}")
            sent = [wire_bytes(header)]
        else:
            sent = self._body_values(request.body)
        for value in sent:
            if not any(hmac.compare_digest(value, token) for token in tokens):
                raise VerificationFailed("token mismatch")

    def _body_values(self, body: bytes) -> list[bytes]:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):  # ValueError covers bad UTF-8 and huge numbers
            raise VerificationFailed("body is not JSON") from None
        values: list[Any] = [document]
        for name, every in self._path:
            found: list[Any] = []
            for value in values:
                if not isinstance(value, dict) or name not in value:
                    raise VerificationFailed(f"body has no {self._path_text}")
                child = value[name]
                if every:
                    if not isinstance(child, list) or not child:
                        raise VerificationFailed(f"body has no {self._path_text}")
                    found.extend(child)
                else:
                    found.append(child)
            values = found
        if not all(isinstance(value, str) for value in values):
            raise VerificationFailed(f"body has no {self._path_text}")
        return [text_bytes(value) for value in values]


def parse_body_path(path: str) -> tuple[tuple[str, bool], ...]:
    """``value[*].clientState`` -> (("value", True), ("clientState", False))."""
    steps: list[tuple[str, bool]] = []
    for segment in path.split("."):
        every = segment.endswith(_STAR)
        name = segment[: -len(_STAR)] if every else segment
        if not name or "[" in name or "]" in name:
            raise VerifyConfigError(
                f"verify.body_path: {path!r} is not a dotted path like value[*].clientState"
            )
        steps.append((name, every))
    return tuple(steps)
