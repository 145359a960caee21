"""An in-process gateway app for tests: the admin token it is built with, the factory type of the
``make_client`` fixture (tests/conftest.py), and an authorised admin GET."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from starlette.testclient import TestClient

ADMIN_TOKEN = "test-admin-token"

AppFactory = Callable[..., TestClient]


def admin(client: TestClient, path: str) -> Any:
    """GET an admin API path with the admin token; asserts a 200 and answers the JSON."""
    response = client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    return response.json()


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class LoopbackOnly(httpx.AsyncBaseTransport):
    """The outbound transport of in-process test apps: calls to loopback (the provider
    sandbox, stand-ins) go out; any other host is answered 503 without leaving the machine.
    Tests never reach the internet, whatever the shipped files' default base URLs are."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host in LOOPBACK:
            return await self._inner.handle_async_request(request)
        return httpx.Response(503, text="tests do not leave loopback", request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()
