"""The admin UI's login session and CSRF tokens, signed with a key derived from the admin
token (HMAC-SHA256): nothing is stored server-side, and changing GATEWAY_ADMIN_TOKEN ends
every session.

A session cookie is ``<expires>.<nonce>.<mac>``; its CSRF token is a MAC of the nonce under
another label, so a form's token is good for its own session only. The login form has the
same protection, over a nonce in a short-lived cookie of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

SESSION_COOKIE = "gateway_admin"
LOGIN_COOKIE = "gateway_login"
SESSION_SECONDS = 8 * 3600
LOGIN_SECONDS = 600


class Sessions:
    def __init__(self, admin_token: str, *, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(b"gateway admin ui session", admin_token.encode(), "sha256").digest()
        self._token = admin_token
        self._clock = clock

    def _mac(self, label: str, value: str) -> str:
        return hmac.new(self._key, f"{label}:{value}".encode(), hashlib.sha256).hexdigest()

    def token_matches(self, given: str) -> bool:
        """Whether `given` is the admin token (a constant-time comparison)."""
        return hmac.compare_digest(given.encode(), self._token.encode())

    def new_session(self) -> str:
        payload = f"{int(self._clock()) + SESSION_SECONDS}.{secrets.token_urlsafe(18)}"
        return f"{payload}.{self._mac('session', payload)}"

    def nonce(self, cookie: str | None) -> str | None:
        """The nonce of a valid, unexpired session cookie; None for anything else."""
        expires, nonce, mac = _three(cookie)
        if expires is None or nonce is None or mac is None:
            return None
        if not hmac.compare_digest(mac, self._mac("session", f"{expires}.{nonce}")):
            return None
        if not expires.isdigit() or int(expires) < self._clock():
            return None
        return nonce

    def csrf(self, nonce: str) -> str:
        return self._mac("csrf", nonce)

    def csrf_ok(self, nonce: str | None, given: str) -> bool:
        return nonce is not None and hmac.compare_digest(given, self.csrf(nonce))

    def new_login(self) -> str:
        """A login nonce (its cookie) whose form token is `csrf(login nonce)`."""
        return f"{int(self._clock()) + LOGIN_SECONDS}.{secrets.token_urlsafe(18)}"

    def login_nonce(self, cookie: str | None) -> str | None:
        expires, _, rest = (cookie or "").partition(".")
        if not rest or not expires.isdigit() or int(expires) < self._clock():
            return None
        return cookie


def _three(cookie: str | None) -> tuple[str | None, str | None, str | None]:
    parts = (cookie or "").split(".")
    if len(parts) != 3:
        return None, None, None
    return parts[0], parts[1], parts[2]
