"""Scheduled syncs run on the leader only: every replica keeps the schedule, one runs it."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.config.model import load_config
from gateway.store.leadership import Leadership
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
