"""Ingest throughput: wrk on one core POSTs signed, unique Stripe events to a server on another."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import (
    HOST,
    ServerError,
    cpu_seconds,
    free_port,
    peak_rss_kib,
    server,
    tail,
    wait_until_quiet,
)
from bench.targets import Target
from bench.wrk import WrkResult, run_wrk

MAX_WARM_RPS = 30_000  # sizes the warm-up pool; the run's pool follows the warm-up's rate
BUSY_WARNING_PCT = 10.0  # CPU use of other processes, measured before each server starts
QUIET_WAIT_S = 10.0  # how long to wait for such load to go away before starting anyway


@dataclass(frozen=True)
class LoadSettings:
    wrk: str
    seconds: int = 10
    warmup: int = 3
    connections: int = 64


def _load(
    target: Target,
    url: str,
    workdir: Path,
    settings: LoadSettings,
    tag: str,
    seconds: int,
    pool: int,
) -> WrkResult:
    requests_file = workdir / f"{target.key}-{tag}.txt"
    target.write(requests_file, pool, f"{target.key[0]}{tag}{int(time.time()) % 100000}")
    try:
        return run_wrk(
            settings.wrk,
            url,
            requests_file,
            seconds=seconds,
            connections=settings.connections,
            header=target.header,
        )
    finally:
        requests_file.unlink(missing_ok=True)


def measure(
    make_target: Callable[[Path, int], Target], workdir: Path, settings: LoadSettings
) -> dict[str, Any]:
    """Start the target, warm it up, load it, and return its figures (raises on failure)."""
    port = free_port()
    target = make_target(workdir, port)
    try:
        return _measure(target, port, workdir, settings)
    finally:
        if target.cleanup is not None:
            target.cleanup()


def _measure(target: Target, port: int, workdir: Path, settings: LoadSettings) -> dict[str, Any]:
    url = f"http://{HOST}:{port}{target.path}"
    log = workdir / f"{target.key}.log"
    warm_pool = int(MAX_WARM_RPS * settings.warmup)
    background = wait_until_quiet(BUSY_WARNING_PCT, QUIET_WAIT_S)
    with server(
        target.argv, port=port, log=log, env=target.env, health_path=target.health_path
    ) as proc:
        warm = _load(target, url, workdir, settings, "w", settings.warmup, warm_pool)
        pool = max(50_000, int(warm.rps * settings.seconds * 1.5) + 20_000)
        cpu_before = cpu_seconds(proc.pid)
        run = _load(target, url, workdir, settings, "r", settings.seconds, pool)
        cpu_after = cpu_seconds(proc.pid)
        rss = peak_rss_kib(proc.pid)
        if proc.poll() is not None:
            raise ServerError(f"{target.label} died during the run; see {log}")
    result: dict[str, Any] = {"label": target.label, **run.as_dict()}
    result["peak_rss_mib"] = round(rss / 1024, 1) if rss else None
    # The server's own CPU per answered request: what a busy machine skews least.
    if cpu_before is not None and cpu_after is not None and run.requests:
        result["server_cpu_us"] = round((cpu_after - cpu_before) / run.requests * 1e6, 1)
    result["warmup"] = {
        "requests_per_s": round(warm.rps, 1),
        "ok_2xx": warm.ok_2xx,
        "non_2xx": warm.non_2xx,
        "sent": warm.sent,
    }
    result["notes"] = list(target.notes)
    result["background_cpu_pct"] = background
    if background is not None and background > BUSY_WARNING_PCT:
        result["notes"].append(
            f"the machine was {background:.0f}% busy before the run: other load skews the figures"
        )
    if target.rows is not None:
        result["durability"] = _durability(target.rows(), warm, run)
    result["wrk_output"] = run.output
    if warm.non_2xx or run.non_2xx or warm.socket_errors or run.socket_errors:
        result["server_log_tail"] = tail(log, 40)
    return result


def _durability(rows: int, warm: WrkResult, run: WrkResult) -> dict[str, Any]:
    """Rows in the store against the 2xx answers wrk saw (warm-up and run share the store).

    wrk stops with up to one request per connection in flight: the server may commit those
    without wrk counting the answer, so acknowledged <= rows <= sent is the invariant.
    """
    acknowledged = warm.ok_2xx + run.ok_2xx - warm.duplicates - run.duplicates
    sent = warm.sent + run.sent
    return {
        "rows": rows,
        "ok_2xx": warm.ok_2xx + run.ok_2xx,
        "duplicates": warm.duplicates + run.duplicates,
        "sent": sent,
        "unanswered_in_flight": sent - warm.requests - run.requests,
        "rows_minus_2xx": rows - acknowledged,
        "lost": max(0, acknowledged - rows),
        "ok": acknowledged <= rows <= sent,
    }
