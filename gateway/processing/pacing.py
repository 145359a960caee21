"""Ingest first: in a process that answers webhooks and processes them too (`--role all`),
processing works in short slices and, while webhooks keep arriving, rests after each slice so
that it takes at most a share of the event loop's time. The rest is the webhooks'.

The backlog is durable (events are committed before their 200), so processing that falls
behind under a burst loses nothing: it catches up at full speed once the webhooks slow down,
and `/metrics` shows the backlog (`gateway_backlog_*`) meanwhile.

Ingest pressure is read from the counters the hot paths keep anyway (requests answered), so
the webhook path pays nothing for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEFAULT_SHARE = 0.25  # of the loop's time processing may take while webhooks arrive
SLICE = 0.002  # seconds of processing between two chances for the webhooks to run
QUIET = 0.05  # seconds without a webhook after which processing runs flat out
MAX_REST = 0.25  # seconds: a stop (graceful shutdown) never waits longer for a rest to end


class Pacer:
    """Shared by the dispatcher and the workers of one process. `arrivals` counts the requests
    answered so far (any monotonic count); `share` is processing's part of the time while
    they keep coming (1.0: never rest)."""

    def __init__(
        self,
        arrivals: Callable[[], int],
        *,
        share: float = DEFAULT_SHARE,
        quiet: float = QUIET,
        slice_seconds: float = SLICE,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], not {share}")
        self._arrivals = arrivals
        self._seen = arrivals()
        self._last_arrival = float("-inf")
        self.share = share
        self.quiet = quiet
        self.slice = slice_seconds
        self._clock = clock
        self._free_at = float("-inf")  # processing may run again from this moment
        self.rested = 0.0  # seconds processing rested for ingest (for tests and the bench)

    def busy(self) -> bool:
        """Webhooks arrived within the last `quiet` seconds."""
        now = self._clock()
        count = self._arrivals()
        if count != self._seen:
            self._seen = count
            self._last_arrival = now
        return now - self._last_arrival < self.quiet

    def now(self) -> float:
        return self._clock()

    async def rest(self, spent: float) -> None:
        """After a slice of processing that took `spent` seconds: while webhooks arrive, wait
        long enough that processing keeps to its share (slices of the dispatcher and the
        workers add up); otherwise only let the loop turn."""
        if self.share >= 1.0 or not self.busy():
            await asyncio.sleep(0)
            return
        now = self._clock()
        start = max(now, self._free_at)
        self._free_at = start + spent * (1.0 - self.share) / self.share
        wait = min(self._free_at - now, MAX_REST)
        self._free_at = min(self._free_at, now + MAX_REST)
        self.rested += wait
        await asyncio.sleep(wait)


def unpaced() -> Pacer:
    """A pacer that never rests (a worker-only process, tests driving processing directly)."""
    return Pacer(lambda: 0, share=1.0)
