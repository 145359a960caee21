"""Plain ASGI for the hot routes (webhooks, in-call functions): reading a bounded body and
sending a finished reply.

The webhook route is served without Starlette's middleware stack, routing and Request and
Response objects: they cost about as much CPU per request as verifying, parsing and storing
the event does (see the README's Performance section). Everything else stays on Starlette.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from gateway.errors import error_body

JSON = b"application/json"
_NO_BODY = frozenset({204, 304})
Headers = Sequence[tuple[bytes, bytes]]


class BodyTooLarge(Exception):
    pass


class Reply(NamedTuple):
    status: int
    body: bytes
    content_type: bytes = JSON
    headers: Headers = ()

    async def send(self, send: Send) -> None:
        if self.status < 200 or self.status in _NO_BODY:  # nor length, nor type (RFC 9110)
            headers, body = list(self.headers), b""
        else:
            headers = [
                (b"content-type", self.content_type),
                (b"content-length", str(len(self.body)).encode()),
                *self.headers,
            ]
            body = self.body
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def error_reply(status: int, message: str, code: str | None = None) -> Reply:
    """`error_response` for the plain-ASGI route: the same shape, as a Reply."""
    return Reply(status, json.dumps(error_body(status, message, code)).encode())


async def read_body(receive: Receive, limit: int | None, declared: str | None = None) -> bytes:
    """The request body, never more than `limit` bytes read, whatever Content-Length claims.
    Raises BodyTooLarge, or ClientDisconnect when the client goes away first."""
    if (
        limit is not None
        and declared is not None
        and declared.isascii()
        and declared.isdigit()
        and int(declared) > limit
    ):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise BodyTooLarge
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def route_path(scope: Scope) -> str:
    """The path the app routes on: the request path without a mount's `root_path` (only at a
    segment boundary: root "/web" is not a prefix of "/webhooks/...")."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if len(path) == len(root):
        return ""
    return path[len(root) :] if path[len(root)] == "/" else path


def query_pairs(raw: bytes) -> list[tuple[str, str]]:
    """A raw query string as (name, value) pairs, blanks kept."""
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True) if raw else []


def media_type(value: str) -> bytes:
    """As Starlette sends it: text types get a charset unless they name one."""
    if value.startswith("text/") and "charset" not in value.lower():
        value += "; charset=utf-8"
    return value.encode("latin-1")
