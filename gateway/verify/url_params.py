"""``scheme: url_params``: Twilio's HMAC of the public URL plus the sorted form parameters.

Form bodies: signed = URL + name + value for each parameter name in sorted order (the values of
one name sorted, duplicates dropped). JSON bodies: the URL carries ``body_hash_param`` (Twilio's
``bodySHA256``) with the hex SHA-256 of the body; signed = URL alone, and the hash must match.
A non-empty body that is neither form fields nor hashed is not covered by the signature, so it
is rejected. With ``port_variants`` the URL with its port removed, or with ``:443``/``:80``
added when absent, is accepted too (Twilio signs either form).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from gateway.verify import options
from gateway.verify.encoding import text_bytes
from gateway.verify.hmac_scheme import SecretKeys, algorithm, any_match
from gateway.verify.signature_header import SignatureHeader
from gateway.verify.verifier import SecretLookup, VerificationFailed, WebhookRequest

_KEYS = frozenset(
    {"scheme", "algorithm", "secret", "signature", "body_hash_param", "port_variants"}
)
_DEFAULT_PORTS = {"https": 443, "http": 80}


class UrlParamsVerifier:
    signs_url = True
    secret_headers: frozenset[str] = frozenset()
    secret_body_path: str | None = None
    __slots__ = (
        "_algorithm",
        "_body_hash_param",
        "_header",
        "_keys",
        "_port_variants",
        "_secret",
        "_signature",
    )

    def __init__(self, spec: Mapping[str, Any]) -> None:
        options.reject_unknown(spec, "verify", _KEYS)
        self._algorithm = algorithm(spec)
        self._secret = options.secret_value(spec, "secret", "verify")
        self._keys = SecretKeys({}, self._algorithm)  # the secret is used as written
        signature_spec = options.mapping(spec, "signature", "verify")
        if signature_spec is None:
            raise options.VerifyConfigError("verify: missing required key 'signature'")
        size = hashlib.new(self._algorithm).digest_size
        self._signature = SignatureHeader(signature_spec, length=size)
        if self._signature.header is None:
            raise options.VerifyConfigError("verify.signature: url_params reads a header")
        self._header = self._signature.header
        self._body_hash_param = options.text(spec, "body_hash_param", "verify") or None
        self._port_variants = options.flag(spec, "port_variants", "verify")

    @property
    def signature_headers(self) -> frozenset[str]:
        return frozenset({self._header})

    def verify(self, request: WebhookRequest, secrets: SecretLookup, now: float) -> None:
        keys = self._keys.keys(secrets(self._secret))
        candidates = self._signature.read(request.headers).candidates
        body_hash = self._body_hash(request.query)
        if body_hash is not None:
            actual = hashlib.sha256(request.body).hexdigest().encode("ascii")
            if not hmac.compare_digest(actual, text_bytes(body_hash)):
                raise VerificationFailed("body hash mismatch")
            params = b""
        elif request.body and not request.form:
            raise VerificationFailed("body is neither form fields nor hashed in the URL")
        else:
            params = sorted_params(request.form)
        urls = port_variants(request.url) if self._port_variants else (request.url,)
        for url in urls:
            if any_match(keys, text_bytes(url) + params, candidates):
                return
        raise VerificationFailed("signature mismatch")

    def _body_hash(self, query: Sequence[tuple[str, str]]) -> str | None:
        if self._body_hash_param is None:
            return None
        for name, value in query:
            if name == self._body_hash_param:
                return value
        return None


def sorted_params(form: Sequence[tuple[str, str]]) -> bytes:
    if not form:
        return b""
    values: dict[str, set[str]] = {}
    for name, value in form:
        values.setdefault(name, set()).add(value)
    text = "".join(name + value for name in sorted(values) for value in sorted(values[name]))
    return text_bytes(text)


def port_variants(url: str) -> tuple[str, ...]:
    """The URL as given, and with its port removed or the scheme's default port added."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return (url,)
    head = f"{parts.scheme}://{parts.netloc}"
    if not parts.netloc or not url.startswith(head) or parts.netloc.endswith(":"):
        return (url,)
    rest = url[len(head) :]
    if port is not None:
        host = parts.netloc[: parts.netloc.rindex(":")]
        return (url, f"{parts.scheme}://{host}{rest}")
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None:
        return (url,)
    return (url, f"{head}:{default}{rest}")
