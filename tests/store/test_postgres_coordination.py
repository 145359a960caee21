"""What replicas on one PostgreSQL share (here: several stores, each its own pool): exact rate
limit windows and a concurrency cap, circuit breakers, leases that lapse when a replica dies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest

from gateway.config.api import BreakerPolicy, RateLimit
from gateway.outbound.breaker import Outcome
from gateway.outbound.failures import CircuitOpenError, RateLimitedError
from gateway.outbound.shared_breaker import SharedBreaker
from gateway.outbound.shared_ratelimit import SharedRateLimiter
from gateway.store.leadership import Leadership
from tests.helpers.postgres import fresh_schema

if TYPE_CHECKING:  # asyncpg is optional
    from gateway.store.postgres import PostgresStore


def _run(scenario: Callable[[str], Coroutine[Any, Any, None]]) -> None:
    with fresh_schema() as url:
        asyncio.run(scenario(url))


@asynccontextmanager
async def _stores(url: str, count: int) -> AsyncIterator[list[PostgresStore]]:
    from gateway.store.postgres import PostgresStore

    stores = [PostgresStore(url) for _ in range(count)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        yield stores
    finally:
        await asyncio.gather(*(store.close() for store in stores))


def most_in_any_window(starts: list[float], seconds: float) -> int:
    ordered = sorted(starts)
    best = j = 0
    for i, start in enumerate(ordered):
        while ordered[j] + seconds <= start:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_three_replicas_share_one_window_exactly() -> None:
    policy = RateLimit(per_second=10, per_hour=10_000, max_wait=30)

    async def scenario(url: str) -> None:
        async with _stores(url, 3) as stores:
            limiters = [SharedRateLimiter(s, "acme", policy, lease=30) for s in stores]

            async def one(limiter: SharedRateLimiter) -> None:
                permit = await limiter.acquire()
                await permit.finish()

            await asyncio.gather(*(one(limiters[i % 3]) for i in range(36)))
            rows = await stores[0].pool.fetch("SELECT started FROM rate_starts WHERE key='acme'")
        starts = [row[0] for row in rows]
        assert len(starts) == 36
        assert most_in_any_window(starts, 1.0) == 10  # full windows, never more
        assert max(starts) - min(starts) >= 3.0  # 36 calls at 10/s: the fourth ten waited

    _run(scenario)


def test_the_concurrency_cap_holds_across_replicas() -> None:
    policy = RateLimit(concurrent=3, max_wait=30)

    async def scenario(url: str) -> None:
        in_flight = most = 0
        async with _stores(url, 3) as stores:
            limiters = [SharedRateLimiter(s, "acme", policy, lease=30) for s in stores]

            async def one(limiter: SharedRateLimiter) -> None:
                nonlocal in_flight, most
                permit = await limiter.acquire()
                in_flight += 1
                most = max(most, in_flight)
                await asyncio.sleep(0.03)
                in_flight -= 1
                await permit.finish()

            await asyncio.gather(*(one(limiters[i % 3]) for i in range(24)))
        assert most == 3

    _run(scenario)


def test_a_dead_replicas_slot_frees_when_its_lease_lapses() -> None:
    policy = RateLimit(concurrent=1, max_wait=5)

    async def scenario(url: str) -> None:
        async with _stores(url, 2) as (dying, alive):
            await SharedRateLimiter(dying, "acme", policy, lease=0.3).acquire()  # never finished
            limiter = SharedRateLimiter(alive, "acme", policy, lease=30)
            with pytest.raises(RateLimitedError):
                await limiter.acquire(max_wait=0.1)
            started = time.monotonic()
            permit = await limiter.acquire()
            assert time.monotonic() - started < 1.0
            await permit.finish()

    _run(scenario)


def test_a_call_not_sent_gives_its_window_place_back() -> None:
    policy = RateLimit(per_minute=1, max_wait=0)

    async def scenario(url: str) -> None:
        async with _stores(url, 1) as (store,):
            limiter = SharedRateLimiter(store, "acme", policy, lease=30)
            await (await limiter.acquire()).finish(sent=False)
            await (await limiter.acquire()).finish()
            with pytest.raises(RateLimitedError) as raised:
                await limiter.acquire()
            assert 59 < raised.value.retry_after <= 60

    _run(scenario)


def test_replicas_agree_on_opening_trial_slots_and_closing_a_breaker() -> None:
    policy = BreakerPolicy(
        failure_threshold=3, success_threshold=2, timeout=0.3, half_open_max_attempts=1
    )

    async def scenario(url: str) -> None:
        async with _stores(url, 2) as (one, two):
            a = SharedBreaker(one, "acme", policy, lease=30)
            b = SharedBreaker(two, "acme", policy, lease=30)
            stale = await b.admit()
            for breaker in (a, a, b):  # failures on either replica count together
                await breaker.report(await breaker.admit(), Outcome.FAILURE)
            for breaker in (a, b):
                with pytest.raises(CircuitOpenError):
                    await breaker.ensure_closed()
            await b.report(stale, Outcome.SUCCESS)  # from before it opened: changes nothing
            with pytest.raises(CircuitOpenError):
                await a.ensure_closed()
            await asyncio.sleep(0.35)
            trial = await a.admit()
            assert trial.trial
            with pytest.raises(CircuitOpenError, match="trial calls in flight"):
                await b.admit()  # the one trial slot is taken, by the other replica
            await a.report(trial, Outcome.SUCCESS)
            second = await b.admit()
            assert second.trial
            await b.report(second, Outcome.SUCCESS)
            assert not (await a.admit()).trial  # closed for both
            assert a.snapshot()["state"] == "closed"

    _run(scenario)


def test_a_dead_replicas_trial_slot_frees_when_its_lease_lapses() -> None:
    policy = BreakerPolicy(
        failure_threshold=1, success_threshold=1, timeout=0.2, half_open_max_attempts=1
    )

    async def scenario(url: str) -> None:
        async with _stores(url, 2) as (one, two):
            dying = SharedBreaker(one, "acme", policy, lease=0.3)
            alive = SharedBreaker(two, "acme", policy, lease=30)
            await alive.report(await alive.admit(), Outcome.FAILURE)
            await asyncio.sleep(0.25)
            assert (await dying.admit()).trial  # and never reported
            with pytest.raises(CircuitOpenError):
                await alive.admit()
            await asyncio.sleep(0.35)
            assert (await alive.admit()).trial

    _run(scenario)


def test_one_leader_at_a_time_replaced_within_the_lease_and_given_up_on_stop() -> None:
    async def scenario(url: str) -> None:
        async with _stores(url, 2) as (one, two):
            a = Leadership(one, lease=0.6, holder="a")
            b = Leadership(two, lease=0.6, holder="b")
            await a.start()
            await b.start()
            assert (a.is_leader, b.is_leader, a.term) == (True, False, 1)
            assert a._task is not None
            a._task.cancel()  # killed: it renews no more and never resigns
            started = time.monotonic()
            while not b.is_leader:
                await asyncio.sleep(0.05)
            assert time.monotonic() - started < 0.6 + 0.3
            assert not a.is_leader  # its own lease ran out first
            assert b.term == 2
            assert not await a.claim()
            await b.stop()  # gives the role up: taken at once
            assert await a.claim()
            assert a.term == 3

    _run(scenario)


def test_without_a_shared_database_the_process_always_leads() -> None:
    leadership = Leadership(None)
    assert leadership.is_leader
    assert asyncio.run(leadership.claim())
