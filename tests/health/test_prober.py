"""The health checks: probes through the outbound engine (auth, rate limit, never the breaker),
the status rules, the latency window, one probe in flight, the background loop."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from gateway.config.model import Config, load_config
from gateway.credentials.secrets import SecretSource
from gateway.health.prober import HealthChecks, percentile, summarise
from gateway.outbound.client import OutboundClient
from gateway.outbound.stored_tokens import token_store
from gateway.store import SQLiteStore
from gateway.store.entities import Dispatch, JobOutcome, NewEvent, NewJob

KEY = "sk_test_health_key"
HEALTH = "{method: GET, path: /v1/me, expect: [200], every: 1s, slow: 500ms}"


def acme_yaml(health: str | None = HEALTH, rate_limit: str | None = None) -> str:
    text = (
        "kind: integration\nname: acme\napi:\n  base_url: https://api.acme.test\n"
        '  auth: {type: bearer, token: "${secret:ACME_KEY}"}\n'
        "  circuit_breaker: {failure_threshold: 2, success_threshold: 1, timeout: 60s}\n"
    )
    if rate_limit:
        text += f"  rate_limit: {rate_limit}\n"
    if health:
        text += f"  health: {health}\n"
    return text + "  endpoints:\n    ping: {method: POST, path: /ping}\n"


class Provider:
    """A stand-in for the provider: answers what `answer` says, records every request."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


class FirstBound(random.Random):
    """Jitter that always picks the lowest value: the schedule is predictable."""

    def uniform(self, a: float, b: float) -> float:
        return a


def with_store(test: Callable[[Path, SQLiteStore], Awaitable[None]]) -> Callable[[Path], None]:
    """Run an async test on an open SQLite store in a temporary folder (no async plugin)."""

    async def body(tmp_path: Path) -> None:
        store = SQLiteStore(f"sqlite:///{tmp_path / 'g.db'}")
        await store.open()
        try:
            await test(tmp_path, store)
        finally:
            await store.close()

    def run(tmp_path: Path) -> None:
        asyncio.run(body(tmp_path))

    run.__name__ = test.__name__
    run.__doc__ = test.__doc__
    return run


def config_of(tmp_path: Path, text: str, env: dict[str, str]) -> Config:
    folder = tmp_path / "integrations.d"
    folder.mkdir(exist_ok=True)
    (folder / "acme.yaml").write_text(text)
    return load_config(folder, env)


def checks_for(
    tmp_path: Path,
    store: SQLiteStore,
    provider: Provider,
    *,
    text: str | None = None,
    env: dict[str, str] | None = None,
    timer: Callable[[], float] = time.monotonic,
) -> tuple[HealthChecks, OutboundClient]:
    environ = {"ACME_KEY": KEY} if env is None else env
    config = config_of(tmp_path, text or acme_yaml(), environ)
    outbound = OutboundClient(
        config,
        SecretSource(environ, store, None),
        token_store(store, None),
        transport=httpx.MockTransport(provider),
    )
    return HealthChecks(config, store, outbound, environ, rng=FirstBound(), timer=timer), outbound


def only(rows: list[dict[str, object]]) -> dict[str, object]:
    found = [row for row in rows if row["integration"] == "acme"]
    assert len(found) == 1
    return found[0]


@with_store
async def test_a_probe_that_answers_200_is_healthy_with_its_latency(
    tmp_path: Path, store: SQLiteStore
) -> None:
    provider = Provider(lambda r: httpx.Response(200, json={"id": "me"}))
    checks, outbound = checks_for(tmp_path, store, provider)
    await checks.probe_all()
    row = only(await checks.report())
    await outbound.aclose()
    assert row["status"] == "healthy", row
    assert row["tenant"] == "default"
    request = provider.requests[0]
    assert (request.method, request.url.path) == ("GET", "/v1/me")
    assert request.headers["authorization"] == f"Bearer {KEY}"  # the engine's auth
    latency = row["latency_ms"]
    assert isinstance(latency, dict) and latency["last"] is not None and latency["last"] >= 0
    assert row["last_success_at"] is not None and row["checked_at"] is not None
    assert row["last_error"] is None
    assert row["breaker"] == "closed"


