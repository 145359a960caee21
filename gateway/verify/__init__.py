"""Webhook signature verification: one `Verifier` per integration, built from its YAML `verify`.

``build_verifier(spec)`` does all parsing up front (template, header names, hash, tolerance);
``verifier.verify(request, secrets, now)`` returns when the request is genuine and raises
`VerificationFailed` otherwise, whatever the request holds. A mapping the engine cannot run
raises `VerifyConfigError` at build time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.verify.asymmetric import EcdsaVerifier, Ed25519Verifier
from gateway.verify.hmac_scheme import HmacVerifier
from gateway.verify.jwt_scheme import JwtVerifier
from gateway.verify.none import NoVerification
from gateway.verify.options import VerifyConfigError
from gateway.verify.token import TokenVerifier
from gateway.verify.url_params import UrlParamsVerifier
from gateway.verify.verifier import SecretLookup, VerificationFailed, Verifier, WebhookRequest

__all__ = [
    "SCHEMES",
    "SecretLookup",
    "VerificationFailed",
    "Verifier",
    "VerifyConfigError",
    "WebhookRequest",
    "build_verifier",
]

SCHEMES: Mapping[str, Callable[[Mapping[str, Any]], Verifier]] = {
    "hmac": HmacVerifier,
    "url_params": UrlParamsVerifier,
    "ecdsa": EcdsaVerifier,
    "ed25519": Ed25519Verifier,
    "token": TokenVerifier,
    "none": NoVerification,
    "jwt": JwtVerifier,
}


def build_verifier(spec: Mapping[str, Any]) -> Verifier:
    """The verifier a YAML `verify` mapping declares (after environment substitution)."""
    if not isinstance(spec, Mapping):
        raise VerifyConfigError("verify: expected a mapping")
    scheme = spec.get("scheme")
    factory = SCHEMES.get(scheme) if isinstance(scheme, str) else None
    if factory is None:
        raise VerifyConfigError(f"verify.scheme: {scheme!r} is not one of {', '.join(SCHEMES)}")
    return factory(spec)
