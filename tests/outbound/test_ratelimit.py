"""The rate limiter: exact sliding windows, a concurrency cap, waiting up to max_wait."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

import pytest

from gateway.config.api import RateLimit
from gateway.outbound import RateLimitedError, RateLimiter
from tests.helpers.virtualclock import VirtualClock


def most_in_any_window(starts: Sequence[float], seconds: float) -> int:
    """The most start times any half-open interval [t, t + seconds) holds."""
    ordered = sorted(starts)
    best = 0
    j = 0
    for i, start in enumerate(ordered):
        while ordered[j] + seconds <= start:  # computed as the limiter does: no rounding gap
            j += 1
        best = max(best, i - j + 1)
    return best


def test_burst_of_300_at_100_per_minute_waits_and_never_exceeds_the_window() -> None:
    vc = VirtualClock()
    limiter = RateLimiter(
        per_minute=100, per_hour=10000, concurrent=25, max_wait=600, clock=vc, sleep=vc.sleep
    )
    starts: list[float] = []
    in_flight = 0
    most_in_flight = 0

    async def one() -> None:
        nonlocal in_flight, most_in_flight
        permit = await limiter.acquire()
        starts.append(vc())
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        await vc.sleep(0.25)  # the HTTP exchange
        in_flight -= 1
        permit.release()

    async def burst() -> None:
        await asyncio.gather(*(one() for _ in range(300)))

    asyncio.run(vc.run(burst()))
    assert len(starts) == 300  # every call waited its turn; none failed
    assert most_in_any_window(starts, 60.0) == 100
    assert most_in_flight <= 25
    # 25 at a time, 0.25s each: the first hundred start at 0, 0.25, 0.5 and 0.75; each later
    # hundred as soon as its predecessors leave the window, 60s on
    assert sorted(starts)[200:] == [120.0] * 25 + [120.25] * 25 + [120.5] * 25 + [120.75] * 25
    assert limiter.snapshot()["in_flight"] == 0


def test_burst_beyond_max_wait_fails_fast_with_the_time_to_wait() -> None:
    vc = VirtualClock()
    limiter = RateLimiter(per_minute=100, clock=vc, sleep=vc.sleep)  # max_wait: 30s default
    admitted: list[float] = []
    refused: list[float] = []

    async def one() -> None:
        try:
            permit = await limiter.acquire()
        except RateLimitedError as exc:
            refused.append(exc.retry_after or 0.0)
            return
        admitted.append(vc())
        permit.release()

    async def burst() -> None:
        await asyncio.gather(*(one() for _ in range(300)))

    asyncio.run(vc.run(burst()))
    assert len(admitted) == 100 and len(refused) == 200
    assert vc() == 0.0  # nobody slept: a wait of 60s is known to exceed 30s at once
    assert refused == [pytest.approx(60.0)] * 200


def test_short_waits_are_waited_not_failed() -> None:
    vc = VirtualClock()
    limiter = RateLimiter(per_second=10, clock=vc, sleep=vc.sleep)
    starts: list[float] = []

    async def one() -> None:
        (await limiter.acquire()).release()
        starts.append(vc())

    async def burst() -> None:
        await asyncio.gather(*(one() for _ in range(25)))

    asyncio.run(vc.run(burst()))
    assert sorted(starts) == [0.0] * 10 + [1.0] * 10 + [2.0] * 5
    assert most_in_any_window(starts, 1.0) == 10


def test_concurrency_cap_waits_for_a_free_slot() -> None:
    vc = VirtualClock()
    limiter = RateLimiter(concurrent=2, max_wait=60, clock=vc, sleep=vc.sleep)
    starts: list[float] = []
    peak = 0

    async def one() -> None:
        nonlocal peak
        permit = await limiter.acquire()
        starts.append(vc())
        peak = max(peak, limiter.snapshot()["in_flight"])
        await vc.sleep(10)
        permit.release()

    async def burst() -> None:
        await asyncio.gather(*(one() for _ in range(5)))

    asyncio.run(vc.run(burst()))
    assert peak == 2
    assert sorted(starts) == [0.0, 0.0, 10.0, 10.0, 20.0]


def test_concurrency_wait_past_max_wait_raises_rate_limited() -> None:
    vc = VirtualClock()
    limiter = RateLimiter(concurrent=1, max_wait=5, clock=vc, sleep=vc.sleep)

    async def scenario() -> float:
        held = await limiter.acquire()
        with pytest.raises(RateLimitedError) as caught:
            await limiter.acquire()
        assert vc() == 5.0  # it waited max_wait, then gave up
        assert limiter.snapshot()["waiting"] == 0
        held.release()
        (await limiter.acquire()).release()  # the slot is free again
        return caught.value.retry_after or 0.0

    retry_after = asyncio.run(vc.run(scenario()))
    assert retry_after > 0


def test_window_wait_past_max_wait_raises_with_the_exact_wait() -> None:
    vc = VirtualClock()
    limiter = RateLimiter(per_minute=2, max_wait=10, clock=vc, sleep=vc.sleep)

    async def scenario() -> None:
        (await limiter.acquire()).release()
        vc.advance(15)
        (await limiter.acquire()).release()
        with pytest.raises(RateLimitedError, match="allowed in 45s") as caught:
            await limiter.acquire()
        assert caught.value.retry_after == pytest.approx(45.0)
        assert caught.value.kind == "rate_limited" and caught.value.retryable

    asyncio.run(vc.run(scenario()))


def test_a_call_never_sent_gives_its_place_back() -> None:
    vc = VirtualClock()
    limiter = RateLimiter(per_minute=1, concurrent=1, max_wait=0, clock=vc, sleep=vc.sleep)

    async def scenario() -> None:
        (await limiter.acquire()).release(sent=False)
        permit = await limiter.acquire()
        permit.release()
        permit.release()  # twice is harmless
        assert limiter.snapshot()["in_flight"] == 0
        with pytest.raises(RateLimitedError):
            await limiter.acquire()

    asyncio.run(vc.run(scenario()))


def test_cancelled_waiter_leaves_no_trace() -> None:
    vc = VirtualClock()
    limiter = RateLimiter(concurrent=1, max_wait=60, clock=vc, sleep=vc.sleep)

    async def scenario() -> None:
        held = await limiter.acquire()
        waiter = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)
        assert limiter.snapshot()["waiting"] == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        held.release()
        assert limiter.snapshot() == {
            "windows": {},
            "in_flight": 0,
            "concurrent": 1,
            "waiting": 0,
            "max_wait": 60,
        }

    asyncio.run(vc.run(scenario()))


@pytest.mark.parametrize("seed", range(5))
def test_random_traffic_never_exceeds_any_window(seed: int) -> None:
    rng = random.Random(seed)
    vc = VirtualClock()
    limiter = RateLimiter(
        per_second=5, per_minute=40, concurrent=3, max_wait=30, clock=vc, sleep=vc.sleep
    )
    starts: list[float] = []
    peak = 0

    async def one(arrival: float) -> None:
        nonlocal peak
        await vc.sleep(arrival)
        try:
            permit = await limiter.acquire()
        except RateLimitedError:
            return
        started = vc()
        peak = max(peak, limiter.snapshot()["in_flight"])
        await vc.sleep(rng.uniform(0.01, 2.0))
        sent = rng.random() > 0.1
        permit.release(sent=sent)
        if sent:  # a call not sent gives its place back: it is not a call
            starts.append(started)

    async def traffic() -> None:
        await asyncio.gather(*(one(rng.uniform(0, 180)) for _ in range(300)))

    asyncio.run(vc.run(traffic()))
    assert peak <= 3
    assert most_in_any_window(starts, 1.0) <= 5
    assert most_in_any_window(starts, 60.0) <= 40


def test_from_spec_reads_the_yaml_mapping() -> None:
    limiter = RateLimiter.from_policy(
        RateLimit.from_spec(
            {
                "per_second": 10,
                "per_minute": 100,
                "per_hour": 1000,
                "concurrent": 4,
                "max_wait": "1m",
            }
        )
    )
    snap = limiter.snapshot()
    assert snap["windows"] == {
        "per_second": {"count": 0, "limit": 10},
        "per_minute": {"count": 0, "limit": 100},
        "per_hour": {"count": 0, "limit": 1000},
    }
    assert snap["max_wait"] == 60.0 and snap["concurrent"] == 4
    assert RateLimiter.from_policy(RateLimit.from_spec(None)).snapshot()["windows"] == {}
