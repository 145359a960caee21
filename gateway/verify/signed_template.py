"""The signed-bytes template (``{timestamp}.{body}``), parsed once into literal and value parts.

``{body:path}`` stands for one value of the JSON body (Mailgun signs ``{timestamp}`` and
``{body:signature.token}``), as text: a string as it is, an integer in decimal.
"""

from __future__ import annotations

import re

from gateway.verify.body_values import BodyDocument, BodyField
from gateway.verify.encoding import text_bytes, wire_bytes
from gateway.verify.options import VerifyConfigError
from gateway.verify.verifier import VerificationFailed, WebhookRequest

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_HEADER = "header:"
_BODY_VALUE_PREFIX = "body:"

# Part kinds. A part is (kind, literal bytes, lower-cased header name or body path).
_LITERAL, _BODY, _TIMESTAMP, _URL, _HEADER_VALUE, _BODY_VALUE = range(6)
_NAMED = {"body": _BODY, "timestamp": _TIMESTAMP, "url": _URL}


class SignedTemplate:
    __slots__ = ("_body_only", "_fields", "_parts", "uses_body", "uses_timestamp", "uses_url")

    def __init__(self, template: str, *, id_header: str | None, where: str = "verify") -> None:
        parts: list[tuple[int, bytes, str]] = []
        position = 0
        for match in _PLACEHOLDER.finditer(template):
            if match.start() > position:
                parts.append((_LITERAL, text_bytes(template[position : match.start()]), ""))
            parts.append(self._placeholder(match.group(1), id_header, where))
            position = match.end()
        if position < len(template):
            parts.append((_LITERAL, text_bytes(template[position:]), ""))
        self._parts = tuple(parts)
        self._body_only = self._parts == ((_BODY, b"", ""),)
        self.uses_timestamp = any(part[0] == _TIMESTAMP for part in parts)
        self.uses_url = any(part[0] == _URL for part in parts)
        self.uses_body = any(part[0] == _BODY for part in parts)
        self._fields = {
            name: BodyField(name, f"{where}.signed")
            for kind, _, name in parts
            if kind == _BODY_VALUE
        }

    @property
    def reads_body_values(self) -> bool:
        return bool(self._fields)

    @staticmethod
    def _placeholder(name: str, id_header: str | None, where: str) -> tuple[int, bytes, str]:
        if name in _NAMED:
            return _NAMED[name], b"", ""
        if name == "id":
            if not id_header:
                raise VerifyConfigError(f"{where}.signed: {{id}} needs id_header")
            return _HEADER_VALUE, b"", id_header.lower()
        if name.startswith(_HEADER) and len(name) > len(_HEADER):
            return _HEADER_VALUE, b"", name[len(_HEADER) :].strip().lower()
        if name.startswith(_BODY_VALUE_PREFIX) and len(name) > len(_BODY_VALUE_PREFIX):
            return _BODY_VALUE, b"", name[len(_BODY_VALUE_PREFIX) :].strip()
        raise VerifyConfigError(
            f"{where}.signed: unknown placeholder {{{name}}}: expected {{body}}, {{timestamp}}, "
            "{url}, {id}, {header:Name} or {body:path}"
        )

    def render(
        self, request: WebhookRequest, timestamp: str | None, document: BodyDocument | None = None
    ) -> bytes:
        if self._body_only:
            return request.body
        chunks: list[bytes] = []
        for kind, literal, name in self._parts:
            if kind == _BODY:
                chunks.append(request.body)
            elif kind == _LITERAL:
                chunks.append(literal)
            elif kind == _TIMESTAMP:
                if timestamp is None:  # the build checks a timestamp is declared
                    raise VerificationFailed("missing timestamp")
                chunks.append(timestamp.encode("ascii"))
            elif kind == _URL:
                chunks.append(text_bytes(request.url))
            elif kind == _BODY_VALUE:
                if document is None:  # the message passes the body when a value is read
                    raise VerificationFailed(f"body has no {name}")
                chunks.append(text_bytes(self._fields[name].read(document)))
            else:
                header = request.headers.get(name)
                if header is None:
                    raise VerificationFailed(f"missing header {name}")
                chunks.append(wire_bytes(header))
        return b"".join(chunks)
