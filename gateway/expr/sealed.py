"""A secret as an expression sees it: sealed. It prints as stars and has no attribute a
template may read; only the filters that need its value (`hmac_sha256`) open it.

Handshakes read secrets with ``secret('NAME')`` (gateway/ingress/webhooks.py binds it to the
integration's own declared secrets): ``{{ body.payload.plainToken |
hmac_sha256(secret('ZOOM_WEBHOOK_SECRET')) }}``. Rendering the secret itself gives the mask.
"""

from __future__ import annotations

MASK = "**********"


class Sealed:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Sealed({MASK!r})"


def unseal(value: Sealed) -> str:
    """The secret's value, for a filter that computes with it (never for rendering)."""
    return value._value
