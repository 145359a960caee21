"""Scheduling: when a sync runs next (a pure function of the clock and the last run), which
tenants it runs for, and APScheduler firing a run on time with an injected clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import apscheduler.schedulers.base
import httpx
import pytest

from gateway.config.envsubst import SecretRef
from gateway.config.model import build_config, load_config
from gateway.config.syncs import Schedule
from gateway.expr.expressions import tenant_vars_needed
from gateway.sync.scheduler import SyncScheduler, eligible_tenants, next_run
from gateway.sync.spec import declared_syncs
from tests.helpers import REPO
from tests.helpers.sync_harness import T0, Clock, Harness, thing

NOW = datetime(2026, 11, 24, 10, 7, tzinfo=UTC)
EVERY_15M = Schedule(every=900)


def test_an_interval_counts_from_the_last_run() -> None:
    assert next_run(NOW, EVERY_15M, NOW - timedelta(minutes=10)) == NOW + timedelta(minutes=5)
    assert next_run(NOW, EVERY_15M, NOW - timedelta(minutes=15)) == NOW


def test_an_overdue_interval_runs_at_once_and_a_new_sync_waits_one_interval() -> None:
    assert next_run(NOW, EVERY_15M, NOW - timedelta(hours=5)) == NOW
    assert next_run(NOW, EVERY_15M, None) == NOW + timedelta(minutes=15)


def test_cron_fires_at_its_next_time_and_catches_up_once_after_downtime() -> None:
    quarter = Schedule(cron="*/15 * * * *")
    assert next_run(NOW, quarter, None) == datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
    assert next_run(NOW, quarter, NOW - timedelta(minutes=2)) == datetime(
        2026, 11, 24, 10, 15, tzinfo=UTC
    )
    assert next_run(NOW, quarter, NOW - timedelta(minutes=20)) == NOW  # 10:00 was missed


def test_cron_reads_in_the_tenants_time_zone() -> None:
    nightly = Schedule(cron="0 3 * * *")
    assert next_run(NOW, nightly, None, "Europe/Berlin") == datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    assert next_run(NOW, nightly, None) == datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def _config(api_auth: Any, tenants: list[dict[str, Any]]) -> Any:
    spec = {
        "kind": "integration",
        "name": "acme",
        "api": {"base_url": "https://api.acme.test", "auth": api_auth, "endpoints": {}},
    }
    documents = [("integration", "acme.yaml", spec)]
    documents += [("tenant", f"{t['name']}.yaml", {"kind": "tenant", **t}) for t in tenants]
    return build_config(documents, Path("templates"), {})


def test_tenants_with_credentials_for_the_integration() -> None:
    config = _config(
        {"type": "bearer", "token": SecretRef("ACME_KEY")},
        [{"name": "demo"}, {"name": "other", "integrations": ["stripe"]}],
    )
    assert eligible_tenants(config, "acme", {"ACME_KEY": "k"}, {}) == ["default"]
    assert eligible_tenants(config, "acme", {}, {}) == []  # no secret: nothing to sync with
    stored = {"demo": {"acme"}, "other": {"acme"}, "late": {"acme"}, "x": {"stripe"}}
    # "other" does not use acme; "late" has credentials but no tenant document
    assert eligible_tenants(config, "acme", {}, stored) == ["demo", "late"]


def test_an_api_without_secrets_syncs_for_every_declared_tenant() -> None:
    config = _config({"type": "none"}, [{"name": "demo"}])
    assert eligible_tenants(config, "acme", {}, {}) == ["default", "demo"]


def test_a_tenant_without_the_variables_a_sync_reads_is_not_scheduled() -> None:
    config = _config(
        {"type": "none"},
        [{"name": "demo", "vars": {"mailbox": "m@x"}}, {"name": "bare"}],
    )
    needs = frozenset({"mailbox"})
    assert eligible_tenants(config, "acme", {}, {}, needs) == ["demo"]
    assert eligible_tenants(config, "acme", {}, {}) == ["default", "bare", "demo"]


@pytest.mark.parametrize(
    ("source", "needed"),
    [
        ("{{ tenant.vars.mailbox }}", {"mailbox"}),
        ("{{ tenant.vars['mailbox'] ~ tenant.vars.other }}", {"mailbox", "other"}),
        ("{{ tenant.vars.start | default(now | isoformat) }}", set()),
        ("{{ tenant.vars.x if tenant.vars.x is defined else 'y' }}", set()),
        ("{{ tenant.name }} {{ body.vars.mailbox }}", set()),
        ("{{ broken", set()),
        ("{{ tenant.vars.get('region', 'eu') }}", set()),  # a method, not a variable
        ("{{ tenant.vars.items() | list }}", set()),
        ("{{ tenant.vars.account.id | default('') }}", set()),  # guarded deeper down
        ("{{ tenant.vars.account.id }}", {"account"}),
    ],
)
def test_tenant_vars_a_template_needs(source: str, needed: set[str]) -> None:
    assert tenant_vars_needed(source) == needed


def test_the_shipped_outlook_sync_runs_only_for_tenants_naming_a_mailbox() -> None:
    env = {"OUTLOOK_CLIENT_SECRET": "s", "OUTLOOK_CLIENT_STATE": "state"}
    config = load_config(REPO / "integrations.d", env)
    (spec,) = [s for s in declared_syncs(config) if s.label == "outlook.events"]
    assert spec.tenant_vars == {"outlook_user"}
    # The environment's credentials are the default tenant's, which names no mailbox: it used
    # to be scheduled, and failed every 30 minutes.
    assert eligible_tenants(config, "outlook", env, {}) == ["default"]
    assert eligible_tenants(config, "outlook", env, {}, spec.tenant_vars) == []
    stored = {"demo": {"outlook"}}
    assert eligible_tenants(config, "outlook", env, stored, spec.tenant_vars) == ["demo"]


class FakeDatetime(datetime):
    """APScheduler 3 reads `datetime.now` of its module: this one reads the test's clock."""

    clock: ClassVar[Clock] = Clock()

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.fromtimestamp(cls.clock(), tz)


