"""Sync speed: a 100 000-record sync, 100 records a page, through the real engine (outbound
client, pagination, record planning, SQLite commits per page) against an in-process mock
provider that makes each page when asked (so the provider holds no records either).

`run()` measures the records per second of one run, then the peak memory (tracemalloc) of a
second, identical run on a fresh database, next to the peak of a run a tenth the size: a
sync that streams has (about) the same peak whatever the total.

    python -c "from bench.sync_speed import run; print(run())"
"""

from __future__ import annotations

import asyncio
import gc
import json
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

from gateway.config import Config, build_config
from gateway.credentials import SecretSource
from gateway.envsubst import SecretRef
from gateway.outbound import MemoryTokenStore, OutboundClient
from gateway.store import SQLiteStore
from gateway.sync.runner import RunSummary, SyncRunner

RECORDS = 100_000
PAGE = 100
BASE = "https://api.bench.test"


def _config() -> Config:
    spec = {
        "kind": "integration",
        "name": "bench",
        "api": {
            "base_url": BASE,
            "auth": {"type": "bearer", "token": SecretRef("BENCH_KEY")},
            "endpoints": {"list_items": {"method": "GET", "path": "/items"}},
        },
        "syncs": {
            "items": {
                "endpoint": "list_items",
                "schedule": {"every": "1h"},
                "query": {"limit": PAGE},
                "paginate": {
                    "style": "cursor",
                    "cursor_param": "starting_after",
                    "cursor": "{{ response.data[-1].id if response.has_more else '' }}",
                    "has_more": "{{ response.has_more }}",
                },
                "records": "{{ response.data }}",
                "record": {"id": "{{ record.id }}", "updated_at": "{{ record.updated }}"},
                "incremental": {"style": "since", "param": "updated[gte]"},
            }
        },
    }
    return build_config([("integration", "bench.yaml", spec)], Path("templates"), {})


def _provider(total: int) -> httpx.MockTransport:
    def page(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("starting_after")
        start = int(after.removeprefix("it_")) + 1 if after else 0
        end = min(start + PAGE, total)
        data = [
            {
                "id": f"it_{n}",
                "object": "item",
                "name": f"Item number {n}",
                "amount": n % 9973,
                "currency": "eur",
                "updated": 1_750_000_000 + n,
                "metadata": {"order": str(n), "source": "bench"},
            }
            for n in range(start, end)
        ]
        body = json.dumps({"object": "list", "data": data, "has_more": end < total})
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    return httpx.MockTransport(page)


async def _sync(folder: Path, total: int) -> RunSummary:
    config = _config()
    environ = {"BENCH_KEY": "sk_bench"}
    store = SQLiteStore(f"sqlite:///{folder / 'bench.db'}")
    await store.open()
    outbound = OutboundClient(
        config, SecretSource(environ), MemoryTokenStore(), transport=_provider(total)
    )
    try:
        return await SyncRunner(config, store, outbound).run("bench", "items", "default")
    finally:
        await outbound.aclose()
        await store.close()


def _one(total: int, *, traced: bool) -> tuple[RunSummary, float, int]:
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        gc.collect()
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        summary = asyncio.run(_sync(Path(tmp), total))
        seconds = time.perf_counter() - started
        peak = 0
        if traced:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    if summary.status != "succeeded" or summary.counts.created != total:
        raise RuntimeError(f"the bench sync did not succeed: {summary.summary()}")
    return summary, seconds, peak


def run(records: int = RECORDS) -> dict[str, Any]:
    """records/s of a `records`-record sync (100 a page) and the peak memory of that run."""
    summary, seconds, _ = _one(records, traced=False)
    _, _, peak = _one(records, traced=True)
    _, _, small_peak = _one(max(records // 10, PAGE), traced=True)
    return {
        "records": records,
        "page_size": PAGE,
        "pages": summary.counts.pages,
        "seconds": round(seconds, 3),
        "records_per_s": round(records / seconds),
        "peak_mib": round(peak / 2**20, 2),
        f"peak_mib_at_{max(records // 10, PAGE)}_records": round(small_peak / 2**20, 2),
        "streams": peak < 2 * small_peak + 2**20,
    }


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(), indent=2))
