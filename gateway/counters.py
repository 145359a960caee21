"""The counts the hot paths keep: plain dict increments, no lock, no label lookup.

The event loop is the only writer. `/metrics` (`gateway.web.metrics_page`) reads and renders
them; counters are per process.
"""

from __future__ import annotations

from collections import Counter


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
        self.commits = 0  # group commits of received events
        self.committed_events = 0
