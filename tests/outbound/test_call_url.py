"""`OutboundClient.call(url=...)`: a next page or delta link is called with the endpoint's
method, headers and authentication, without its default query, and only on the api's host."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config.envsubst import SecretRef
from gateway.config.model import build_config
from gateway.credentials.secrets import SecretSource
from gateway.outbound import MemoryTokenStore, OutboundClient, RequestBuildError

BASE = "https://graph.example.test/v1.0"


def _client(requests: list[httpx.Request]) -> OutboundClient:
    spec = {
        "kind": "integration",
        "name": "graph",
        "api": {
            "base_url": BASE,
            "auth": {"type": "bearer", "token": SecretRef("GRAPH_TOKEN")},
            "endpoints": {
                "delta": {
                    "method": "GET",
                    "path": "/users/{user}/delta",
                    "headers": {"Prefer": "odata.maxpagesize=50"},
                    "query": {"$select": "subject"},
                }
            },
        },
    }
    config = build_config([("integration", "graph.yaml", spec)], Path("templates"), {})

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"value": []})

    return OutboundClient(
        config,
        SecretSource({"GRAPH_TOKEN": "tok"}),
        MemoryTokenStore(),
        transport=httpx.MockTransport(answer),
    )


def _call(url: str, **kwargs: Any) -> list[httpx.Request]:
    requests: list[httpx.Request] = []

    async def main() -> None:
        async with _client(requests) as client:
            await client.call("graph", "delta", tenant="default", url=url, **kwargs)

    asyncio.run(main())
    return requests


def test_an_absolute_url_is_called_as_is_with_the_endpoints_auth_and_headers() -> None:
    link = f"{BASE}/users/me/delta?$deltatoken=abc%3D%3D&$skip=2"
    [sent] = _call(link)
    assert str(sent.url) == link  # no default $select merged in, nothing re-encoded
    assert sent.method == "GET"
    assert sent.headers["authorization"] == "Bearer tok"
    assert sent.headers["prefer"] == "odata.maxpagesize=50"


def test_the_callers_own_query_is_still_merged() -> None:
    [sent] = _call(f"{BASE}/users/me/delta?$skiptoken=x", query={"extra": "1"})
    assert dict(sent.url.params) == {"$skiptoken": "x", "extra": "1"}


def test_without_url_the_endpoint_path_and_default_query_are_used() -> None:
    requests: list[httpx.Request] = []

    async def main() -> None:
        async with _client(requests) as client:
            await client.call("graph", "delta", tenant="default", params={"user": "me"})

    asyncio.run(main())
    assert str(requests[0].url) == f"{BASE}/users/me/delta?%24select=subject"


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.test/v1.0/users/me/delta",  # another host
        "http://graph.example.test/v1.0/users/me/delta",  # another scheme
        "https://graph.example.test:8443/v1.0/users/me/delta",  # another port
        "/v1.0/users/me/delta",  # not absolute
        "ftp://graph.example.test/x",
    ],
)
def test_credentials_never_go_to_another_origin(url: str) -> None:
    with pytest.raises(RequestBuildError) as failed:
        _call(url)
    assert "graph.delta" in failed.value.reason
