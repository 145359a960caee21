"""``scheme: ecdsa`` (SendGrid: P-256/SHA-256, DER signature in base64, SPKI public key) and
``scheme: ed25519`` (Standard Webhooks v1a: raw 64-byte signature, ``whpk_`` + base64 of the
32-byte public key; Discord: the same in hex, ``key_encoding: hex``).

Public keys come through the same lookup as secrets (a list rotates keys). Loading one costs
more than checking a signature, so loaded keys are cached by their text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from typing import Any, TypeVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from gateway.verify import options
from gateway.verify.encoding import decode_base64_unpadded, decode_hex
from gateway.verify.signed_message import DeclaresFromMessage, SignedMessage
from gateway.verify.verifier import SecretLookup, VerificationFailed, WebhookRequest

_KEYS = frozenset(
    {
        "scheme",
        "public_key",
        "key_prefix",
        "key_encoding",
        "signature",
        "signed",
        "id_header",
        "timestamp",
        "listed_headers",
    }
)
KEY_ENCODINGS = ("base64", "hex")
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_ED25519_SIGNATURE_SIZE = 64
_KEY_CACHE_SIZE = 256
K = TypeVar("K")


def _key_bytes(text: str, encoding: str) -> bytes | None:
    return decode_hex(text) if encoding == "hex" else decode_base64_unpadded(text)


@lru_cache(maxsize=_KEY_CACHE_SIZE)
def load_p256_key(
    text: str, prefix: str, encoding: str = "base64"
) -> ec.EllipticCurvePublicKey | None:
    """A P-256 public key from PEM, or from SPKI DER in base64 (SendGrid's form) or hex after
    `prefix`; None if it is not one."""
    text = text.strip()
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :]
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode("ascii"))
        else:
            der = _key_bytes("".join(text.split()), encoding)
            if der is None:
                return None
            key = load_der_public_key(der)
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
        return None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    return None


@lru_cache(maxsize=_KEY_CACHE_SIZE)
def load_ed25519_key(text: str, prefix: str, encoding: str = "base64") -> Ed25519PublicKey | None:
    """An Ed25519 public key from base64 (or hex) of its 32 bytes, after `prefix`; None if not
    one."""
    text = text.strip()
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :]
    raw = _key_bytes(text, encoding)
    if raw is None or len(raw) != 32:
        return None
    return Ed25519PublicKey.from_public_bytes(raw)


class _AsymmetricVerifier(DeclaresFromMessage):
    """A public-key scheme: any configured key may verify any candidate signature."""

    __slots__ = ("_load", "_message", "_public_key")

    _loader: Callable[..., Any]
    _signature_length: int | None

    def __init__(self, spec: Mapping[str, Any]) -> None:
        options.reject_unknown(spec, "verify", _KEYS)
        self._public_key = options.secret_value(spec, "public_key", "verify")
        prefix = options.text(spec, "key_prefix", "verify") or ""
        encoding = options.choice(spec, "key_encoding", "verify", KEY_ENCODINGS)
        self._load = partial(type(self)._loader, prefix=prefix, encoding=encoding)
        self._message = SignedMessage(spec, signature_length=self._signature_length)

    def _check(self, key: Any, candidate: bytes, message: bytes) -> None:
        raise NotImplementedError

    def verify(self, request: WebhookRequest, secrets: SecretLookup, now: float) -> None:
        keys = _keys(secrets(self._public_key), self._load)
        candidates, message = self._message.read(request, now)
        for key in keys:
            for candidate in candidates:
                try:
                    self._check(key, candidate, message)
                except InvalidSignature:
                    continue
                return
        raise VerificationFailed("signature mismatch")


class EcdsaVerifier(_AsymmetricVerifier):
    """ECDSA P-256 / SHA-256, DER signatures (SendGrid)."""

    __slots__ = ()
    _loader = staticmethod(load_p256_key)
    _signature_length = None

    def _check(self, key: Any, candidate: bytes, message: bytes) -> None:
        key.verify(candidate, message, _ECDSA_SHA256)


class Ed25519Verifier(_AsymmetricVerifier):
    """Ed25519 with raw 64-byte signatures (Standard Webhooks v1a)."""

    __slots__ = ()
    _loader = staticmethod(load_ed25519_key)
    _signature_length = _ED25519_SIGNATURE_SIZE

    def _check(self, key: Any, candidate: bytes, message: bytes) -> None:
        key.verify(candidate, message)


def _keys(texts: list[str], load: Callable[[str], K | None]) -> list[K]:
    """The loaded keys; fails closed when none is configured or one does not load."""
    keys: list[K] = []
    for text in texts:
        if not text:
            continue  # an empty value counts as not configured
        key = load(text)
        if key is None:
            raise VerificationFailed("configured public key is not valid")
        keys.append(key)
    if not keys:
        raise VerificationFailed("no public key configured for this integration")
    return keys
