"""The provider side: a raw ASGI handler that records a request and answers from the rules.

It runs outside Starlette's middleware on purpose: the fault modes need the server's own
``send``. ``drop`` closes the connection before anything is sent (uvicorn's protocol object
is reached through its bound ``send``; the client sees "server disconnected without sending a
response"); on a server without that, it degrades to a response cut off after its headers.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import anyio
from starlette.types import Receive, Scope, Send

from gateway.expr.expressions import RENDER_ERRORS
from gateway.sandbox.recording import RecordedRequest, decode_headers, parse_body
from gateway.sandbox.rules import Answer, ResponseRule
from gateway.sandbox.state import Sandbox
from gateway.sandbox.templating import utc_iso

log = logging.getLogger("gateway.sandbox")


async def serve_provider(sandbox: Sandbox, scope: Scope, receive: Receive, send: Send) -> None:
    body = await _read_body(receive)
    headers = decode_headers(scope["headers"])
    text = body.decode("utf-8", "replace")
    parsed_json, form = parse_body(text, headers.get("content-type", ""))
    incoming = RecordedRequest(
        seq=0,
        method=scope["method"],
        path=scope["path"],
        query=parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True),
        headers=headers,
        body=text,
        json=parsed_json,
        form=form,
        received_at=time.time(),
    )
    matched = sandbox.receive(incoming)
    rule = matched.rule
    if rule is None:
        await _send(send, _default_answer(sandbox.default_status, incoming))
        return
    await _pause(sandbox, rule.delay_seconds)
    if rule.fault == "drop":
        await _drop(receive, send)
        return
    try:
        answer = rule.answer(_context(matched.request, rule, matched.wildcards))
    except RENDER_ERRORS as exc:
        log.warning("sandbox rule %r failed to render: %s", rule.label, exc)
        sandbox.amend(matched.request.seq, status=500)
        answer = _error(500, "sandbox_template_error", f"rule {rule.label!r}: {exc}")
    if rule.fault == "truncate":
        await _truncate(receive, send, answer)
    else:
        await _send(send, answer)


def _context(request: RecordedRequest, rule: ResponseRule, wildcards: list[str]) -> dict[str, Any]:
    now = datetime.now(UTC)
    token = uuid.uuid4()
    return {
        "request": {
            "method": request.method,
            "path": request.path,
            "query": request.query_params,
            "headers": request.headers,
            "body": request.body,
            "json": request.json,
            "form": request.form,
        },
        "seq": request.seq,
        "uuid": str(token),
        "uuid_hex": token.hex,
        "now": utc_iso(now),
        "timestamp": int(now.timestamp()),
        "wildcards": wildcards,
        "groups": rule.groups(request.path),
    }


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _pause(sandbox: Sandbox, seconds: float) -> None:
    """Sleep, but stop early when the sandbox shuts down (so it never hangs a shutdown)."""
    deadline = anyio.current_time() + seconds
    while not sandbox.closing:
        left = deadline - anyio.current_time()
        if left <= 0:
            return
        await anyio.sleep(min(left, 0.05))


def _error(status: int, code: str, message: str) -> Answer:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return Answer(status, headers, body)


def _default_answer(status: int, request: RecordedRequest) -> Answer:
    if status >= 400:
        return _error(status, "no_rule", f"no sandbox rule for {request.method} {request.path}")
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    return Answer(status, headers, b"{}")


async def _send(send: Send, answer: Answer) -> None:
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})


async def _close_connection(receive: Receive, send: Send) -> bool:
    """Close the client connection under the server's feet; False when it cannot be reached."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    close = getattr(transport, "close", None)
    if not callable(close):
        return False
    close()
    with anyio.move_on_after(1.0):  # the server notices on its next loop turn
        while (await receive())["type"] != "http.disconnect":
            pass
    return True


class DroppedConnection(Exception):
    """Raised to the server when the connection cannot be closed directly (not uvicorn)."""


async def _drop(receive: Receive, send: Send) -> None:
    if await _close_connection(receive, send):
        return
    # Another server: promise a body, then fail; servers cut such a response off, and
    # starlette's TestClient raises this exception to the test.
    headers = [(b"content-type", b"application/json"), (b"content-length", b"1024")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    raise DroppedConnection("sandbox rule dropped the connection")


async def _truncate(receive: Receive, send: Send, answer: Answer) -> None:
    """Headers promise the whole body, half of it is sent, then the connection closes."""
    promised = str(len(answer.body) or 16).encode()
    headers = [(k, v) for k, v in answer.headers if k != b"content-length"]
    headers.append((b"content-length", promised))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    half = answer.body[: len(answer.body) // 2]
    await send({"type": "http.response.body", "body": half, "more_body": True})
    await _close_connection(receive, send)
