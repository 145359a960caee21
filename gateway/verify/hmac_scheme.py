"""``scheme: hmac``: a keyed hash of the signed bytes (Stripe, Slack, GitHub, Standard Webhooks
v1, Retell, Paddle, Square, ...)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from gateway.verify import options
from gateway.verify.encoding import decode_base64_unpadded, text_bytes
from gateway.verify.mac import Mac
from gateway.verify.signed_message import DeclaresFromMessage, SignedMessage
from gateway.verify.verifier import SecretLookup, VerificationFailed, WebhookRequest

ALGORITHMS = ("sha256", "sha1", "sha512")
_KNOWN_KEYS = 1024
_KEYS = frozenset(
    {
        "scheme",
        "algorithm",
        "secret",
        "secret_encoding",
        "secret_prefix",
        "signature",
        "signed",
        "id_header",
        "timestamp",
        "listed_headers",
    }
)


class SecretKeys:
    """Turns configured secret text into HMAC keys: strip a prefix, then maybe base64-decode.
    Each key is made once and kept: the same secrets sign request after request."""

    __slots__ = ("_algorithm", "_base64", "_known", "_prefix")

    def __init__(self, spec: Mapping[str, Any], algorithm: str, where: str = "verify") -> None:
        self._algorithm = algorithm
        self._prefix = options.text(spec, "secret_prefix", where) or ""
        self._base64 = (
            options.choice(spec, "secret_encoding", where, ("utf8", "base64")) == "base64"
        )
        self._known: dict[tuple[str, ...], list[Mac]] = {}

    def keys(self, secrets: list[str]) -> list[Mac]:
        """One key per configured secret (empty ones count as not configured)."""
        given = tuple(secrets)
        keys = self._known.get(given)
        if keys is None:
            keys = [Mac(self._key(secret), self._algorithm) for secret in secrets if secret]
            if not keys:
                raise VerificationFailed("no secret configured for this integration")
            if len(self._known) >= _KNOWN_KEYS:  # rotated secrets, many tenants: start over
                self._known.clear()
            self._known[given] = keys
        return keys

    def _key(self, secret: str) -> bytes:
        if self._prefix and secret.startswith(self._prefix):
            secret = secret[len(self._prefix) :]
        key = decode_base64_unpadded(secret) if self._base64 else text_bytes(secret)
        if not key:
            raise VerificationFailed("configured secret is empty or not valid base64")
        return key


class HmacVerifier(DeclaresFromMessage):
    __slots__ = ("_algorithm", "_keys", "_message", "_secret")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        options.reject_unknown(spec, "verify", _KEYS)
        self._algorithm = algorithm(spec)
        self._secret = options.secret_value(spec, "secret", "verify")
        self._keys = SecretKeys(spec, self._algorithm)
        size = hashlib.new(self._algorithm).digest_size
        self._message = SignedMessage(spec, signature_length=size)

    def verify(self, request: WebhookRequest, secrets: SecretLookup, now: float) -> None:
        keys = self._keys.keys(secrets(self._secret))
        candidates, message = self._message.read(request, now)
        if not any_match(keys, message, candidates):
            raise VerificationFailed("signature mismatch")


def algorithm(spec: Mapping[str, Any]) -> str:
    if "algorithm" not in spec:
        raise options.VerifyConfigError("verify: missing required key 'algorithm'")
    return options.choice(spec, "algorithm", "verify", ALGORITHMS)


def any_match(keys: list[Mac], message: bytes, candidates: list[bytes]) -> bool:
    """True when the MAC of `message` under some key equals some candidate (constant-time)."""
    for key in keys:
        expected = key.digest(message)
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate):
                return True
    return False
