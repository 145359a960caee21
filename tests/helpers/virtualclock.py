"""Virtual time for tests: a clock and a sleep that never really wait.

`VirtualClock.run(coro)` drives a coroutine: whenever every task has gone to sleep, time
jumps to the earliest wake-up. Hand ``clock=vc, sleep=vc.sleep`` to the limiter, breaker or
`OutboundClient`, and a burst that takes minutes of provider time runs in milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class VirtualClock:
    def __init__(self, start: float = 0.0, *, settle_rounds: int = 50) -> None:
        self.now = start
        self._settle_rounds = settle_rounds
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward (waking nobody until `run` or `sleep` looks)."""
        self.now += seconds

    async def sleep(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + delay, next(self._order), waiter))
        await waiter

    async def _settle(self) -> None:
        for _ in range(self._settle_rounds):
            await asyncio.sleep(0)

    def _wake_due(self) -> bool:
        """Wake sleepers due now, else jump to the earliest one; False if none sleeps."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled
        if not self._sleepers:
            return False
        self.now = max(self.now, self._sleepers[0][0])
        while self._sleepers and self._sleepers[0][0] <= self.now:
            waiter = heapq.heappop(self._sleepers)[2]
            if not waiter.done():
                waiter.set_result(None)
        return True

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable`, advancing virtual time whenever all tasks sleep."""
        task = asyncio.ensure_future(awaitable)
        while not task.done():
            await self._settle()
            if task.done():
                break
            if not self._wake_due():
                await asyncio.sleep(0.001)  # waiting on something real (I/O): let it happen
        return task.result()
