"""Retention: finished events and jobs older than the window are forgotten, nothing else."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from gateway.store import SQLiteStore
from gateway.store.entities import Dispatch, JobOutcome, JobQuery, NewEvent, NewJob


def _event(n: int, received_at: float) -> NewEvent:
    return NewEvent(
        f"evt_{n:04d}", "acme", "default", f"key-{n}", f"p{n}", "t", received_at, "{}", b"{}"
    )


def _job(n: int, created_at: float) -> NewJob:
    return NewJob(
        f"job_{n:04d}", f"k{n}", f"evt_{n:04d}", "flow", "a", "call", "acme", "default", None,
        json.dumps({"endpoint": "acme.x"}), "{}", created_at, 5, created_at,
    )  # fmt: skip


def test_purge_forgets_only_finished_things_older_than_the_window(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = SQLiteStore(f"sqlite:///{tmp_path / 'g.db'}")
        await store.open()
        now = time.time()
        old = now - 40 * 86400
        await store.insert_events([_event(1, old), _event(2, old), _event(3, old), _event(4, now)])
        await store.commit_dispatches(
            [
                Dispatch("evt_0001", "ignored"),  # finished, old: purged
                Dispatch("evt_0002", "dispatched", [_job(2, old)]),  # its job is still queued
                Dispatch("evt_0004", "ignored"),  # finished but recent: kept
            ]
        )  # evt_0003 is still pending: kept
        events, jobs = await store.purge(now - 30 * 86400)
        assert (events, jobs) == (1, 0)
        assert await store.get_event("evt_0001") is None
        for kept in ("evt_0002", "evt_0003", "evt_0004"):
            assert await store.get_event(kept) is not None
        again = await store.insert_events([_event(1, now)])  # a repeat after the window: new
        assert again[0].duplicate is False
        await store.finish_jobs([JobOutcome("job_0002", "succeeded")])
        assert await store.purge(time.time() + 1) == (2, 1)  # finished ones; pending stay
        assert await store.list_jobs(JobQuery()) == []
        await store.close()

    asyncio.run(scenario())
