"""Processing figures: events per second end to end (webhook -> flow -> outbound call to the
sandbox) on one gateway process, and the outbound engine's cost per call beside a bare httpx
call to the same sandbox, in the same run."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.procs import HOST, free_port, pinned, server
from bench.targets import GATEWAY_BIN, SERVER_CPU
from gateway.config.model import load_config
from gateway.credentials.secrets import SecretSource
from gateway.outbound.client import OutboundClient
from gateway.outbound.tokens import MemoryTokenStore
from gateway.sandbox.server import running_sandbox

LOAD_CPU = 1

SECRET = "bench-processing-secret"
TOKEN = "bench-api-token"
INTEGRATION = """\
kind: integration
name: acme
api:
  base_url: ${ACME_BASE_URL}
  auth: {type: bearer, token: "${secret:ACME_TOKEN}"}
  rate_limit: {per_second: 100000, concurrent: 64}
  circuit_breaker: {failure_threshold: 5, success_threshold: 2, timeout: 60s}
  endpoints:
    create_thing: {method: POST, path: /things}
webhook:
  verify:
    scheme: hmac
    algorithm: sha256
    secret: ${secret:ACME_SECRET}
    signature: {header: X-Acme-Signature}
    signed: "{body}"
  event: {id: "{{ body.id }}", type: "{{ body.type }}"}
  map:
    thing.made:
      emit: thing.created
      data: {id: "{{ body.id }}", name: "{{ body.name }}"}
"""
FLOW = """\
kind: flow
name: forward
event: thing.created
actions:
  - call:
      endpoint: acme.create_thing
      body: {id: "{{ event.data.id }}", name: "{{ event.data.name }}"}
"""
RULES = [{"method": "POST", "path": "/acme/things", "status": 201, "json": {"ok": True}}]


def _folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-processing-"))
    (folder / "integrations").mkdir()
    (folder / "integrations" / "acme.yaml").write_text(INTEGRATION)
    (folder / "integrations" / "flow.yaml").write_text(FLOW)
    return folder


def sign(body: bytes) -> str:
    """The acme integration's X-Acme-Signature: hex HMAC-SHA256 of the body."""
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def _post_all(url: str, count: int, tag: str, workers: int = 16) -> int:
    """Post `count` signed events from `workers` threads, each with one kept-alive client."""

    def post_range(first: int) -> int:
        ok = 0
        with httpx.Client(timeout=30) as client:
            for n in range(first, count, workers):
                body = json.dumps({"id": f"{tag}-{n}", "type": "thing.made", "name": f"n{n}"})
                signature = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
                response = client.post(url, content=body, headers={"X-Acme-Signature": signature})
                ok += response.status_code == 200
        return ok

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(post_range, range(workers)))


def _succeeded(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return int(
            connection.execute("SELECT count(*) FROM jobs WHERE status = 'succeeded'").fetchone()[0]
        )


@contextlib.contextmanager
def _sandbox_process(folder: Path) -> Iterator[str]:
    """The sandbox in its own process (not sharing a GIL with the load), on the load's core."""
    rules = folder / "rules.yaml"
    rules.write_text(yaml.safe_dump(RULES))
    port = free_port()
    argv = pinned(
        LOAD_CPU,
        [str(GATEWAY_BIN), "sandbox", "--host", HOST, "--port", str(port), "--responses",
         str(rules), "--log-level", "warning"],
    )  # fmt: skip
    with server(argv, port=port, log=folder / "sandbox.log", health_path="/_sandbox/health"):
        yield f"http://{HOST}:{port}"


def end_to_end(events: int = 3000, timeout: float = 120.0) -> dict[str, Any]:
    folder = _folder()
    with _sandbox_process(folder) as sandbox_url:
        port = free_port()
        db = folder / "gateway.db"
        argv = pinned(
            SERVER_CPU,
            [str(GATEWAY_BIN), "serve", "--host", HOST, "--port", str(port), "--role", "all",
             "--integrations", str(folder / "integrations"), "--db", f"sqlite:///{db}",
             "--log-level", "warning"],
        )  # fmt: skip
        env = {
            **os.environ,
            "ACME_SECRET": SECRET,
            "ACME_TOKEN": TOKEN,
            "ACME_BASE_URL": f"{sandbox_url}/acme",
        }
        with server(argv, port=port, log=folder / "gateway.log", env=env, health_path="/healthz"):
            started = time.monotonic()
            accepted = _post_all(f"http://{HOST}:{port}/webhooks/acme", events, tag=str(port))
            ingested = time.monotonic() - started
            done = 0
            while time.monotonic() - started < timeout:
                done = _succeeded(db)
                if done >= accepted:
                    break
                time.sleep(0.05)
            elapsed = time.monotonic() - started
        received = httpx.get(f"{sandbox_url}/_sandbox/requests", params={"path_prefix": "/acme"})
    return {
        "events": events,
        "accepted": accepted,
        "jobs_succeeded": done,
        "calls_received": len(received.json().get("requests", [])),
        "seconds": round(elapsed, 2),
        "ingest_seconds": round(ingested, 2),
        "events_per_s": round(done / elapsed, 1) if elapsed else None,
    }


async def _time_calls(calls: int, call: Any) -> float:
    for _ in range(50):  # warm the connection pool and caches
        await call()
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls * 1e6


ROUNDS = 4


def outbound_overhead(calls: int = 2000) -> dict[str, Any]:
    folder = _folder()
    with running_sandbox(RULES) as sandbox:
        env = {"ACME_SECRET": SECRET, "ACME_TOKEN": TOKEN, "ACME_BASE_URL": sandbox.url_for("acme")}
        config = load_config(folder / "integrations", env)
        body = {"id": "x", "name": "y"}

        async def measure() -> tuple[float, float]:
            url = sandbox.url_for("acme") + "/things"
            auth = {"Authorization": f"Bearer {TOKEN}"}
            engine = OutboundClient(config, SecretSource(env), MemoryTokenStore())
            async with httpx.AsyncClient() as bare:

                async def bare_call() -> None:
                    (await bare.post(url, json=body, headers=auth)).raise_for_status()

                async def engine_call() -> None:
                    await engine.call("acme", "create_thing", tenant="default", body=body)

                # Rounds alternate, and each side keeps its best: the sandbox and the machine
                # warm up and drift during a run, which must not count for either side.
                bare_us, engine_us = float("inf"), float("inf")
                for _ in range(ROUNDS):
                    bare_us = min(bare_us, await _time_calls(calls // ROUNDS, bare_call))
                    engine_us = min(engine_us, await _time_calls(calls // ROUNDS, engine_call))
            await engine.aclose()
            return bare_us, engine_us

        bare_us, engine_us = asyncio.run(measure())
    return {
        "calls": calls,
        "bare_httpx_us": round(bare_us, 1),
        "engine_us": round(engine_us, 1),
        "overhead_us": round(engine_us - bare_us, 1),
        "ratio": round(engine_us / bare_us, 2),
    }
