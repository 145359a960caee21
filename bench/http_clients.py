"""HTTP clients side by side: CPU per call of the same POST to the fast stand-in (another
process, on core 1), 32 calls in flight, as the workers make them. The outbound engine is
built on httpx (its transport is the seam tests replace); this says what the client costs
and what another would.

`python -m bench.http_clients` prints the figures.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench.booking_load import stand_in
from gateway.outbound.aiohttp_transport import AiohttpTransport

CALLS = 3000
IN_FLIGHT = 32
BODY = {"to": "+4915112345678", "body": "Your appointment is confirmed" * 4}


async def _cpu_per_call(call: Callable[[], Awaitable[None]], calls: int) -> float:
    for _ in range(100):
        await call()
    started = time.process_time()
    for _ in range(calls // IN_FLIGHT):
        await asyncio.gather(*(call() for _ in range(IN_FLIGHT)))
    return (time.process_time() - started) / (calls // IN_FLIGHT * IN_FLIGHT) * 1e6


async def _httpx(
    url: str, limits: httpx.Limits, transport: httpx.AsyncBaseTransport | None = None
) -> float:
    async with httpx.AsyncClient(limits=limits, transport=transport) as client:

        async def call() -> None:
            (await client.post(url, json=BODY)).raise_for_status()

        return await _cpu_per_call(call, CALLS)


async def _aiohttp(url: str) -> float:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call() -> None:
            async with session.post(url, data=json.dumps(BODY).encode()) as response:
                response.raise_for_status()
                await response.read()

        return await _cpu_per_call(call, CALLS)


def measure() -> dict[str, Any]:
    results: dict[str, Any] = {"calls": CALLS, "in_flight": IN_FLIGHT}
    with stand_in(Path(tempfile.mkdtemp(prefix="bench-http-"))) as base:
        url = f"{base}/twilio/2010-04-01/Accounts/AC1/Messages.json"
        results["httpx_default_pool_us"] = round(
            asyncio.run(
                _httpx(url, httpx.Limits(max_connections=200, max_keepalive_connections=8))
            ),
            1,
        )
        results["httpx_tuned_pool_us"] = round(
            asyncio.run(
                _httpx(url, httpx.Limits(max_connections=200, max_keepalive_connections=64))
            ),
            1,
        )
        tuned = httpx.Limits(max_connections=200, max_keepalive_connections=64)
        results["httpx_on_aiohttp_transport_us"] = round(
            asyncio.run(_httpx(url, tuned, AiohttpTransport())), 1
        )
        try:
            results["aiohttp_us"] = round(asyncio.run(_aiohttp(url)), 1)
        except ImportError:
            results["aiohttp_us"] = None
    return results


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
