"""The aiohttp transport under httpx: requests go out as built (headers, body, no defaults of
aiohttp's own added), answers come back as httpx answers (a compressed body decoded), and
aiohttp's failures are the httpx errors the engine classifies."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable

import httpx
import pytest

from gateway.outbound.aiohttp_transport import AiohttpTransport
from tests.helpers.servers import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def _run(handler: Handler, call: Callable[[str], Awaitable[object]]) -> object:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    async def main() -> object:
        server = await asyncio.start_server(closing, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await call(f"http://127.0.0.1:{port}")
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(main())


def _request(url: str, read_timeout: float = 5.0) -> httpx.Request:
    return httpx.Request(
        "POST",
        f"{url}/v1/things?a=1",
        headers={"Authorization": "Bearer t0ken", "X-Gateway-Job": "job_1"},
        content=b'{"id": 7}',
        extensions={"timeout": {"connect": 5.0, "read": read_timeout, "write": 5.0, "pool": 5.0}},
    )


async def _send(request: httpx.Request) -> httpx.Response:
    transport = AiohttpTransport()
    try:
        response = await transport.handle_async_request(request)
        await response.aread()
        return response
    finally:
        await transport.aclose()


def test_the_request_goes_out_as_built_and_the_answer_comes_back_decoded() -> None:
    seen: list[tuple[bytes, bytes]] = []
    body = gzip.compress(b'{"sid": "SM1"}')

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await _read_request(reader))
        writer.write(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Message-Id: m-9\r\n"
            b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()

    response = _run(handler, lambda url: _send(_request(url)))
    assert isinstance(response, httpx.Response)
    assert response.status_code == 201
    assert response.headers["x-message-id"] == "m-9"
    assert response.json() == {"sid": "SM1"}
    [(head, sent)] = seen
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/things?a=1 HTTP/1.1"
    fields = [line.split(": ", 1) for line in lines[1:] if line]
    names = [name.lower() for name, _ in fields]
    values = {name.lower(): value for name, value in fields}
    assert values["authorization"] == "Bearer t0ken" and values["x-gateway-job"] == "job_1"
    assert names.count("content-length") == 1 and names.count("host") == 1
    assert not {"user-agent", "accept-encoding"} & set(names)  # only what httpx built
    assert sent == b'{"id": 7}'


def test_an_answer_that_never_comes_is_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    with pytest.raises(httpx.ReadTimeout):
        _run(handler, lambda url: _send(_request(url, read_timeout=0.2)))


def test_a_closed_port_is_a_connect_error() -> None:
    request = _request(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(httpx.ConnectError):
        asyncio.run(_send(request))


def test_a_connection_closed_without_an_answer_is_a_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)

    with pytest.raises(httpx.RemoteProtocolError):
        _run(handler, lambda url: _send(_request(url)))
