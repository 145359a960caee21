"""The signed-bytes template (``{timestamp}.{body}``), parsed once into literal and value parts.

``{body:path}`` stands for one value of the JSON body (Mailgun signs ``{timestamp}`` and
``{body:signature.token}``), as text: a string as it is, an integer in decimal. ``{method}`` is
the request's method, ``{path}`` the public URL's path (and query, if any), and
``{listed_headers}`` the headers the request lists as signed (Contentful signs
``{method}\n{path}\n{listed_headers}\n{body}``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from gateway.verify.body_values import BodyDocument, BodyField
from gateway.verify.encoding import text_bytes, wire_bytes
from gateway.verify.listed_headers import ListedHeaders
from gateway.verify.options import VerifyConfigError
from gateway.verify.verifier import VerificationFailed, WebhookRequest

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_HEADER = "header:"
_BODY_VALUE_PREFIX = "body:"

# Part kinds. A part is (kind, literal bytes, lower-cased header name or body path).
_LITERAL, _BODY, _TIMESTAMP, _URL, _HEADER_VALUE, _BODY_VALUE, _METHOD, _PATH, _LISTED = range(9)
_NAMED = {
    "body": _BODY,
    "timestamp": _TIMESTAMP,
    "url": _URL,
    "method": _METHOD,
    "path": _PATH,
    "listed_headers": _LISTED,
}


class SignedTemplate:
    __slots__ = (
        "_body_only",
        "_fields",
        "_listed",
        "_parts",
        "uses_body",
        "uses_timestamp",
        "uses_url",
    )

    def __init__(
        self,
        template: str,
        *,
        id_header: str | None,
        where: str = "verify",
        listed: ListedHeaders | None = None,
    ) -> None:
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
        self.uses_url = any(part[0] in (_URL, _PATH) for part in parts)
        if listed is None and any(part[0] == _LISTED for part in parts):
            raise VerifyConfigError(
                f"{where}.signed: {{listed_headers}} needs a 'listed_headers' declaration"
            )
        self._listed = listed
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
            "{url}, {id}, {method}, {path}, {listed_headers}, {header:Name} or {body:path}"
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
            elif kind == _METHOD:
                chunks.append(text_bytes(request.method))
            elif kind == _PATH:
                chunks.append(text_bytes(_path(request.url)))
            elif kind == _LISTED:
                assert self._listed is not None  # the build checks it is declared
                chunks.append(self._listed.render(request.headers))
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


def _path(url: str) -> str:
    """The path and query of a URL as written (the public URL the provider called)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
