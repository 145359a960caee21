"""An httpx transport that sends with aiohttp: the outbound engine keeps httpx's requests,
answers and errors (and the transport seam tests replace), and gets aiohttp's connection
pool, which costs a fraction of httpcore's with many calls in flight (`python -m
bench.http_clients` measures both side by side).

The body is passed on as received (aiohttp does not decompress it): httpx decodes it by its
Content-Encoding, as with its own transport. aiohttp's failures become the httpx exceptions
the engine classifies (`outbound.classify`): timeouts, connect errors, broken connections.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx

KEEPALIVE = 15.0  # seconds an idle connection is kept for the next call


def _timeout(request: httpx.Request) -> aiohttp.ClientTimeout:
    found: dict[str, Any] = request.extensions.get("timeout") or {}
    return aiohttp.ClientTimeout(
        total=None,
        connect=found.get("connect"),
        sock_connect=found.get("connect"),
        sock_read=found.get("read"),
    )


class AiohttpTransport(httpx.AsyncBaseTransport):
    """`limit`: connections open at once in all; idle ones are kept `keepalive` seconds."""

    def __init__(self, *, limit: int = 200, keepalive: float = KEEPALIVE) -> None:
        self._limit = limit
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=self._keepalive)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            trust_env=True,  # HTTP(S)_PROXY and NO_PROXY, as httpx honours them
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),  # every call stands alone
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        content = request.content  # built whole by the engine (never a stream)
        headers = [
            (key, value)
            for key, value in request.headers.multi_items()
            if key not in ("host", "content-length")  # aiohttp writes both itself
        ]
        try:
            async with session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=content or None,
                allow_redirects=False,
                timeout=_timeout(request),
            ) as answer:
                body = await answer.read()
                raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.raw_headers]
                return httpx.Response(
                    answer.status,
                    headers=raw,
                    content=body,
                    request=request,
                    extensions={"http_version": b"HTTP/1.1"},
                )
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
        except (TimeoutError, aiohttp.SocketTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise httpx.RemoteProtocolError(
                str(exc) or type(exc).__name__, request=request
            ) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
