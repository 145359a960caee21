"""(c-pg xN) Ingest on PostgreSQL with one and with two replicas of ``gateway serve --role
ingest`` on one schema: a wrk per replica, each with its share of the connections, at once.

The figure that matters is how ingest scales with replicas on one database; on a machine with
two cores (wrk, the replicas and PostgreSQL all share them) it says little about a real
deployment, and the notes say so.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.ingest import LoadSettings
from bench.postgres import URL, _run
from bench.procs import HOST, free_port, server
from bench.signed import write_requests
from bench.targets import gateway
from bench.wrk import WrkResult, run_wrk

COUNTS = (1, 2)
POOL = 60_000  # signed events per replica and phase: more than a replica takes in a run


def _unpinned(argv: list[str]) -> list[str]:
    return argv[3:] if argv and argv[0].endswith("taskset") else argv


def _load_all(
    settings: LoadSettings, urls: list[str], workdir: Path, phase: str, seconds: int
) -> list[WrkResult]:
    results: list[WrkResult | BaseException] = [RuntimeError("not run")] * len(urls)
    files = []
    for i, _url in enumerate(urls):
        path = workdir / f"replicas-{len(urls)}-{i}-{phase}.txt"
        write_requests(path, POOL, tag=f"p{len(urls)}{i}{phase}{int(time.time()) % 1000:03d}")
        files.append(path)

    def one(i: int) -> None:
        try:
            results[i] = run_wrk(
                settings.wrk,
                urls[i],
                files[i],
                seconds=seconds,
                connections=max(1, settings.connections // len(urls)),
            )
        except BaseException as exc:  # reported by the caller
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for path in files:
        path.unlink(missing_ok=True)
    done: list[WrkResult] = []
    for found in results:
        if isinstance(found, BaseException):
            raise found
        done.append(found)
    return done


def _measure(count: int, workdir: Path, settings: LoadSettings) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    _run(f'CREATE SCHEMA "{schema}"')
    joiner = "&" if "?" in URL else "?"
    url = f"{URL}{joiner}search_path={schema}"
    try:
        ports = [free_port() for _ in range(count)]
        with ExitStack() as stack:
            for i, port in enumerate(ports):
                target = gateway(workdir, port, db_url=url)
                stack.enter_context(
                    server(
                        _unpinned(target.argv),
                        port=port,
                        log=workdir / f"replica-{count}-{i}.log",
                        env=target.env,
                        health_path=target.health_path,
                    )
                )
            urls = [f"http://{HOST}:{port}/webhooks/stripe" for port in ports]
            warm = _load_all(settings, urls, workdir, "w", settings.warmup)
            run = _load_all(settings, urls, workdir, "r", settings.seconds)
        rows = _run(f'SELECT count(*) FROM "{schema}".events', fetch=True)  # noqa: S608
    finally:
        _run(f'DROP SCHEMA "{schema}" CASCADE')
    acknowledged = sum(r.ok_2xx - r.duplicates for r in (*warm, *run))
    return {
        "replicas": count,
        "requests_per_s": round(sum(r.rps for r in run), 1),
        "p99_ms": round(max(r.p99_ms for r in run), 2),
        "non_2xx": sum(r.non_2xx for r in (*warm, *run)),
        "rows": rows,
        "lost": max(0, acknowledged - rows),
    }


def run(workdir: Path, settings: LoadSettings) -> dict[str, Any]:
    """Ingest figures for one and two replicas (raises `postgres.Unavailable` without one)."""
    found: dict[str, Any] = {
        "connections": settings.connections,
        "seconds": settings.seconds,
        "cores": os.cpu_count(),
        "runs": [_measure(count, workdir, settings) for count in COUNTS],
    }
    return found
