"""Scheduled syncs run on the leader only: every replica keeps the schedule, one runs it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.config.model import load_config
from gateway.store.leadership import Leadership
from gateway.store.sync_model import SyncKey
from gateway.sync.scheduler import SyncScheduler
from tests.helpers import REPO

CONFIG = load_config(REPO / "integrations.d", {})


class _Runs:
    def __init__(self) -> None:
        self.runs: list[tuple[str, str, str]] = []

    async def run(self, integration: str, sync: str, tenant: str) -> Any:
        self.runs.append((integration, sync, tenant))
        return type("Summary", (), {"status": "succeeded", "key": None, "error": None})()


class _Held:
    """A shared database where another replica holds the role."""

    async def claim_leadership(self, name: str, holder: str, lease: float) -> int | None:
        return None


def test_a_replica_that_does_not_lead_skips_its_scheduled_runs() -> None:
    async def scenario() -> None:
        follower = Leadership(_Held(), lease=30)  # type: ignore[arg-type]
        await follower.claim()
        runner = _Runs()
        skipped = SyncScheduler(CONFIG, None, runner, {}, leadership=follower)  # type: ignore[arg-type]
        await skipped.fire("acme", "things", "default")
        assert runner.runs == []
        alone = SyncScheduler(CONFIG, None, runner, {})  # type: ignore[arg-type]
        await alone.fire("acme", "things", "default")  # no shared database: it leads
        assert runner.runs == [("acme", "things", "default")]

    asyncio.run(scenario())


class _Leading:
    async def claim_leadership(self, name: str, holder: str, lease: float) -> int | None:
        return 1


class _Starts:
    def __init__(self, started: float) -> None:
        self.started = started

    async def last_sync_starts(self) -> dict[SyncKey, float]:
        return {SyncKey("calcom", "default", "bookings"): self.started}


@pytest.mark.parametrize(("ago", "runs"), [(100.0, 0), (900.0 / 2 + 1, 1)])
def test_a_new_leader_leaves_a_run_due_soon_after_the_last_start_to_the_next(
    ago: float, runs: int
) -> None:
    async def scenario() -> None:
        leader = Leadership(_Leading(), lease=30)  # type: ignore[arg-type]
        await leader.claim()
        runner = _Runs()
        now = 1_750_000_000.0
        scheduler = SyncScheduler(
            CONFIG,
            _Starts(now - ago),  # type: ignore[arg-type]
            runner,  # type: ignore[arg-type]
            {},
            leadership=leader,
            clock=lambda: now,
        )
        await scheduler.fire("calcom", "bookings", "default")  # every 15m
        assert len(runner.runs) == runs

    asyncio.run(scenario())
