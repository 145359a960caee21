"""Running every declared sync on its schedule, for every tenant that has credentials for it.

APScheduler (AsyncIOScheduler) holds one job per (integration, sync, tenant). When a job first
runs is decided here, by `next_run`, from the last run in the sync log: an interval counts
from the last run (a sync that never ran waits one interval; run it at once with `gateway
sync`), a cron line fires at its next time, and a time missed while the gateway was down
runs at once, once. The job set is refreshed every few minutes, so a tenant whose
credentials were just stored gets its syncs without a restart.

Which tenants: ``default`` when every secret the integration's ``api`` reads is set in the
environment; any other tenant (declared, or with stored credentials) that uses the integration
when it has stored credentials for it, or when the api reads no secret at all and the tenant
is declared.

With replicas on one database, every replica keeps the schedule but only the leader
(`gateway.store.leadership`) runs it: a scheduled sync runs once, whichever replicas are up.
A new leader's interval schedules are not in phase with the old one's: a run due less than
half an interval after the sync last started (on any replica) is left to the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from gateway.config.model import DEFAULT_TENANT, Config
from gateway.config.syncs import Schedule, SyncSpec
from gateway.expr.filters import zone_or_utc
from gateway.store.interfaces import CredentialsAndSyncs
from gateway.store.leadership import Leadership
from gateway.store.sync_model import SyncKey
from gateway.sync.runner import SyncRunner
from gateway.sync.spec import declared_syncs, find_sync

log = logging.getLogger("gateway.sync")
REFRESH_EVERY = 300.0


def build_trigger(schedule: Schedule, start: datetime, timezone: str | None = None) -> Any:
    """The APScheduler trigger of a schedule; an interval counts from `start`."""
    if schedule.every is not None:
        return IntervalTrigger(seconds=schedule.every, start_date=start, timezone=UTC)
    return CronTrigger.from_crontab(str(schedule.cron), timezone=zone_or_utc(timezone))


def next_run(
    now: datetime, schedule: Schedule, last_run: datetime | None, timezone: str | None = None
) -> datetime:
    """When a sync runs next, given the last time it ran (None: never)."""
    if schedule.every is not None:
        every = timedelta(seconds=schedule.every)
        return now + every if last_run is None else max(now, last_run + every)
    trigger = CronTrigger.from_crontab(str(schedule.cron), timezone=zone_or_utc(timezone))
    if last_run is not None:
        missed = trigger.get_next_fire_time(None, last_run + timedelta(microseconds=1))
        if missed is not None and missed <= now:
            return now
    found = trigger.get_next_fire_time(None, now)
    if found is None:  # pragma: no cover - a five-field cron line always fires again
        raise ValueError(f"cron {schedule.cron!r} never fires")
    return found.astimezone(UTC)  # type: ignore[no-any-return]


def api_secrets(config: Config, integration: str) -> set[str]:
    """The names of the secrets an integration's ``api`` section reads."""
    api = config.integrations[integration].api
    return set(api.secrets) if api is not None else set()


def eligible_tenants(
    config: Config,
    integration: str,
    environ: Mapping[str, str],
    stored: Mapping[str, set[str]],
    tenant_vars: frozenset[str] = frozenset(),
) -> list[str]:
    """The tenants a sync of `integration` runs for. `stored`: tenant -> the integrations it
    has stored credentials for; `tenant_vars`: the variables a tenant must have."""
    return [
        tenant
        for tenant in _with_credentials(config, integration, environ, stored)
        if not missing_vars(config, tenant, tenant_vars)
    ]


def missing_vars(config: Config, tenant: str, needed: frozenset[str]) -> frozenset[str]:
    """The variables of `needed` the tenant does not declare."""
    declared: Mapping[str, Any] = config.tenant_variables(tenant)["vars"]
    return frozenset(needed - declared.keys())


def _with_credentials(
    config: Config,
    integration: str,
    environ: Mapping[str, str],
    stored: Mapping[str, set[str]],
) -> list[str]:
    needed = api_secrets(config, integration)
    found: list[str] = []
    if all(environ.get(name) for name in needed):
        found.append(DEFAULT_TENANT)
    for tenant in sorted(set(config.tenants) | set(stored)):
        if tenant == DEFAULT_TENANT:
            continue
        declared = config.tenants.get(tenant)
        if declared is not None and not declared.uses(integration):
            continue
        if integration in stored.get(tenant, set()) or (not needed and declared is not None):
            found.append(tenant)
    return found


def job_id(key: SyncKey) -> str:
    return f"sync:{key.integration}:{key.sync}:{key.tenant}"


