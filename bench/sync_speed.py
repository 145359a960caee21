"""Sync speed: a 100 000-record sync, 100 records a page, through the real engine (outbound
client, pagination, record planning, SQLite commits per page) against an in-process mock
provider that makes each page when asked (so the provider holds no records either).

`run()` measures the records per second of one run and how far that run raised the process's
resident memory (Linux: the peak RSS, reset before the run), then the peak of Python
allocations (tracemalloc, which slows a run down) of an identical run next to that of a run a
tenth the size: a sync that streams has about the same peak whatever the total.

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

from gateway.config.envsubst import SecretRef
from gateway.config.model import Config, build_config
from gateway.credentials.secrets import SecretSource
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


def _status_kib(field: str) -> int | None:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM), None where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        return False
    return True


def _one(total: int, *, traced: bool) -> tuple[RunSummary, float, int]:
    """(summary, seconds, peak bytes: tracemalloc's when traced, else the RSS rise)."""
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        gc.collect()
        before = _status_kib("VmRSS") if _reset_peak_rss() else None
        if traced:
            tracemalloc.start()
        started = time.perf_counter()
        summary = asyncio.run(_sync(Path(tmp), total))
        seconds = time.perf_counter() - started
        if traced:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        else:
            high = _status_kib("VmHWM")
            peak = (high - before) * 1024 if high is not None and before is not None else -1
    if summary.status != "succeeded" or summary.counts.created != total:
        raise RuntimeError(f"the bench sync did not succeed: {summary.summary()}")
    return summary, seconds, peak


def run(records: int = RECORDS) -> dict[str, Any]:
    """records/s of a `records`-record sync (100 a page) and the peak memory of that run."""
    summary, seconds, rss = _one(records, traced=False)
    _, _, peak = _one(records, traced=True)
    small = max(records // 10, PAGE)
    _, _, small_peak = _one(small, traced=True)
    return {
        "records": records,
        "page_size": PAGE,
        "pages": summary.counts.pages,
        "seconds": round(seconds, 3),
        "records_per_s": round(records / seconds),
        "rss_peak_rise_mib": round(rss / 2**20, 2) if rss >= 0 else None,
        "peak_mib": round(peak / 2**20, 2),  # tracemalloc: Python allocations at their peak
        f"peak_mib_at_{small}_records": round(small_peak / 2**20, 2),
        "streams": peak < 2 * small_peak + 2**20,
    }


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(), indent=2))