@with_store
async def test_a_failed_probe_is_down_with_the_error_redacted(
    tmp_path: Path, store: SQLiteStore
) -> None:
    provider = Provider(lambda r: httpx.Response(401, text=f"invalid key {KEY}"))
    checks, outbound = checks_for(tmp_path, store, provider)
    await checks.probe_all()
    row = only(await checks.report())
    await outbound.aclose()
    assert row["status"] == "down"
    error = str(row["last_error"])
    assert "HTTP 401" in error and KEY not in error
    assert row["last_success_at"] is None


@with_store
async def test_a_status_outside_expect_is_down(tmp_path: Path, store: SQLiteStore) -> None:
    provider = Provider(lambda r: httpx.Response(204))
    checks, outbound = checks_for(tmp_path, store, provider)
    await checks.probe_all()
    row = only(await checks.report())
    await outbound.aclose()
    assert row["status"] == "down"
    assert "HTTP 204, expected 200" in str(row["last_error"])


@with_store
async def test_probes_are_never_counted_nor_refused_by_the_circuit_breaker(
    tmp_path: Path, store: SQLiteStore
) -> None:
    provider = Provider(lambda r: httpx.Response(503))
    checks, outbound = checks_for(tmp_path, store, provider)
    for _ in range(5):
        await checks.probe("acme", "default")
    assert outbound.health()["acme"]["breaker"]["state"] == "closed"
    # a breaker opened by real calls does not stop the probes
    for _ in range(2):
        with pytest.raises(Exception, match="HTTP 503"):
            await outbound.call("acme", "ping", tenant="default")
    assert outbound.health()["acme"]["breaker"]["state"] == "open"
    before = len(provider.requests)
    await checks.probe("acme", "default")
    assert len(provider.requests) == before + 1
    row = only(await checks.report())
    await outbound.aclose()
    assert row["breaker"] == "open" and row["status"] == "down"


@with_store
async def test_probes_take_from_the_rate_limit_like_any_call(
    tmp_path: Path, store: SQLiteStore
) -> None:
    provider = Provider(lambda r: httpx.Response(200))
    text = acme_yaml(rate_limit="{per_minute: 10}")
    checks, outbound = checks_for(tmp_path, store, provider, text=text)
    await checks.probe_all()
    row = only(await checks.report())
    await outbound.aclose()
    assert row["limiter_headroom"] == {"per_minute": 9, "concurrent": None}


@with_store
async def test_without_credentials_the_integration_is_unconfigured(
    tmp_path: Path, store: SQLiteStore
) -> None:
    provider = Provider(lambda r: httpx.Response(200))
    checks, outbound = checks_for(tmp_path, store, provider, env={})
    await checks.probe_all()
    row = only(await checks.report())
    await outbound.aclose()
    assert row["status"] == "unconfigured"
    assert provider.requests == []


@with_store
async def test_before_any_probe_the_status_is_unknown(tmp_path: Path, store: SQLiteStore) -> None:
    checks, outbound = checks_for(tmp_path, store, Provider(lambda r: httpx.Response(200)))
    row = only(await checks.report())
    await outbound.aclose()
    assert (row["status"], row["reasons"]) == ("unknown", ["not probed yet"])


@with_store
async def test_no_declared_health_is_unknown(tmp_path: Path, store: SQLiteStore) -> None:
    provider = Provider(lambda r: httpx.Response(200))
    checks, outbound = checks_for(tmp_path, store, provider, text=acme_yaml(health=None))
    await checks.probe_all()
    row = only(await checks.report())
    await outbound.aclose()
    assert (row["status"], row["reasons"]) == ("unknown", ["declares no api.health"])
    assert provider.requests == []


@with_store
async def test_a_slow_probe_is_degraded(tmp_path: Path, store: SQLiteStore) -> None:
    ticks = iter([0.0, 0.9])  # started, finished: 900 ms, over `slow: 500ms`
    provider = Provider(lambda r: httpx.Response(200))
    checks, outbound = checks_for(tmp_path, store, provider, timer=lambda: next(ticks))
    await checks.probe_all()
    row = only(await checks.report())
    await outbound.aclose()
    assert row["status"] == "degraded"
    assert row["reasons"] == ["slow: the last probe took over 0.5s"]
    assert row["latency_ms"] == {"last": 900.0, "p50": 900.0, "p95": 900.0}


