"""A rate limiter whose windows and concurrency cap hold across replicas (PostgreSQL).

Each attempt to take a permit is one round trip (`Coordination.take_permit`, timed by the
database's clock). A call in flight holds a lease on its concurrency slot for at most
``lease`` seconds (the integration's timeout, twice, plus a margin: a 401 retry is a second
request), so the slots of a replica killed mid-call free themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.config.api import RateLimit
from gateway.outbound.failures import RateLimitedError
from gateway.outbound.ratelimit import CONCURRENCY_RETRY_AFTER, WINDOWS
from gateway.store.interfaces import Coordination

log = logging.getLogger("gateway.outbound")

Sleep = Callable[[float], Awaitable[None]]
POLL = 0.05  # seconds between attempts while every concurrent slot is busy


class SharedPermit:
    __slots__ = ("_done", "_limiter", "permit")

    def __init__(self, limiter: SharedRateLimiter, permit: str) -> None:
        self._limiter = limiter
        self._done = False
        self.permit = permit

    async def finish(self, *, sent: bool = True) -> None:
        if self._done:
            return
        self._done = True
        self._limiter._in_flight -= 1
        if not self.permit:  # no limits: nothing was counted
            return
        try:
            await self._limiter._shared.release_permit(self._limiter.key, self.permit, sent=sent)
        except Exception:  # the lease lapses on its own
            log.exception("could not release a rate-limit slot of %s", self._limiter.key)


class SharedRateLimiter:
    def __init__(
        self,
        shared: Coordination,
        key: str,
        policy: RateLimit,
        *,
        lease: float,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self.key = key
        declared = {
            "per_second": policy.per_second,
            "per_minute": policy.per_minute,
            "per_hour": policy.per_hour,
        }
        self._names = {name: limit for name, limit in declared.items() if limit}
        self._windows = [(limit, WINDOWS[name]) for name, limit in self._names.items()]
        self._concurrent = policy.concurrent
        self._max_wait = policy.max_wait
        self._lease = lease
        self._sleep = sleep
        self._clock = clock
        self._in_flight = 0
        self._waiting = 0
        self._line = asyncio.Lock()
        self._last_wait = 0.0

    async def acquire(self, max_wait: float | None = None) -> SharedPermit:
        """As `RateLimiter.acquire`, counted across every replica on the database. The calls
        of this process wait their turn in line (first come, first asked), so that only one of
        them at a time asks the database: a full window costs a round trip per permit, not
        one per waiting call."""
        start = self._clock()
        deadline = start + (self._max_wait if max_wait is None else max_wait)
        if not self._windows and self._concurrent is None:
            self._in_flight += 1
            return SharedPermit(self, "")
        self._waiting += 1
        try:
            try:
                if self._line.locked():
                    await asyncio.wait_for(self._line.acquire(), max(0.0, deadline - start))
                else:
                    await self._line.acquire()
            except TimeoutError:
                raise RateLimitedError(
                    max(self._last_wait, CONCURRENCY_RETRY_AFTER),
                    f"rate limit reached: waited {self._clock() - start:.3g}s in line",
                ) from None
            try:
                return await self._take(start, deadline)
            finally:
                self._line.release()
        finally:
            self._waiting -= 1

    async def _take(self, start: float, deadline: float) -> SharedPermit:
        while True:
            permit = uuid.uuid4().hex
            wait = await self._shared.take_permit(
                self.key, self._windows, self._concurrent, permit, self._lease
            )
            now = self._clock()
            self._last_wait = max(wait, 0.0)
            if wait == 0:
                self._in_flight += 1
                return SharedPermit(self, permit)
            if wait > 0:
                if wait > deadline - now:
                    raise RateLimitedError(
                        wait, f"rate limit reached: the next call is allowed in {wait:.3g}s"
                    )
                await self._sleep(wait)
            elif now >= deadline:
                raise RateLimitedError(
                    CONCURRENCY_RETRY_AFTER,
                    f"all {self._concurrent} concurrent calls stayed busy for {now - start:.3g}s",
                )
            else:
                await self._sleep(min(POLL, deadline - now))

    def snapshot(self) -> dict[str, Any]:
        """The limits, and this process's calls in flight and waiting (counts are shared)."""
        return {
            "windows": {n: {"count": None, "limit": limit} for n, limit in self._names.items()},
            "in_flight": self._in_flight,
            "concurrent": self._concurrent,
            "waiting": self._waiting,
            "max_wait": self._max_wait,
            "shared": True,
        }