SYNC = """
    endpoint: list_things
    schedule: {every: 15m}
    records: "{{ response.data }}"
    record: {id: "{{ record.id }}"}
"""


def test_a_scheduled_run_fires_on_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def provider(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [thing(1)]})

    async def runs(h: Harness, count: int) -> list[Any]:
        for _ in range(500):  # the run itself is real I/O (SQLite); its timing is not
            found = await h.runs()
            if len(found) >= count and found[0].status != "running":
                return found
            await asyncio.sleep(0.01)
        raise AssertionError(f"expected {count} runs, found {len(found)}")

    async def main() -> None:
        async with Harness(tmp_path, SYNC, provider) as h:
            monkeypatch.setattr(FakeDatetime, "clock", h.clock)
            monkeypatch.setattr(apscheduler.schedulers.base, "datetime", FakeDatetime)
            h.clock.now = T0 - 600  # the last run was ten minutes ago
            assert (await h.run()).status == "succeeded"
            h.clock.now = T0
            scheduler = SyncScheduler(h.config, h.store, h.runner, h.environ, clock=h.clock)
            await scheduler.start()
            try:
                job = scheduler.job(h.key)
                due = datetime.fromtimestamp(T0 + 300, UTC)
                assert job is not None and job.next_run_time == due

                h.clock.now = T0 + 299
                assert scheduler.scheduler is not None
                scheduler.scheduler.wakeup()
                for _ in range(5):
                    await asyncio.sleep(0)
                assert len(await h.runs()) == 1  # not yet

                h.clock.now = T0 + 300
                scheduler.scheduler.wakeup()
                latest = (await runs(h, 2))[0]
                assert (latest.started, latest.status) == (T0 + 300, "succeeded")
                assert latest.counts.unchanged == 1
                after = datetime.fromtimestamp(T0 + 300 + 900, UTC)
                assert scheduler.job(h.key).next_run_time == after
            finally:
                await scheduler.stop()

    asyncio.run(main())


def test_stopping_cancels_a_running_sync_which_logs_itself_failed(tmp_path: Path) -> None:
    entered = asyncio.Event()

    async def hang(_request: httpx.Request) -> httpx.Response:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def main() -> None:
        async with Harness(tmp_path, SYNC, hang) as h:
            scheduler = SyncScheduler(h.config, h.store, h.runner, h.environ, clock=h.clock)
            scheduler.spawn(h.runner.run("acme", "things", "default"))
            await entered.wait()
            await scheduler.stop()
            [run] = await h.runs()
            assert (run.status, run.error) == ("failed", "cancelled (the gateway stopped)")
            assert (await h.state()).run_id is None

    asyncio.run(main())
