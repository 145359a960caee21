"""Running one sync for one tenant: take the lease, page through the endpoint, commit each
page (its records, its events, the run's counters and the point to resume from) in one
transaction, and on the last page commit the new incremental cursor and end the run.

Pages stream: a page's records are read, committed and dropped before the next is fetched.
A run that fails keeps its resume point, so the next run goes on from the last committed page
with the incremental state the failed run started from; the cursor moves only when a run
commits its last page. A provider's "expired" status (Google 410 Gone) restarts the run once
as a full sync. Transient errors (429, 5xx, network) are retried with the integration's
backoff before the run gives up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.config.model import Config
from gateway.config.syncs import SyncSpec
from gateway.expr.expressions import RENDER_ERRORS, render_value
from gateway.ids import new_id
from gateway.outbound.caller import Caller, Response
from gateway.outbound.classify import retry_delay
from gateway.outbound.failures import OutboundError, RetryableError
from gateway.store.interfaces import SyncStore
from gateway.store.sync_model import (
    LeaseLost,
    PageCommit,
    PagePlan,
    StoredRecord,
    SyncCounts,
    SyncKey,
    SyncState,
)
from gateway.sync import incremental, pagination
from gateway.sync.events import deliveries, event_factory
from gateway.sync.incremental import Progress
from gateway.sync.pagination import Position
from gateway.sync.records import page_records, plan_page, read_record
from gateway.sync.spec import SyncError, find_sync

log = logging.getLogger("gateway.sync")
DEFAULT_LEASE = 600.0
ERROR_LIMIT = 2000


@dataclass(frozen=True)
class RunSummary:
    key: SyncKey
    run_id: str | None
    status: str  # succeeded | failed | skipped
    counts: SyncCounts = field(default_factory=SyncCounts)
    error: str | None = None
    full: bool = False
    resumed: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "integration": self.key.integration,
            "sync": self.key.sync,
            "tenant": self.key.tenant,
            **self.counts.as_dict(),
            "status": self.status,
            "full": self.full,
            "resumed": self.resumed,
            "error": self.error,
        }


@dataclass(frozen=True)
class StartedRun:
    """A run that holds its sync's lease and is logged as running."""

    spec: SyncSpec
    key: SyncKey
    run_id: str
    state: SyncState
    full: bool


@dataclass
class _Run:
    started: StartedRun
    tenant: dict[str, Any]
    progress: Progress
    position: Position
    resumed: bool
    counts: SyncCounts = field(default_factory=SyncCounts)
    restarted: bool = False


