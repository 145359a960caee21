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


class KeyFetch(NamedTuple):
    """Where a verifier's key is fetched: the integration's `endpoint`, given the key id as
    `kid_name` in its body, query or path (`kid_in`); the key is at `key_path` in the answer
    (a JWK, or a list of them to pick the id from) and is kept `cache` seconds. A key whose
    `expired_field` is set (not null) is not used."""

    endpoint: str
    kid_in: str
    kid_name: str
    key_path: tuple[str, ...]
    cache: float
    expired_field: str | None = None


class FetchesKeys(Verifier, Protocol):
    """A verifier whose keys are fetched from the provider by key id (``key_fetch`` is set):
    the outbound engine fetches and caches them (`gateway.outbound.verification_keys`), and
    its plain `verify` fails closed."""

    @property
    def key_fetch(self) -> KeyFetch | None: ...

    def key_id(self, request: WebhookRequest) -> str:
        """The key id the request names (unverified); raises VerificationFailed."""
        ...

    def load_key(self, document: Any, kid: str) -> Any:
        """The key for `kid` in the key endpoint's parsed answer; raises VerificationFailed."""
        ...

    def verify_with_key(
        self, request: WebhookRequest, secrets: SecretLookup, now: float, key: Any
    ) -> None:
        """`verify`, with the fetched key (from `load_key`)."""
        ...


def fetches_keys(verifier: Verifier) -> FetchesKeys | None:
    """The verifier, when its keys are fetched; None for every other verifier."""
    if getattr(verifier, "key_fetch", None) is None:
        return None
    return verifier  # type: ignore[return-value]  # key_fetch is only set on FetchesKeys