class SyncScheduler:
    def __init__(
        self,
        config: Config,
        store: CredentialsAndSyncs,
        runner: SyncRunner,
        environ: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.time,
        refresh_every: float = REFRESH_EVERY,
        leadership: Leadership | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.runner = runner
        self.environ = environ
        self.clock = clock
        self.refresh_every = refresh_every
        self.leadership = leadership if leadership is not None else Leadership(None)
        self.scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._skipped: set[tuple[str, str]] = set()  # (sync, tenant) pairs already logged

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def targets(self) -> list[tuple[SyncSpec, str]]:
        stored: dict[str, set[str]] = {}
        for tenant, integration, _name, _updated in await self.store.list_credentials():
            stored.setdefault(tenant, set()).add(integration)
        found = []
        for spec in declared_syncs(self.config):
            tenants = eligible_tenants(self.config, spec.integration, self.environ, stored)
            for tenant in tenants:
                missing = missing_vars(self.config, tenant, spec.tenant_vars)
                if not missing:
                    found.append((spec, tenant))
                elif (spec.label, tenant) not in self._skipped:
                    self._skipped.add((spec.label, tenant))
                    log.info(
                        "sync %s is not scheduled for tenant %s: it has no %s",
                        spec.label,
                        tenant,
                        ", ".join(f"vars.{name}" for name in sorted(missing)),
                    )
        return found

    async def start(self) -> None:
        """Schedule every sync (call from inside the running event loop)."""
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        await self.refresh()
        self.scheduler.add_job(
            self.refresh,
            IntervalTrigger(
                seconds=self.refresh_every,
                start_date=self.now() + timedelta(seconds=self.refresh_every),
                timezone=UTC,
            ),
            id="sync:refresh",
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.start()

    async def refresh(self) -> None:
        """Add the jobs of new (sync, tenant) pairs; remove those no longer eligible."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        last = await self.store.last_sync_starts()
        now = self.now()
        wanted: set[str] = set()
        for spec, tenant in await self.targets():
            key = SyncKey(spec.integration, tenant, spec.name)
            wanted.add(job_id(key))
            if scheduler.get_job(job_id(key)) is not None:
                continue
            started = last.get(key)
            previous = datetime.fromtimestamp(started, UTC) if started is not None else None
            timezone = self._timezone(tenant)
            try:
                first = next_run(now, spec.schedule, previous, timezone)
                trigger = build_trigger(spec.schedule, first, timezone)
            except ValueError as exc:
                log.error("sync %s cannot be scheduled (%s): %s", key, spec.schedule, exc)
                continue
            scheduler.add_job(
                self.fire,
                trigger,
                args=[spec.integration, spec.name, tenant],
                id=job_id(key),
                name=str(key),
                next_run_time=first,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
            log.info("sync %s scheduled (%s), first run at %s", key, spec.schedule, first)
        for job in scheduler.get_jobs():
            if job.id.startswith("sync:") and job.id != "sync:refresh" and job.id not in wanted:
                job.remove()

    def _timezone(self, tenant: str) -> str | None:
        declared = self.config.tenants.get(tenant)
        return declared.timezone if declared else None

    async def fire(self, integration: str, sync: str, tenant: str) -> None:
        """One scheduled run (a failed run is in the sync log; it never stops the scheduler);
        none on a replica that is not the leader."""
        if not self.leadership.is_leader:
            log.debug("sync %s.%s/%s: another replica leads", integration, sync, tenant)
            return
        if self.leadership.shared is not None and await self._ran_lately(integration, sync, tenant):
            return
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            summary = await self.runner.run(integration, sync, tenant)
            if summary.status == "skipped":
                log.info("sync %s skipped: %s", summary.key, summary.error)
        except Exception:
            log.exception("sync %s.%s/%s crashed", integration, sync, tenant)
        finally:
            if task is not None:
                self._running.discard(task)

    async def _ran_lately(self, integration: str, sync: str, tenant: str) -> bool:
        """Whether an interval sync started less than half an interval ago (on whichever
        replica led then)."""
        every = find_sync(self.config, integration, sync).schedule.every
        if every is None:
            return False
        started = (await self.store.last_sync_starts()).get(SyncKey(integration, tenant, sync))
        if started is None or started <= self.clock() - every / 2:
            return False
        log.info(
            "sync %s.%s/%s ran %.1fs ago: skipped",
            integration,
            sync,
            tenant,
            self.clock() - started,
        )
        return True

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `work` (a manual run) as a task that `stop` cancels."""
        task = asyncio.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    def job(self, key: SyncKey) -> Any:
        return self.scheduler.get_job(job_id(key)) if self.scheduler is not None else None

    async def stop(self) -> None:
        """Stop scheduling; cancel running syncs (each logs itself as failed, keeping its
        resume point) and wait for them."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self.scheduler = None
