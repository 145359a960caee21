"""The counts the hot paths keep: plain dict increments, no lock, no label lookup.

The event loop is the only writer. `/metrics` (`gateway.web.metrics_page`) reads and renders
them; counters are per process.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Hashable

# Seconds: what a caller waiting on the line notices, and what it does not.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Observations counted into fixed buckets, per key (Prometheus' cumulative `le` buckets
    are made when rendered)."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        # key -> (count per bucket, the last one past every bound; sum of the observations)
        self.series: dict[Hashable, tuple[list[int], list[float]]] = {}

    def observe(self, key: Hashable, value: float) -> None:
        found = self.series.get(key)
        if found is None:
            found = self.series[key] = ([0] * (len(self.buckets) + 1), [0.0])
        found[0][bisect_left(self.buckets, value)] += 1
        found[1][0] += value


class Counters:
    """The counts the gateway keeps as it works."""

    def __init__(self) -> None:
        # (integration, HTTP status): every webhook request answered; an integration this
        # gateway does not have is counted under "" (its name is the caller's, unbounded).
        self.webhook_requests: Counter[tuple[str, int]] = Counter()
        # (integration, "stored" | "duplicate"): events in accepted requests (a batch: several).
        self.webhook_events: Counter[tuple[str, str]] = Counter()
        # (integration, "succeeded" | "retried" | "dead"): job attempts, once recorded.
        self.job_attempts: Counter[tuple[str, str]] = Counter()
        # (integration, reason): events whose dispatch failed or was partial; the reason is a
        # category of gateway.store.entities.DISPATCH_FAILURE_REASONS, never free text.
        self.dispatch_failures: Counter[tuple[str, str]] = Counter()
        # (integration, function, outcome): in-call function invocations answered.
        self.function_calls: Counter[tuple[str, str, str]] = Counter()
        # (integration, function): seconds from the verified request to its answer.
        self.function_latency = Histogram()
        self.commits = 0  # group commits of received events
        self.committed_events = 0

    def requests_answered(self) -> int:
        """Webhook and function requests answered so far (what the pacer watches)."""
        return sum(self.webhook_requests.values()) + sum(self.function_calls.values())
