"""Group commit: concurrent requests share one transaction and one fsync.

Each request hands its events to `submit` and waits. One task drains everything that queued up
while the previous commit ran and stores it in a single transaction, then answers every waiter.
Under load the batch grows by itself; alone, a request is committed after one turn of the loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence

from gateway.counters import Counters
from gateway.store.entities import Inserted, NewEvent
from gateway.store.interfaces import EventStore

_GATHER_TURNS = 16
_Waiter = tuple[Sequence[NewEvent], "asyncio.Future[list[Inserted]]"]


class EventWriter:
    def __init__(
        self,
        store: EventStore,
        *,
        max_batch: int = 1024,
        on_commit: Callable[[], None] | None = None,
        counters: Counters | None = None,
    ) -> None:
        self._store = store
        self._counters = counters if counters is not None else Counters()
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._pending: deque[_Waiter] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()  # asked once: each ask is a getpid() on 3.11
        self._task = self._loop.create_task(self._run(), name="event-writer")

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The committing task while the writer runs (readiness watches it)."""
        return self._task

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
            self._loop = None

    async def submit(self, events: Sequence[NewEvent]) -> list[Inserted]:
        if self._closing or self._loop is None:
            raise RuntimeError("event writer is not running")
        future: asyncio.Future[list[Inserted]] = self._loop.create_future()
        self._pending.append((events, future))
        self._wake.set()
        return await future

    def _take(self) -> list[_Waiter]:
        taken: list[_Waiter] = []
        count = 0
        while self._pending and (count < self._max_batch or not taken):
            taken.append(self._pending.popleft())
            count += len(taken[-1][0])
        return taken

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._gather()
                await self._commit(self._take())
            if self._closing and not self._pending:
                return

    async def _gather(self) -> None:
        """Let requests the loop is already working on join this commit: yield while each
        turn of the loop adds to the queue (a few turns at most). Alone, a request waits one
        turn; under load a commit carries about twice as many events, and each commit's
        fixed cost (the WAL write and fsync) is shared by that many more."""
        for _ in range(_GATHER_TURNS):
            queued = len(self._pending)
            if queued >= self._max_batch:
                return
            await asyncio.sleep(0)
            if len(self._pending) == queued:
                return

    async def _commit(self, batch: list[_Waiter]) -> None:
        # Requests may repeat each other within a batch: the store answers those as
        # duplicates of the first, as it does for repeats of what it already holds.
        flat = [event for events, _ in batch for event in events]
        try:
            results = await self._store.insert_events(flat)
        except Exception as exc:
            if len(batch) > 1:  # one request's bad event must not fail everyone else's
                for waiter in batch:
                    await self._commit([waiter])
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self._counters.commits += 1
        self._counters.committed_events += len(flat)
        if self._on_commit is not None:
            self._on_commit()
        start = 0
        for events, future in batch:
            end = start + len(events)
            if not future.done():  # a request that went away: its events are stored all the same
                future.set_result(results[start:end])
            start = end