class SyncRunner:
    def __init__(
        self,
        config: Config,
        store: SyncStore,
        caller: Caller,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        lease: float = DEFAULT_LEASE,
        on_events: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.caller = caller
        self.clock = clock
        self.sleep = sleep
        self.lease = lease
        self.on_events = on_events
        self.rng = rng

    async def run(
        self, integration: str, sync: str, tenant: str, *, full: bool = False
    ) -> RunSummary:
        """Run the sync now; "skipped" when another run of it holds the lease."""
        started = await self.start(integration, sync, tenant, full=full)
        if started is None:
            key = SyncKey(integration, tenant, sync)
            return RunSummary(key, None, "skipped", error="another run of this sync is running")
        return await self.execute(started)

    async def start(
        self, integration: str, sync: str, tenant: str, *, full: bool = False
    ) -> StartedRun | None:
        """Take the lease and log the run; None when another run holds it. Raises SyncError
        for a sync that is not declared."""
        spec = find_sync(self.config, integration, sync)
        key = SyncKey(integration, tenant, sync)
        run_id = new_id("run")
        now = self.clock()
        state = await self.store.acquire_sync(key, run_id, now=now, lease_until=now + self.lease)
        return None if state is None else StartedRun(spec, key, run_id, state, full)

    async def execute(self, started: StartedRun) -> RunSummary:
        """Page through the sync until its last page is committed, or it fails."""
        run = self._begin(started)
        key = started.key
        try:
            while await self._page(run):
                pass
        except (SyncError, OutboundError, LeaseLost) as exc:
            error = (getattr(exc, "reason", None) or str(exc))[:ERROR_LIMIT]
            log.warning("sync %s run %s failed: %s", key, started.run_id, error)
            await self._finish(run, "failed", error)
            return self._summary(run, "failed", error)
        except asyncio.CancelledError:
            await self._finish(run, "failed", "cancelled (the gateway stopped)")
            raise
        log.info("sync %s run %s: %s", key, started.run_id, run.counts.as_dict())
        return self._summary(run, "succeeded", None)

    def _begin(self, started: StartedRun) -> _Run:
        spec, state = started.spec, started.state
        tenant = self.config.tenant_variables(started.key.tenant)
        if started.full:
            progress = Progress()
            return _Run(started, tenant, progress, pagination.first(spec.paginate), False)
        if state.resume:
            saved = json.loads(state.resume)
            progress = Progress.load(saved["progress"])
            return _Run(started, tenant, progress, Position.load(saved["position"]), True)
        progress = Progress(json.loads(state.cursor) if state.cursor else {})
        first = pagination.first(spec.paginate, incremental.start_url(spec, progress))
        return _Run(started, tenant, progress, first, False)

    async def _page(self, run: _Run) -> bool:
        """Fetch, plan and commit one page; False when it was the last."""
        spec, key = run.started.spec, run.started.key
        try:
            result = await self._fetch(run)
        except OutboundError as exc:
            expired = spec.incremental.expired_status if spec.incremental else None
            if expired is None or exc.status != expired or run.restarted:
                raise
            log.warning("sync %s: %s: the stored state expired, running a full sync", key, exc)
            run.progress = Progress()
            run.position = pagination.first(spec.paginate)
            run.restarted, run.resumed = True, False
            return True
        try:
            response = result.json()
        except ValueError as exc:
            raise SyncError(f"the response is not JSON: {exc}") from None
        records = page_records(spec, response, run.tenant)
        incoming = [read_record(spec, r, run.tenant, i) for i, r in enumerate(records)]
        delivered = (
            deliveries(
                self.config.integrations[key.integration],
                spec,
                key.tenant,
                run.tenant,
                records,
                incoming,
                self.clock(),
            )
            if spec.as_webhook is not None
            else None
        )
        del records
        headers = {k.lower(): v for k, v in result.headers.items()}
        run.progress.observe(incoming)
        run.progress.observe_token(spec, {"response": response, "tenant": run.tenant})
        after = pagination.follow(
            spec.paginate,
            run.position,
            response=response,
            headers=headers,
            count=len(incoming),
            tenant=run.tenant,
            base_url=self._base_url(spec),
        )
        now = self.clock()
        final = after is None
        resume = (
            None
            if after is None
            else json.dumps({"position": after.dump(), "progress": run.progress.dump()})
        )
        make_event = (
            event_factory(key.integration, key.tenant, key.sync, self.clock) if spec.emit else None
        )

        def plan(stored: Mapping[str, StoredRecord]) -> PagePlan:
            return plan_page(spec, incoming, stored, make_event, delivered)

        commit = PageCommit(
            key=key,
            run_id=run.started.run_id,
            record_ids=[r.record_id for r in incoming],
            plan=plan,
            resume=resume,
            cursor=json.dumps(run.progress.cursor(spec)) if final else None,
            final=final,
            full=run.progress.full,
            resumed=run.resumed,
            lease_until=now + self.lease,
            now=now,
        )
        planned = await self.store.commit_sync_page(commit)
        run.counts.add(planned.counts)
        if planned.events and self.on_events is not None:
            self.on_events()
        if after is not None:
            run.position = after
        return not final

    async def _fetch(self, run: _Run) -> Response:
        spec, key = run.started.spec, run.started.key
        query, body, params = self._request(run)
        policy = self.caller.retry_policy(key.integration)
        attempt = 1
        while True:
            try:
                return await self.caller.call(
                    key.integration,
                    spec.endpoint,
                    tenant=key.tenant,
                    params=params,
                    query=query,
                    body=body,
                    url=run.position.url,
                )
            except RetryableError as exc:
                if attempt >= policy.max_attempts:
                    raise
                await self.sleep(retry_delay(exc, attempt, policy, self.rng))
                attempt += 1

    def _request(self, run: _Run) -> tuple[Any, Any, dict[str, Any]]:
        """(query, body, params) of the page at the run's position."""
        spec = run.started.spec
        now = datetime.fromtimestamp(self.clock(), UTC)
        variables = {
            "tenant": run.tenant,
            "state": incremental.state_variables(run.progress),
            "now": now,
        }
        try:
            params = render_value(dict(spec.params), variables)
            query = render_value(spec.query, variables)
            body = render_value(spec.body, variables)
        except RENDER_ERRORS as exc:
            raise SyncError(f"sync {spec.label}: a template of the request failed: {exc}") from None
        if run.position.url is not None:
            return None, body, params
        query, body = incremental.apply(spec, run.progress, query, body, tenant=run.tenant, now=now)
        query, body = pagination.with_position(spec.paginate, run.position, query, body)
        return query, body, params

    def _base_url(self, spec: SyncSpec) -> str:
        api = self.config.integrations[spec.integration].api
        return api.base_url if api is not None else ""

    async def _finish(self, run: _Run, status: str, error: str | None) -> None:
        started = run.started
        await self.store.finish_sync_run(
            started.key,
            started.run_id,
            status=status,
            error=error,
            now=self.clock(),
            full=run.progress.full,
            resumed=run.resumed,
        )

    def _summary(self, run: _Run, status: str, error: str | None) -> RunSummary:
        return RunSummary(
            run.started.key,
            run.started.run_id,
            status,
            run.counts,
            error,
            full=run.progress.full,
            resumed=run.resumed,
        )
