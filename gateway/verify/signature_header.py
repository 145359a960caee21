"""Where a signature sits in a header and how to read the candidate signatures out of it.

Three formats, chosen at build time:

- ``raw``: the whole header value, after an optional ``prefix`` (``sha256=``);
- ``pairs``: ``key=value`` items (Stripe ``t=..,v1=..,v1=..``, Paddle ``ts=..;h1=..``); every
  value of ``key`` is a candidate, and the timestamp ``param`` is read from the same header;
- ``list``: entries such as ``v1,<b64> v1,<b64>`` (Standard Webhooks); only entries starting with
  ``prefix`` are candidates. Without a prefix every entry is one.

A header that is missing, holds no candidate, or holds one that does not decode (or decodes to
the wrong length) is rejected as a whole. With ``body_path`` instead of ``header`` the value is
read from the JSON body (Mailgun's ``signature.signature``), in any of the formats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from gateway.verify import options
from gateway.verify.body_values import BodyDocument, BodyField
from gateway.verify.encoding import DECODERS
from gateway.verify.options import VerifyConfigError
from gateway.verify.verifier import VerificationFailed

FORMATS = ("raw", "pairs", "list")
ENCODINGS = ("hex", "base64")
# More candidates than any provider sends; a bound on the work one request can cause.
MAX_CANDIDATES = 16
_KEYS = frozenset(
    {"header", "body_path", "format", "prefix", "separator", "assign", "key", "encoding"}
)
_DEFAULT_SEPARATOR = {"pairs": ",", "list": " "}


class ParsedSignature(NamedTuple):
    candidates: list[bytes]
    timestamp: str | None  # the pairs timestamp param as sent, when one is declared


class SignatureHeader:
    __slots__ = (
        "_assign",
        "_body",
        "_decode",
        "_format",
        "_key",
        "_length",
        "_prefix",
        "_separator",
        "_timestamp_param",
        "header",
    )

    def __init__(
        self,
        spec: Mapping[str, Any],
        *,
        where: str = "verify.signature",
        timestamp_param: str | None = None,
        length: int | None = None,
    ) -> None:
        options.reject_unknown(spec, where, _KEYS)
        header = options.text(spec, "header", where) or None
        path = options.text(spec, "body_path", where) or None
        if (header is None) == (path is None):
            raise VerifyConfigError(f"{where}: give either 'header' or 'body_path'")
        # Where the signature is, for messages: a header's name, or the body path.
        self.header = header.lower() if header else None
        self._body = BodyField(path, f"{where}.body_path") if path else None
        self._format = options.choice(spec, "format", where, FORMATS)
        self._decode = DECODERS[options.choice(spec, "encoding", where, ENCODINGS)]
        self._prefix = options.text(spec, "prefix", where) or ""
        separator = options.text(spec, "separator", where)
        key = options.text(spec, "key", where)
        # Options of other formats (separator for raw, key for list, ...) are ignored, as the
        # schema allows them; only combinations that cannot work are refused.
        if self._format == "pairs" and not key:
            raise VerifyConfigError(f"{where}: the pairs format needs 'key' (like v1)")
        if timestamp_param is not None and self._format != "pairs":
            raise VerifyConfigError(
                "verify.timestamp.param: reads the signature header, which needs format: pairs"
            )
        self._separator = separator or _DEFAULT_SEPARATOR.get(self._format, "")
        self._assign = options.text(spec, "assign", where) or "="
        if self._format == "list" and self._prefix and self._separator in self._prefix:
            raise VerifyConfigError(f"{where}.prefix: contains the separator {self._separator!r}")
        overlap = self._assign in self._separator or self._separator in self._assign
        if self._format == "pairs" and overlap:
            raise VerifyConfigError(f"{where}.assign: overlaps the separator {self._separator!r}")
        self._prefix = self._prefix if self._format != "pairs" else ""
        self._key = key or ""
        self._timestamp_param = timestamp_param
        self._length = length

    @property
    def body_path(self) -> str | None:
        """The signature's place in the body, when it is there."""
        return self._body.path if self._body is not None else None

    @property
    def where(self) -> str:
        return f"header {self.header}" if self.header else f"body value {self.body_path}"

    def read(
        self, headers: Mapping[str, str], document: BodyDocument | None = None
    ) -> ParsedSignature:
        if self._body is not None:
            if document is None:
                raise VerificationFailed("missing signature")
            value = self._body.read(document)
        else:
            found = headers.get(self.header or "")
            if found is None:
                raise VerificationFailed(f"missing header {self.header}")
            value = found
        timestamp: str | None = None
        if self._format == "raw":
            raw = value.strip()
            if self._prefix:
                if not raw.startswith(self._prefix):
                    raise VerificationFailed(f"{self.where} lacks its prefix")
                raw = raw[len(self._prefix) :]
            texts = [raw] if raw else []
        elif self._format == "list":
            texts = self._list_entries(value)
        else:
            texts, timestamp = self._pairs(value)
        if not texts:
            raise VerificationFailed(f"no signature in {self.where}")
        if len(texts) > MAX_CANDIDATES:
            raise VerificationFailed(f"too many signatures in {self.where}")
        candidates: list[bytes] = []
        for text in texts:
            decoded = self._decode(text)
            if decoded is None or (self._length is not None and len(decoded) != self._length):
                raise VerificationFailed(f"malformed signature in {self.where}")
            candidates.append(decoded)
        return ParsedSignature(candidates, timestamp)

    def _list_entries(self, value: str) -> list[str]:
        prefix, size = self._prefix, len(self._prefix)
        entries = (entry.strip() for entry in value.split(self._separator))
        return [entry[size:] for entry in entries if entry and entry.startswith(prefix)]

    def _pairs(self, value: str) -> tuple[list[str], str | None]:
        texts: list[str] = []
        timestamp: str | None = None
        for item in value.split(self._separator):
            name, assign, text = item.partition(self._assign)
            if not assign:
                continue
            name = name.strip()
            if name == self._key:
                texts.append(text.strip())
            elif name == self._timestamp_param:
                if timestamp is not None:
                    raise VerificationFailed(f"two timestamps in {self.where}")
                timestamp = text.strip()
        return texts, timestamp
