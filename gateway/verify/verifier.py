"""What every verification scheme sees and how it says no."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol


class WebhookRequest(NamedTuple):
    """One inbound webhook request, exactly as received (the body is never re-serialised)."""

    method: str
    url: str  # the public URL the provider called: GATEWAY_PUBLIC_URL + path + query string
    headers: Mapping[str, str]  # lower-case header name -> value
    query: Sequence[tuple[str, str]]  # decoded query parameters, in order
    body: bytes
    form: Sequence[tuple[str, str]] = ()  # decoded form fields, for form-encoded bodies


class VerificationFailed(Exception):
    """The request is not proven genuine. The reason is safe to log: it never holds a secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Given a secret value from the config (a string, a SecretRef, or a list of those), the
# secrets it stands for for this request's tenant; empty when none is configured.
SecretLookup = Callable[[Any], list[str]]


class Verifier(Protocol):
    """A scheme declares what ingress must do for it, so that ingress never asks its name."""

    @property
    def signs_url(self) -> bool:
        """The public URL is signed: ingress builds it (it costs on every request)."""
        ...

    @property
    def secret_headers(self) -> frozenset[str]:
        """Request headers that hold a secret: never stored."""
        ...

    @property
    def signature_headers(self) -> frozenset[str]:
        """Request headers that hold a signature: never stored either (a stored signature
        replays the request, and offers a weak secret to offline guessing). Timestamp and id
        headers are not signatures and may be kept."""
        ...

    @property
    def secret_body_path(self) -> str | None:
        """A dotted body path (``[*]`` for every item) holding a secret: masked when stored."""
        ...

    def verify(self, request: WebhookRequest, secrets: SecretLookup, now: float) -> None:
        """Return if the request is genuine; raise VerificationFailed otherwise. Never raises
        anything else, whatever the headers and body hold."""
