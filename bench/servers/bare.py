"""(a) The floor: a bare Starlette app that reads the body and answers 200 JSON."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def receive(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"status": "accepted"})


app = Starlette(
    routes=[
        Route("/webhooks/stripe", receive, methods=["POST"]),
        Route("/webhooks/calcom/demo", receive, methods=["POST"]),  # the booking load's path
    ]
)
