"""A worker records each job's outcome as the job finishes, not when its whole batch is done:
a send the provider accepted is never left unrecorded behind a job that is still waiting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from gateway.config.model import load_config
from gateway.processing.worker import Worker
from gateway.store.entities import Job, JobOutcome
from tests.helpers import REPO

CONFIG = load_config(REPO / "integrations.d", {})


def _job(job_id: str) -> Job:
    spec = json.dumps({"endpoint": "calcom.get_booking", "params": {"uid": job_id}})
    return Job(
        job_id, f"k_{job_id}", "evt_1", "flow", "a", "call", "calcom", "default", None, spec,
        "{}", "running", 1, 5, 0.0, None, None, 0.0, 0.0,
    )  # fmt: skip


class _Store:
    """Hands out one batch; records what `finish_jobs` and `extend_leases` were given."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self.finished: list[list[str]] = []
        self.extended: list[list[str]] = []
        self.recorded = asyncio.Event()

    async def claim_jobs(self, now: float, limit: int, lease: float) -> list[Job]:
        jobs, self.jobs = self.jobs, []
        return jobs

    async def finish_jobs(self, outcomes: Sequence[JobOutcome]) -> None:
        self.finished.append([o.job_id for o in outcomes])
        self.recorded.set()

    async def extend_leases(self, job_ids: Sequence[str], until: float) -> None:
        self.extended.append(list(job_ids))


class _Caller:
    """`slow` waits for `release`; every other call answers at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def call(self, integration: str, endpoint: str, **kwargs: Any) -> Any:
        if kwargs["params"]["uid"] == "slow":
            await self.release.wait()
        return {"ok": True}


def test_a_finished_job_is_recorded_while_another_of_its_batch_still_runs() -> None:
    async def scenario() -> None:
        store = _Store([_job("fast"), _job("slow")])
        caller = _Caller()
        worker = Worker(CONFIG, store, caller, lease=0.06)  # type: ignore[arg-type]
        batch = asyncio.create_task(worker.run_once())
        await asyncio.wait_for(store.recorded.wait(), 5)
        assert store.finished == [["fast"]]
        await asyncio.sleep(0.05)  # a heartbeat renews only the job still running
        assert store.extended and all(ids == ["slow"] for ids in store.extended)
        assert not batch.done()
        caller.release.set()
        assert await asyncio.wait_for(batch, 5) == 2
        assert store.finished == [["fast"], ["slow"]]
        assert worker.counters.job_attempts[("calcom", "succeeded")] == 2

    asyncio.run(scenario())


def test_outcomes_that_finish_together_share_one_write() -> None:
    async def scenario() -> None:
        store = _Store([_job(f"j{i}") for i in range(5)])
        worker = Worker(CONFIG, store, _Caller())  # type: ignore[arg-type]
        assert await worker.run_once() == 5
        assert sorted(j for write in store.finished for j in write) == [f"j{i}" for i in range(5)]
        assert len(store.finished) < 5

    asyncio.run(scenario())
