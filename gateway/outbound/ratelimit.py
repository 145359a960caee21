"""Per-integration rate limits: sliding windows (per second, minute, hour) and a concurrency cap.

Each window keeps the start times of the calls it admitted (a sliding-window log), so the count
is exact: with ``per_minute: 100`` no interval of 60 seconds ever holds more than 100 starts.
`acquire` waits until every window and the concurrency cap allow a call, or raises
`RateLimitedError` as soon as it knows the wait would pass the deadline (``max_wait``).

`Limiter` is the seam the outbound client uses: `RateLimiter` counts in this process (SQLite,
one process); `shared_ratelimit.SharedRateLimiter` counts in the database, across replicas.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gateway.config.api import DEFAULT_MAX_WAIT, RateLimit
from gateway.outbound.failures import RateLimitedError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

WINDOWS = {"per_second": 1.0, "per_minute": 60.0, "per_hour": 3600.0}
# What a caller told to give up while the concurrency cap was full should wait: the cap frees
# when a call ends, which no clock can predict.
CONCURRENCY_RETRY_AFTER = 1.0


class LimitPermit(Protocol):
    async def finish(self, *, sent: bool = True) -> None:
        """The call is over; `sent=False`: no request went out (its window places return)."""
        ...


class Limiter(Protocol):
    """Admits calls to one integration within its declared limits."""

    async def acquire(self, max_wait: float | None = None) -> LimitPermit: ...

    def snapshot(self) -> dict[str, Any]: ...


class _Window:
    __slots__ = ("limit", "name", "seconds", "starts")

    def __init__(self, name: str, limit: int, seconds: float) -> None:
        self.name = name
        self.limit = limit
        self.seconds = seconds
        self.starts: deque[float] = deque()

    def count(self, now: float) -> int:
        starts = self.starts
        while starts and starts[0] + self.seconds <= now:
            starts.popleft()
        return len(starts)

    def wait(self, now: float) -> float:
        """Seconds until this window admits one more call (0: it does now)."""
        if self.count(now) < self.limit:
            return 0.0
        return self.starts[len(self.starts) - self.limit] + self.seconds - now


class Permit:
    """One admitted call. `release()` it when the call is over (more calls are harmless)."""

    __slots__ = ("_limiter", "_released", "started")

    def __init__(self, limiter: RateLimiter, started: float) -> None:
        self._limiter = limiter
        self._released = False
        self.started = started

    def release(self, *, sent: bool = True) -> None:
        """`sent=False`: no request went out, so the call's place in the windows is given
        back as well as its concurrency slot."""
        if not self._released:
            self._released = True
            self._limiter._release(self.started, sent)

    async def finish(self, *, sent: bool = True) -> None:
        self.release(sent=sent)


class RateLimiter:
    """Admits calls to one integration within its limits: ``permit = await acquire()``, make
    the call, ``permit.release()``."""

    def __init__(
        self,
        *,
        per_second: int | None = None,
        per_minute: int | None = None,
        per_hour: int | None = None,
        concurrent: int | None = None,
        max_wait: float = DEFAULT_MAX_WAIT,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        limits = {"per_second": per_second, "per_minute": per_minute, "per_hour": per_hour}
        self._windows = [
            _Window(name, limit, WINDOWS[name]) for name, limit in limits.items() if limit
        ]
        self._concurrent = concurrent
        self._max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._in_flight = 0
        self._waiting = 0
        self._released: list[asyncio.Future[None]] = []

    @classmethod
    def from_policy(
        cls,
        policy: RateLimit,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> RateLimiter:
        """A limiter for an integration's compiled ``api.rate_limit``."""
        return cls(
            per_second=policy.per_second,
            per_minute=policy.per_minute,
            per_hour=policy.per_hour,
            concurrent=policy.concurrent,
            max_wait=policy.max_wait,
            clock=clock,
            sleep=sleep,
        )

    def _window_wait(self, now: float) -> float:
        return max((w.wait(now) for w in self._windows), default=0.0)

    def _cap_full(self) -> bool:
        return self._concurrent is not None and self._in_flight >= self._concurrent

    async def acquire(self, max_wait: float | None = None) -> Permit:
        """Wait until a call is allowed and count it; raise `RateLimitedError` (carrying how
        long to wait) instead when that would take longer than `max_wait` seconds (default:
        the limiter's). Release the permit when the call is over."""
        start = now = self._clock()
        deadline = start + (self._max_wait if max_wait is None else max_wait)
        self._waiting += 1
        try:
            while True:
                wait = self._window_wait(now)
                if wait <= 0 and not self._cap_full():
                    for window in self._windows:
                        window.starts.append(now)
                    self._in_flight += 1
                    return Permit(self, now)
                if wait > deadline - now:
                    raise RateLimitedError(
                        wait, f"rate limit reached: the next call is allowed in {wait:.3g}s"
                    )
                if wait > 0:
                    await self._sleep(wait)
                elif now >= deadline:
                    raise RateLimitedError(
                        CONCURRENCY_RETRY_AFTER,
                        f"all {self._concurrent} concurrent calls stayed busy for"
                        f" {now - start:.3g}s",
                    )
                else:
                    await self._until_released(deadline - now)
                now = self._clock()
        finally:
            self._waiting -= 1

    async def _until_released(self, timeout: float) -> None:
        """Wait until some call releases its slot, or `timeout` seconds (by the clock) pass."""
        released: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._released.append(released)
        timer = asyncio.ensure_future(self._sleep(timeout))
        try:
            await asyncio.wait({released, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            released.cancel()
            if released in self._released:
                self._released.remove(released)

    def _release(self, started: float, sent: bool) -> None:
        self._in_flight -= 1
        if not sent:
            for window in self._windows:
                if started in window.starts:  # equal start times are interchangeable
                    window.starts.remove(started)
        waiters, self._released = self._released, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def snapshot(self) -> dict[str, Any]:
        """Calls counted in each window, calls in flight and waiting, and the limits."""
        now = self._clock()
        return {
            "windows": {w.name: {"count": w.count(now), "limit": w.limit} for w in self._windows},
            "in_flight": self._in_flight,
            "concurrent": self._concurrent,
            "waiting": self._waiting,
            "max_wait": self._max_wait,
        }
