"""A fast stand-in for the providers the shipped booking flows call (Twilio, SendGrid, Google
Calendar and its token endpoint) and for the one-call flow's `acme`: a plain ASGI app that
answers at once, as the sandbox's rules would, so the gateway is what a run measures."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from bench.bookings import answer


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    status, headers, body = answer(scope["method"], scope["path"])
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
