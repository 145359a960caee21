"""In-call function latency: what the gateway adds to a function call (verification, step
rendering, the outbound engine, the answer, storing the invocation), beside a bare httpx call
to the same sandbox endpoint, in one run.

The function door is driven in-process (httpx's ASGI transport: no HTTP server in front of
it), and its one step calls a real sandbox over loopback, as the bare call does; the
provider's time is in both, so the difference is the gateway's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.config.model import load_config
from gateway.credentials.secrets import SecretSource
from gateway.functions.engine import FunctionEngine
from gateway.functions.route import FunctionRoute
from gateway.outbound.client import OutboundClient
from gateway.outbound.tokens import MemoryTokenStore
from gateway.sandbox.server import running_sandbox
from gateway.store import SQLiteStore

SECRET = "bench-function-secret"
INTEGRATION = """\
kind: integration
name: voice
api:
  base_url: ${VOICE_BASE_URL}
  rate_limit: {per_second: 100000, concurrent: 64}
  circuit_breaker: {failure_threshold: 5, success_threshold: 2, timeout: 60s}
  endpoints:
    slots: {method: GET, path: /slots}
webhook:
  verify:
    scheme: hmac
    algorithm: sha256
    secret: ${secret:VOICE_SECRET}
    signature: {header: X-Sig}
    signed: "{body}"
  event: {id: "{{ body.id }}", type: "{{ body.type }}"}
functions:
  check_availability:
    deadline: 5s
    steps:
      - name: slots
        call:
          endpoint: voice.slots
          query: {day: "{{ args.date }}", timeZone: "{{ args.timezone | default('UTC') }}"}
    respond: >-
      {%- set starts = steps.slots.body.data | dictsort | map(attribute=1) | sum(start=[])
          | map(attribute='start') | list -%}
      The first free times are {{ starts[:3] | map('localtime', args.timezone | default('UTC'))
          | map('strftime', '%A %d %B at %H:%M') | join(', ') }}.
    fallback: I cannot see the calendar right now.
"""
SLOTS = {
    "status": "success",
    "data": {
        "2025-06-12": [
            {"start": "2025-06-12T09:00:00.000+02:00"},
            {"start": "2025-06-12T09:30:00.000+02:00"},
            {"start": "2025-06-12T10:00:00.000+02:00"},
            {"start": "2025-06-12T10:30:00.000+02:00"},
        ]
    },
}
RULES = [{"method": "GET", "path": "/voice/slots", "json": SLOTS}]
ROUNDS = 4


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _timed(calls: int, call: Any) -> list[float]:
    for _ in range(20):  # warm the pools and caches
        await call()
    found = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        found.append((time.perf_counter() - started) * 1e3)
    return found


def measure(calls: int = 800) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-functions-"))
    (folder / "integrations").mkdir()
    (folder / "integrations" / "voice.yaml").write_text(INTEGRATION)
    with running_sandbox(RULES) as sandbox:
        env = {"VOICE_SECRET": SECRET, "VOICE_BASE_URL": sandbox.url_for("voice")}
        config = load_config(folder / "integrations", env)
        body = json.dumps(
            {"name": "check_availability", "call": {"call_id": "c"}, "args": {"date": "2025-06-12"}}
        ).encode()
        signed = {"x-sig": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}

        async def run() -> tuple[list[float], list[float]]:
            store = SQLiteStore(f"sqlite:///{folder / 'gateway.db'}")
            await store.open()
            secrets = SecretSource(env)
            outbound = OutboundClient(config, secrets, MemoryTokenStore())
            engine = FunctionEngine(config, outbound, store)
            route = FunctionRoute(
                config,
                engine,
                secrets,
                public_url=None,
            )
            url = sandbox.url_for("voice") + "/slots"
            transport = httpx.ASGITransport(app=route)
            async with (
                httpx.AsyncClient() as bare,
                httpx.AsyncClient(transport=transport, base_url="http://gateway") as gateway,
            ):

                async def bare_call() -> None:
                    params = {"day": "2025-06-12", "timeZone": "UTC"}
                    (await bare.get(url, params=params)).raise_for_status()

                async def function_call() -> None:
                    answer = await gateway.post(
                        "/functions/voice/check_availability", content=body, headers=signed
                    )
                    if not answer.text.startswith("The first free times"):
                        raise RuntimeError(f"unexpected answer: {answer.text[:200]}")

                # Rounds alternate, so that drift during the run counts for neither side.
                bare_ms: list[float] = []
                function_ms: list[float] = []
                for _ in range(ROUNDS):
                    bare_ms += await _timed(calls // ROUNDS, bare_call)
                    function_ms += await _timed(calls // ROUNDS, function_call)
            await engine.drain()
            await outbound.aclose()
            await store.close()
            return bare_ms, function_ms

        bare_ms, function_ms = asyncio.run(run())
    figures: dict[str, Any] = {"calls": calls}
    for name, values in (("bare", bare_ms), ("function", function_ms)):
        figures[f"{name}_p50_ms"] = round(_percentile(values, 0.5), 3)
        figures[f"{name}_p99_ms"] = round(_percentile(values, 0.99), 3)
    figures["overhead_p50_ms"] = round(figures["function_p50_ms"] - figures["bare_p50_ms"], 3)
    figures["overhead_p99_ms"] = round(figures["function_p99_ms"] - figures["bare_p99_ms"], 3)
    figures["target_p99_ms"] = 5.0
    return figures