async def a_dead_job(store: SQLiteStore, event_id: str, now: float) -> str:
    """A job of `event_id` calling acme, claimed and finished dead, through the store."""
    job = NewJob(
        id="job_1",
        idempotency_key=f"{event_id}:flow:ping",
        event_id=event_id,
        flow="flow",
        action="ping",
        kind="call",
        integration="acme",
        tenant="default",
        schedule_key=None,
        spec="{}",
        context="{}",
        run_at=now - 1,
        max_attempts=1,
        created_at=now - 1,
    )
    await store.commit_dispatches([Dispatch(event_id, "dispatched", jobs=[job])])
    [claimed] = await store.claim_jobs(now, 10, 60)
    await store.finish_jobs([JobOutcome(claimed.id, "dead", error="HTTP 500", attempt=1)])
    return claimed.id


@with_store
async def test_dead_jobs_in_the_last_hour_degrade_and_events_are_counted(
    tmp_path: Path, store: SQLiteStore
) -> None:
    now = time.time()
    await store.insert_events(
        [NewEvent("evt_1", "acme", "default", "k1", "p1", "thing", now, "{}", b"{}")]
    )
    await a_dead_job(store, "evt_1", now)
    provider = Provider(lambda r: httpx.Response(200))
    checks, outbound = checks_for(tmp_path, store, provider)
    await checks.probe_all()
    row = only(await checks.report())
    await outbound.aclose()
    assert row["status"] == "degraded"
    assert (row["events_last_hour"], row["dead_jobs_last_hour"]) == (1, 1)
    assert row["reasons"] == ["1 dead jobs in the last hour"]


@with_store
async def test_at_most_one_probe_is_in_flight(tmp_path: Path, store: SQLiteStore) -> None:
    release = asyncio.Event()

    class Slow:
        requests = 0

        async def __call__(self, request: httpx.Request) -> httpx.Response:
            Slow.requests += 1
            await release.wait()
            return httpx.Response(200)

    config = config_of(tmp_path, acme_yaml(), {"ACME_KEY": KEY})
    outbound = OutboundClient(
        config,
        SecretSource({"ACME_KEY": KEY}, store, None),
        token_store(store, None),
        transport=httpx.MockTransport(Slow()),
    )
    checks = HealthChecks(config, store, outbound, {"ACME_KEY": KEY})
    first = asyncio.create_task(checks.probe("acme", "default"))
    await asyncio.sleep(0.05)
    await checks.probe("acme", "default")  # returns at once: one is in flight
    release.set()
    await first
    await outbound.aclose()
    assert Slow.requests == 1


@with_store
async def test_the_background_loop_probes_when_due_and_stops(
    tmp_path: Path, store: SQLiteStore
) -> None:
    provider = Provider(lambda r: httpx.Response(200))
    checks, outbound = checks_for(tmp_path, store, provider)
    stop = asyncio.Event()
    task = asyncio.create_task(checks.run(stop, tick=0.02))
    await asyncio.sleep(0.3)
    assert len(provider.requests) == 1  # due at once, then again in 0.9-1.1 s (every: 1s)
    assert checks.states[("acme", "default")].due > time.time() + 0.5
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    await outbound.aclose()


@with_store
async def test_only_the_leader_probes(tmp_path: Path, store: SQLiteStore) -> None:
    # Replicas on one PostgreSQL: the one holding the leader's lease probes, the others wait.
    provider = Provider(lambda r: httpx.Response(200))
    checks, outbound = checks_for(tmp_path, store, provider)
    leader = False
    stop = asyncio.Event()
    task = asyncio.create_task(checks.run(stop, tick=0.02, leading=lambda: leader))
    await asyncio.sleep(0.2)
    assert provider.requests == []
    leader = True
    await asyncio.sleep(0.2)
    assert len(provider.requests) == 1
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    await outbound.aclose()


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (50.0, 95.0)
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.95) == 3.0


def test_an_integration_s_status_is_its_worst_tenant_s() -> None:
    rows: list[dict[str, object]] = [
        {"integration": "acme", "tenant": "a", "status": "healthy"},
        {"integration": "acme", "tenant": "b", "status": "down"},
        {"integration": "beta", "tenant": "a", "status": "degraded"},
    ]
    assert [(i["name"], i["status"]) for i in summarise(rows)] == [
        ("acme", "down"),
        ("beta", "degraded"),
    ]
