"""Probing each integration's ``api.health`` request in the background, per tenant with the
credentials, and reporting per integration x tenant what the admin API, `gateway health`,
/metrics and the admin UI show.

A probe goes through the outbound engine (`OutboundClient.probe`): the integration's
authentication and rate limit apply, its circuit breaker neither refuses nor counts it. Each
(integration, tenant) is probed every ``api.health.every`` seconds (default 60), jittered by
up to a tenth either way, with at most one probe in flight.

Status, from the worst down:

- ``down``: the last probe failed (an error, a timeout, a status outside ``expect``), or the
  circuit breaker is open;
- ``degraded``: up, but slow (over ``api.health.slow``, default 2 s), the breaker half-open,
  or jobs went dead in the last hour;
- ``healthy``: up;
- ``unknown``: not probed yet, or no ``api.health`` declared;
- ``unconfigured``: no tenant has the credentials the ``api`` section reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.config.model import DEFAULT_TENANT, Config
from gateway.errors import GatewayError
from gateway.outbound.client import OutboundResult
from gateway.outbound.failures import PermanentError, RetryableError
from gateway.store.entities import EventQuery, JobQuery
from gateway.store.interfaces import CredentialStore, EventsAndJobs
from gateway.sync.scheduler import eligible_tenants

log = logging.getLogger("gateway.health")

STATUSES = ("healthy", "degraded", "down", "unconfigured", "unknown")
WORST_FIRST = ("down", "degraded", "unknown", "healthy", "unconfigured")
WINDOW = 60  # probes the latency percentiles are taken over
HOUR = 3600.0
ERROR_LIMIT = 300
REFRESH_EVERY = 300.0  # seconds between looks for tenants whose credentials were just stored
JITTER = 0.1
DEAD_JOBS_SCANNED = 500


class Prober(Protocol):
    """What the health checks need of the outbound engine."""

    async def probe(self, integration: str, tenant: str) -> OutboundResult: ...

    def health(self) -> dict[str, dict[str, Any]]: ...


class HealthStore(EventsAndJobs, CredentialStore, Protocol):
    """Events and jobs in the last hour, and who has credentials."""


@dataclass
class ProbeState:
    """What the probes of one integration x tenant found."""

    integration: str
    tenant: str
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    up: bool | None = None  # None: never probed
    last_error: str | None = None
    last_success_at: float | None = None
    checked_at: float | None = None
    in_flight: bool = False
    due: float = 0.0


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None for none)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered) - 1e-9)))
    return ordered[rank - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def headroom(limiter: Mapping[str, Any]) -> dict[str, int | None]:
    """Calls left in each rate-limit window (and concurrent slots); None: no such limit."""
    found: dict[str, int | None] = {
        name: max(0, window["limit"] - window["count"])
        for name, window in limiter.get("windows", {}).items()
    }
    concurrent = limiter.get("concurrent")
    found["concurrent"] = (
        None if concurrent is None else max(0, concurrent - limiter.get("in_flight", 0))
    )
    return found


class HealthChecks:
    def __init__(
        self,
        config: Config,
        store: HealthStore,
        outbound: Prober,
        environ: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.outbound = outbound
        self.environ = environ
        self.clock = clock
        self.timer = timer
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self.states: dict[tuple[str, str], ProbeState] = {}
        self._running: set[asyncio.Task[ProbeState]] = set()
        self._refreshed = False

    def probed(self) -> list[str]:
        """The integrations that declare ``api.health``."""
        return sorted(
            name
            for name, integration in self.config.integrations.items()
            if integration.api is not None and integration.api.health is not None
        )

    async def refresh(self) -> None:
        """Find the tenants with the credentials of each probed integration."""
        stored: dict[str, set[str]] = {}
        for tenant, integration, _name, _updated in await self.store.list_credentials():
            stored.setdefault(tenant, set()).add(integration)
        now = self.clock()
        wanted: set[tuple[str, str]] = set()
        for name in self.probed():
            every = self._every(name)
            for tenant in eligible_tenants(self.config, name, self.environ, stored):
                wanted.add((name, tenant))
                if (name, tenant) not in self.states:
                    first = now + self.rng.uniform(0, min(every, 5.0))
                    self.states[(name, tenant)] = ProbeState(name, tenant, due=first)
        for key in set(self.states) - wanted:
            del self.states[key]
        self._refreshed = True

    def _every(self, integration: str) -> float:
        api = self.config.integrations[integration].api
        return api.health.every if api is not None and api.health is not None else 60.0

    async def probe(self, integration: str, tenant: str) -> ProbeState:
        """Probe one integration x tenant now (unless a probe of it is in flight)."""
        state = self.states.setdefault(
            (integration, tenant), ProbeState(integration, tenant, due=self.clock())
        )
        if state.in_flight:
            return state
        state.in_flight = True
        started = self.timer()
        try:
            result = await self.outbound.probe(integration, tenant)
            api = self.config.integrations[integration].api
            expect = api.health.expect if api is not None and api.health is not None else ()
            if expect and result.status not in expect:
                raise PermanentError(
                    f"{integration}.health: HTTP {result.status}, expected"
                    f" {', '.join(str(s) for s in sorted(expect))}"
                )
        except (RetryableError, PermanentError, GatewayError) as exc:
            state.up = False
            reason = getattr(exc, "reason", None) or str(exc)
            state.last_error = reason[:ERROR_LIMIT]
        except Exception as exc:  # a probe reports what went wrong; it never stops the loop
            state.up = False
            state.last_error = f"{type(exc).__name__}: {str(exc)[:ERROR_LIMIT]}"
            log.warning(
                "health probe of %s for %s failed unexpectedly: %s", integration, tenant, exc
            )
        else:
            state.up = True
            state.last_error = None
            state.last_success_at = self.clock()
        finally:
            state.latencies.append(self.timer() - started)
            state.checked_at = self.clock()
            state.in_flight = False
            every = self._every(integration)
            state.due = self.clock() + every * self.rng.uniform(1 - JITTER, 1 + JITTER)
        return state

    async def probe_all(self) -> None:
        """Probe every integration x tenant once, now, concurrently (`gateway health`)."""
        await self.refresh()
        await asyncio.gather(*(self.probe(i, t) for i, t in list(self.states)))

    async def run(
        self,
        stop: asyncio.Event,
        *,
        tick: float = 1.0,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        """Probe each integration x tenant when it is due, until `stop` is set. Replicas on one
        PostgreSQL probe once between them: only while `leading()` (the leader's lease) does
        this process probe; the others keep what they last probed themselves (`unknown` until
        they have led)."""
        refreshed = -REFRESH_EVERY
        try:
            while not stop.is_set():
                now = self.clock()
                if now - refreshed >= REFRESH_EVERY:
                    try:
                        await self.refresh()
                    except Exception:
                        log.exception("health checks could not list tenants; trying again")
                    refreshed = now
                for state in list(self.states.values()) if leading() else ():
                    if not state.in_flight and state.due <= now:
                        task = asyncio.create_task(self.probe(state.integration, state.tenant))
                        self._running.add(task)
                        task.add_done_callback(self._running.discard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=tick)
        finally:
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    # ---- the report ---------------------------------------------------------------------

    async def report(self) -> list[dict[str, Any]]:
        """One row per integration x tenant (an integration nobody can probe: one row, for
        the default tenant), sorted by integration and tenant."""
        if not self._refreshed:
            await self.refresh()
        now = self.clock()
        outbound = self.outbound.health()
        rows: list[dict[str, Any]] = []
        by_integration: dict[str, list[ProbeState]] = {}
        for state in self.states.values():
            by_integration.setdefault(state.integration, []).append(state)
        for name in sorted(self.config.integrations):
            integration = self.config.integrations[name]
            engine = outbound.get(name)
            states = sorted(by_integration.get(name, []), key=lambda s: s.tenant)
            if integration.api is None or integration.api.health is None:
                note = "declares no api" if integration.api is None else "declares no api.health"
                rows.append(await self._row(name, DEFAULT_TENANT, None, engine, now, note))
            elif not states:
                rows.append(
                    await self._row(
                        name, DEFAULT_TENANT, None, engine, now, "no tenant has the credentials"
                    )
                )
            else:
                for state in states:
                    rows.append(await self._row(name, state.tenant, state, engine, now, None))
        return rows

    async def _row(
        self,
        integration: str,
        tenant: str,
        state: ProbeState | None,
        engine: Mapping[str, Any] | None,
        now: float,
        note: str | None,
    ) -> dict[str, Any]:
        since = now - HOUR
        events = await self.store.count_events(
            EventQuery(integration=integration, tenant=tenant, since=since)
        )
        dead_jobs = sum(
            1
            for job in await self.store.list_jobs(
                JobQuery(
                    status="dead",
                    integration=integration,
                    tenant=tenant,
                    since=now - 24 * HOUR,
                    limit=DEAD_JOBS_SCANNED,
                )
            )
            if job.updated_at >= since
        )
        breaker = engine["breaker"]["state"] if engine else None
        latencies = list(state.latencies) if state else []
        row: dict[str, Any] = {
            "integration": integration,
            "tenant": tenant,
            "status": "unknown",
            "reasons": [],
            "latency_ms": {
                "last": _ms(latencies[-1]) if latencies else None,
                "p50": _ms(percentile(latencies, 0.5)),
                "p95": _ms(percentile(latencies, 0.95)),
            },
            "last_error": state.last_error if state else None,
            "last_success_at": state.last_success_at if state else None,
            "checked_at": state.checked_at if state else None,
            "breaker": breaker,
            "limiter_headroom": headroom(engine["limiter"]) if engine else {},
            "dead_jobs_last_hour": dead_jobs,
            "events_last_hour": events,
        }
        if note is not None:
            row["reasons"] = [note]
            row["status"] = "unconfigured" if note.startswith("no tenant") else "unknown"
            return row
        assert state is not None
        reasons: list[str] = []
        if state.up is None:
            row["status"] = "unknown"
            row["reasons"] = ["not probed yet"]
            return row
        if not state.up:
            reasons.append("the last probe failed")
        if breaker == "open":
            reasons.append("the circuit breaker is open")
        if reasons:
            row["status"], row["reasons"] = "down", reasons
            return row
        api = self.config.integrations[integration].api
        slow = api.health.slow if api is not None and api.health is not None else 2.0
        if latencies and latencies[-1] > slow:
            reasons.append(f"slow: the last probe took over {slow:g}s")
        if breaker == "half_open":
            reasons.append("the circuit breaker is half-open")
        if dead_jobs:
            reasons.append(f"{dead_jobs} dead jobs in the last hour")
        row["status"] = "degraded" if reasons else "healthy"
        row["reasons"] = reasons
        return row


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows grouped per integration, each with its worst status across its tenants."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["integration"], []).append(row)
    return [
        {"name": name, "status": worst([r["status"] for r in tenants]), "tenants": tenants}
        for name, tenants in grouped.items()
    ]


def worst(statuses: list[str]) -> str:
    for status in WORST_FIRST:
        if status in statuses:
            return status
    return "unknown"
