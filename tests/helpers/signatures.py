"""Signatures a provider would send, computed the way the provider documents them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519


def stripe_header(body: bytes, secret: str, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


# An ECDSA P-256 key pair for the schemes that sign with one (SendGrid): the private key signs
# examples as the provider would, the public one is what the integration is configured with.
_KEY = ec.generate_private_key(ec.SECP256R1())
PRIVATE_PEM = _KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
PUBLIC_B64 = base64.b64encode(
    _KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()

# An Ed25519 key pair (Telnyx, Standard Webhooks v1a): raw public key, base64.
_ED_KEY = ed25519.Ed25519PrivateKey.generate()
ED25519_PEM = _ED_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
ED25519_PUBLIC_B64 = base64.b64encode(
    _ED_KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
).decode()
# The same public key in hex, as Discord shows an application's.
ED25519_PUBLIC_HEX = base64.b64decode(ED25519_PUBLIC_B64).hex()
