"""What `/metrics` reports, in Prometheus' text format.

The hot paths only bump plain counters (a dict increment: no lock, no label lookup; the event
loop is the only writer). A scrape reads them, the outbound engine's breakers and limiters, and
the job queue's depth from storage, and renders them with prometheus-client. Counters are per
process: sum them across replicas (`sum by (integration) (rate(...))`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway.counters import Counters, Histogram
from gateway.outbound.breaker import State
from gateway.store.entities import JOB_STATUSES, Backlog

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BREAKER_STATES = tuple(State)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def render(
    counters: Counters,
    *,
    job_counts: Mapping[str, int],
    outbound: Mapping[str, Mapping[str, Any]],
    probes: Sequence[Mapping[str, Any]] = (),
    backlog: Backlog | None = None,
    now: float = 0.0,
) -> bytes:
    """The exposition text: `counters`, the job queue's `job_counts` (status -> jobs),
    `outbound` (the engine's per-integration health: breaker and limiter snapshots) and the
    store's `backlog` at `now`."""
    families: list[Metric] = [
        _counted(
            "gateway_webhook_requests",
            "Webhook requests answered, by integration and HTTP status.",
            ["integration", "status"],
            counters.webhook_requests,
        ),
        _counted(
            "gateway_webhook_events",
            "Events in accepted webhook requests: stored, or a duplicate of one stored before.",
            ["integration", "result"],
            counters.webhook_events,
        ),
        CounterMetricFamily(
            "gateway_event_commits",
            "Group commits of received events (committed events / commits = batch size).",
            value=counters.commits,
        ),
        CounterMetricFamily(
            "gateway_committed_events",
            "Events written by group commits (new ones and repeats answered as duplicates).",
            value=counters.committed_events,
        ),
        _counted(
            "gateway_job_attempts",
            "Job attempts recorded by this process's workers, by integration and outcome.",
            ["integration", "outcome"],
            counters.job_attempts,
        ),
        _counted(
            "gateway_dispatch_failures",
            "Events whose dispatch failed or was partial, by integration and reason (a category).",
            ["integration", "reason"],
            counters.dispatch_failures,
        ),
        _counted(
            "gateway_function_calls",
            "In-call function invocations answered, by integration, function and outcome.",
            ["integration", "function", "outcome"],
            counters.function_calls,
        ),
        _histogram(
            "gateway_function_duration_seconds",
            "Seconds from a verified function call to its answer, by integration and function.",
            ["integration", "function"],
            counters.function_latency,
        ),
    ]
    jobs = GaugeMetricFamily(
        "gateway_jobs", "Jobs in the store, by status (all replicas).", labels=["status"]
    )
    for job_status in sorted(set(JOB_STATUSES) | set(job_counts)):
        jobs.add_metric([job_status], job_counts.get(job_status, 0))
    families.append(jobs)
    if backlog is not None:
        families.extend(_backlog(backlog, now))

    families.extend(_outbound(outbound))
    families.extend(_probes(probes))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def _backlog(backlog: Backlog, now: float) -> list[Metric]:
    """What processing has still to do (all replicas), and how long the oldest has waited:
    0 when nothing waits."""

    def age(since: float | None) -> float:
        return max(0.0, now - since) if since is not None else 0.0

    return [
        GaugeMetricFamily(
            "gateway_backlog_events",
            "Stored events not yet dispatched (all replicas).",
            value=backlog.events,
        ),
        GaugeMetricFamily(
            "gateway_backlog_oldest_event_age_seconds",
            "Seconds since the oldest event not yet dispatched was received (0: none).",
            value=age(backlog.oldest_event_at),
        ),
        GaugeMetricFamily(
            "gateway_backlog_jobs",
            "Jobs due and not yet run, a dead worker's included (scheduled ones are not due).",
            value=backlog.jobs,
        ),
        GaugeMetricFamily(
            "gateway_backlog_oldest_job_age_seconds",
            "Seconds since the longest-waiting due job fell due (0: none).",
            value=age(backlog.oldest_job_at),
        ),
    ]


def _counted(
    name: str, documentation: str, labels: list[str], counts: Counter[tuple[Any, ...]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, count in sorted(counts.items()):
        family.add_metric([str(part) for part in key], count)
    return family


def _histogram(
    name: str, documentation: str, labels: list[str], histogram: Histogram
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=labels)
    bounds = [*(repr(b) for b in histogram.buckets), "+Inf"]
    for key, (counts, total) in sorted(histogram.series.items(), key=lambda kv: str(kv[0])):
        cumulative, running = [], 0
        for bound, count in zip(bounds, counts, strict=True):
            running += count
            cumulative.append((bound, running))
        parts = key if isinstance(key, tuple) else (key,)
        family.add_metric([str(p) for p in parts], cumulative, total[0])
    return family


def _outbound(health: Mapping[str, Mapping[str, Any]]) -> list[Metric]:
    state = GaugeMetricFamily(
        "gateway_circuit_state",
        "1 for the state each integration's circuit breaker is in (this process).",
        labels=["integration", "state"],
    )
    opened = CounterMetricFamily(
        "gateway_circuit_opened",
        "Times each integration's circuit breaker opened (this process).",
        labels=["integration"],
    )
    in_flight = GaugeMetricFamily(
        "gateway_outbound_in_flight",
        "Outbound calls under way, per integration (this process).",
        labels=["integration"],
    )
    waiting = GaugeMetricFamily(
        "gateway_outbound_waiting",
        "Outbound calls waiting for their integration's rate limit (this process).",
        labels=["integration"],
    )
    for integration, found in sorted(health.items()):
        breaker, limiter = found["breaker"], found["limiter"]
        for name in BREAKER_STATES:
            state.add_metric([integration, name.value], 1.0 if breaker["state"] == name else 0.0)
        opened.add_metric([integration], breaker["times_opened"])
        in_flight.add_metric([integration], limiter["in_flight"])
        waiting.add_metric([integration], limiter["waiting"])
    return [state, opened, in_flight, waiting]


def _probes(rows: Sequence[Mapping[str, Any]]) -> list[Metric]:
    """The health probes' verdicts: up (1: healthy or degraded, 0: down) and the last probe's
    seconds, per integration x tenant probed at least once."""
    up = GaugeMetricFamily(
        "gateway_integration_up",
        "1 when the integration's health probe for the tenant succeeds, 0 when it is down.",
        labels=["integration", "tenant"],
    )
    seconds = GaugeMetricFamily(
        "gateway_integration_probe_seconds",
        "Seconds the last health probe of the integration for the tenant took.",
        labels=["integration", "tenant"],
    )
    for row in rows:
        if row["status"] not in ("healthy", "degraded", "down"):
            continue
        labels = [row["integration"], row["tenant"]]
        up.add_metric(labels, 0.0 if row["status"] == "down" else 1.0)
        last = row["latency_ms"]["last"]
        if last is not None:
            seconds.add_metric(labels, last / 1000)
    return [up, seconds]
