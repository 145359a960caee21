"""``listed_headers``: the request names the headers its signature covers (Contentful's
``x-contentful-signed-headers: content-type,x-contentful-signed-headers,x-contentful-timestamp``).

``{listed_headers}`` in the signed template stands for those headers as ``name:value`` (names
lower-cased, values trimmed), sorted by name and joined by ``joiner``. Headers the scheme relies
on (the timestamp: otherwise a replay could carry a fresh one) must be in the list; a listed
header the request lacks fails the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.verify import options
from gateway.verify.encoding import text_bytes, wire_bytes
from gateway.verify.options import VerifyConfigError
from gateway.verify.verifier import VerificationFailed

_KEYS = frozenset({"header", "separator", "joiner", "must_include"})
# More headers than any provider signs; a bound on the work one request can cause.
MAX_LISTED = 64


class ListedHeaders:
    __slots__ = ("_joiner", "_must_include", "_separator", "header")

    def __init__(self, spec: Mapping[str, Any], where: str = "verify.listed_headers") -> None:
        options.reject_unknown(spec, where, _KEYS)
        self.header = options.required_text(spec, "header", where).lower()
        self._separator = options.text(spec, "separator", where, ",") or ","
        self._joiner = text_bytes(options.text(spec, "joiner", where, ";") or "")
        must = spec.get("must_include", [])
        if not isinstance(must, list) or not all(isinstance(n, str) and n for n in must):
            raise VerifyConfigError(f"{where}.must_include: expected a list of header names")
        self._must_include = tuple(sorted({name.strip().lower() for name in must}))

    def render(self, headers: Mapping[str, str]) -> bytes:
        listed = headers.get(self.header)
        if listed is None:
            raise VerificationFailed(f"missing header {self.header}")
        names = sorted(
            {name.strip().lower() for name in listed.split(self._separator) if name.strip()}
        )
        if len(names) > MAX_LISTED:
            raise VerificationFailed(f"too many headers listed in {self.header}")
        for required in self._must_include:
            if required not in names:
                raise VerificationFailed(f"header {self.header} does not list {required}")
        parts: list[bytes] = []
        for name in names:
            value = headers.get(name)
            if value is None:
                raise VerificationFailed(f"missing header {name}")
            parts.append(text_bytes(name) + b":" + wire_bytes(value.strip()))
        return self._joiner.join(parts)
