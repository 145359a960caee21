"""Signatures a provider would send, computed the way the provider documents them."""

from __future__ import annotations

import hashlib
import hmac
import time


def stripe_header(body: bytes, secret: str, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"
