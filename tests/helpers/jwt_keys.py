"""Plaid's ``/webhook_verification_key/get`` in process, and tokens signed the way Plaid signs.

Plaid documents the endpoint (POST, client id and secret, ``key_id``; answers ``{"key": JWK,
"request_id"}``, 400 for an id it does not know) and the token (ES256, ``kid`` in the header,
claims ``iat`` and ``request_body_sha256``, the hex SHA-256 of the body):
https://plaid.com/docs/api/webhooks/webhook-verification/ . plaid-python only fetches keys, so
tokens are signed here with PyJWT per that page.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

KEY_PATH = "/webhook_verification_key/get"


def simulated_kid(private_pem: bytes) -> str:
    """The kid `gateway simulate` puts in the tokens it signs with this key."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(public).hexdigest()[:32]


def public_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    """The key as Plaid answers it (its fields, with created_at and expired_at)."""
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "alg": "ES256", "kid": kid, "use": "sig", "created_at": 1560466143,
            "expired_at": None}  # fmt: skip


def plaid_token(
    body: bytes,
    key: ec.EllipticCurvePrivateKey,
    kid: str,
    iat: int,
    *,
    algorithm: str = "ES256",
    claims: Mapping[str, Any] | None = None,
) -> str:
    payload = {
        "iat": iat,
        "request_body_sha256": hashlib.sha256(body).hexdigest(),
        **(claims or {}),
    }
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})


class PlaidKeyEndpoint(httpx.AsyncBaseTransport):
    """Answers Plaid's key endpoint on any host from `keys` (kid -> private key, whose public
    half is served); every other request goes to `inner`. `calls` records each key request's
    JSON body and credential headers; `failing` answers 503 instead; the keys of `expired`
    are answered with ``expired_at`` set."""

    def __init__(
        self,
        keys: Mapping[str, ec.EllipticCurvePrivateKey],
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.keys = dict(keys)
        self.inner = inner
        self.calls: list[dict[str, Any]] = []
        self.failing = False
        self.expired: set[str] = set()  # kids answered with expired_at set

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(KEY_PATH):
            body = json.loads(request.content or b"{}")
            self.calls.append(
                {
                    **body,
                    "client_id": request.headers.get("plaid-client-id"),
                    "secret": request.headers.get("plaid-secret"),
                }
            )
            if self.failing:
                return httpx.Response(503, json={"error_type": "API_ERROR"}, request=request)
            kid = body.get("key_id")
            key = self.keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                error = {
                    "error_type": "INVALID_INPUT",
                    "error_code": "INVALID_WEBHOOK_VERIFICATION_KEY_ID",
                    "error_message": "invalid key_id provided",
                    "request_id": "m8MDnv9okwxFNBV",
                }
                return httpx.Response(400, json=error, request=request)
            jwk = public_jwk(key, kid)
            if kid in self.expired:
                jwk["expired_at"] = 1700000000
            answer = {"key": jwk, "request_id": "RZ6Omi1bzzwDaLo"}
            return httpx.Response(200, json=answer, request=request)
        if self.inner is not None:
            return await self.inner.handle_async_request(request)
        return httpx.Response(503, text="not a key request", request=request)

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()
