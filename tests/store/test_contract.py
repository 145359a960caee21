"""The storage contract, run against both implementations: SQLite (a temporary file) and
PostgreSQL (a fresh schema; skipped, saying why, when none is reachable).

Where several replicas matter (dedup races, claims, sync leases), two stores are opened on the
same database: two connection pools for PostgreSQL, two connections for SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from gateway.errors import UsageError
from gateway.store import SQLiteStore, open_store
from gateway.store.entities import (
    ATTEMPT_TEXT_LIMIT,
    ATTEMPTS_KEPT,
    Backlog,
    Dispatch,
    EventQuery,
    FunctionCall,
    FunctionCallQuery,
    JobOutcome,
    JobQuery,
    Message,
    MessageQuery,
    MessageStep,
    MessageUpdate,
    NewEvent,
    NewJob,
)
from gateway.store.interfaces import Store
from gateway.store.people import ERASED_BODY, ERASED_JSON, Person
from gateway.store.sync_model import (
    LeaseLost,
    PageCommit,
    PagePlan,
    RecordWrite,
    StoredRecord,
    SyncCounts,
    SyncKey,
    SyncRunQuery,
)
from tests.helpers.postgres import fresh_schema

T = TypeVar("T")
Factory = Callable[[], Store]
NOW = 1_750_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """Makes (unopened) stores that share one database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gateway.db'}"
        yield lambda: open_store(url)
        return
    with fresh_schema() as url:
        yield lambda: open_store(url)


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def wrapped() -> T:
        return await main()

    return asyncio.run(wrapped())


@contextlib.asynccontextmanager
async def opened(make: Factory) -> AsyncIterator[Store]:
    store = make()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def event(
    id: str,
    key: str,
    *,
    integration: str = "acme",
    tenant: str = "default",
    type: str | None = "thing.made",
    received_at: float = NOW,
    body: bytes = b'{"ok": true}',
) -> NewEvent:
    return NewEvent(
        id, integration, tenant, key, f"p-{key}", type, received_at, '{"x-id": "1"}', body
    )


def job(
    id: str,
    event_id: str,
    *,
    key: str | None = None,
    run_at: float = NOW,
    integration: str = "acme",
    tenant: str = "default",
    schedule_key: str | None = None,
    created_at: float = NOW,
) -> NewJob:
    return NewJob(
        id=id,
        idempotency_key=key or f"{event_id}/0/flow/{id}",
        event_id=event_id,
        flow="flow",
        action=id,
        kind="call",
        integration=integration,
        tenant=tenant,
        schedule_key=schedule_key,
        spec=json.dumps({"endpoint": f"{integration}.ping"}),
        context='{"name": "thing.made"}',
        run_at=run_at,
        max_attempts=5,
        created_at=created_at,
    )


async def enqueue(store: Store, jobs: Sequence[NewJob]) -> None:
    """Store an event per job and dispatch it with its job."""
    await store.insert_events([event(j.event_id, j.event_id) for j in jobs])
    await store.commit_dispatches([Dispatch(j.event_id, "dispatched", [j]) for j in jobs])


# ---- events ---------------------------------------------------------------------------------


def test_insert_dedups_and_names_the_first(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            first = await store.insert_events([event("evt_1", "k1"), event("evt_2", "k2")])
            assert [(r.event_id, r.duplicate) for r in first] == [
                ("evt_1", False),
                ("evt_2", False),
            ]
            again = await store.insert_events(
                [
                    event("evt_3", "k2"),  # a repeat of evt_2
                    event("evt_4", "k1", tenant="clinic"),  # same key, other tenant: new
                    event("evt_5", "k1", integration="other"),  # other integration: new
                    event("evt_6", "k6"),
                    event("evt_7", "k6"),  # a repeat inside the batch
                ]
            )
            assert [(r.event_id, r.duplicate) for r in again] == [
                ("evt_2", True),
                ("evt_4", False),
                ("evt_5", False),
                ("evt_6", False),
                ("evt_6", True),
            ]
            assert await store.count_events() == 5
            assert await store.get_event("evt_3") is None
            assert await store.insert_events([]) == []

    run(main)


def test_racing_repeats_from_two_replicas_are_stored_once(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as a, opened(make_store) as b:
            for n in range(10):
                results = await asyncio.gather(
                    a.insert_events([event(f"evt_a{n}", f"k{n}")]),
                    b.insert_events([event(f"evt_b{n}", f"k{n}")]),
                )
                (ra,), (rb,) = results
                assert ra.event_id == rb.event_id
                assert sorted([ra.duplicate, rb.duplicate]) == [False, True]
            assert await a.count_events() == 10

    run(main)


def test_events_list_get_and_page(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            raw = bytes(range(256))  # not UTF-8: bodies are bytes
            await store.insert_events(
                [
                    event("evt_01", "a", body=raw),
                    event("evt_02", "b", tenant="clinic"),
                    event("evt_03", "c", type="thing.gone"),
                    event("evt_04", "d", integration="other"),
                    event("evt_05", "e", type=None),
                ]
            )
            got = await store.get_event("evt_01")
            assert got is not None
            assert (got.body, got.headers, got.status, got.replays) == (
                raw,
                {"x-id": "1"},
                "pending",
                0,
            )
            assert (got.integration, got.tenant, got.provider_id, got.type) == (
                "acme",
                "default",
                "p-a",
                "thing.made",
            )
            assert got.received_at == NOW
            assert await store.get_event("evt_99") is None

            async def ids(**query: Any) -> list[str]:
                return [e.id for e in await store.list_events(EventQuery(**query))]

            assert await ids() == ["evt_05", "evt_04", "evt_03", "evt_02", "evt_01"]
            assert await ids(limit=2) == ["evt_05", "evt_04"]
            assert await ids(limit=2, before="evt_04") == ["evt_03", "evt_02"]
            assert await ids(limit=2, before="evt_02") == ["evt_01"]
            assert await ids(integration="acme", tenant="default") == [
                "evt_05",
                "evt_03",
                "evt_01",
            ]
            assert await ids(type="thing.gone") == ["evt_03"]
            assert await ids(tenant="clinic") == ["evt_02"]

    run(main)


def test_events_found_by_provider_id_and_body_text(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            await store.insert_events(
                [
                    event("evt_01", "a", body=bytes(range(256))),
                    event("evt_02", "b", body=b'{"note": "refund 50% of order_7"}'),
                    event("evt_03", "c", body=b'{"note": "refund 50 of order 7"}'),
                ]
            )

            async def ids(**query: Any) -> list[str]:
                return [e.id for e in await store.list_events(EventQuery(**query))]

            assert await ids(provider_id="p-b") == ["evt_02"]
            assert await ids(text="refund") == ["evt_03", "evt_02"]
            assert await ids(text="50%") == ["evt_02"]  # % and _ are themselves, not wildcards
            assert await ids(text="order_7") == ["evt_02"]
            assert await ids(text="refund", provider_id="p-c") == ["evt_03"]
            assert await store.count_events(EventQuery(text="refund")) == 2
            assert await ids(text="nowhere") == []

    run(main)


def test_count_jobs_counts_what_the_query_matches(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            await enqueue(
                store,
                [job("j1", "e1"), job("j2", "e2", integration="beta"), job("j3", "e3")],
            )
            assert await store.count_jobs(JobQuery()) == 3
            assert await store.count_jobs(JobQuery(integration="acme", limit=1)) == 2
            assert await store.count_jobs(JobQuery(status="dead")) == 0
            await store.check_writable()  # the readiness probe's check: no error when writable

    run(main)


# ---- dispatch -------------------------------------------------------------------------------


def test_pending_events_dispatch_and_replay(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            await store.insert_events([event(f"evt_{n}", f"k{n}") for n in range(1, 5)])
            pending = await store.pending_events(3)
            assert [e.id for e in pending] == ["evt_1", "evt_2", "evt_3"]
            reminder = job("job_r", "evt_1", schedule_key="remind-1", run_at=NOW + 3600)
            dispatches = [
                Dispatch("evt_1", "dispatched", [job("job_1", "evt_1"), reminder]),
                Dispatch("evt_2", "ignored"),
                Dispatch("evt_3", "failed", error="mapping broke"),
            ]
            await store.commit_dispatches(dispatches)
            assert [e.id for e in await store.pending_events(10)] == ["evt_4"]
            failed = await store.get_event("evt_3")
            assert failed is not None and (failed.status, failed.error) == (
                "failed",
                "mapping broke",
            )
            # a second dispatcher committing the same event: no job twice
            twice = Dispatch(
                "evt_1", "dispatched", [job("job_1b", "evt_1", key="evt_1/0/flow/job_1")]
            )
            await store.commit_dispatches([twice])
            jobs = await store.list_jobs(JobQuery(event_id="evt_1"))
            assert sorted(j.id for j in jobs) == ["job_1", "job_r"]
            assert await store.job_counts() == {"queued": 2}
            # a cancel withdraws the queued scheduled job
            await store.commit_dispatches(
                [Dispatch("evt_4", "dispatched", cancels=[("default", "remind-1")])]
            )
            cancelled = await store.get_job("job_r")
            assert cancelled is not None and cancelled.status == "cancelled"
            # replay: pending again, counted
            assert await store.replay_event("evt_2") is True
            replayed = await store.get_event("evt_2")
            assert replayed is not None and (replayed.status, replayed.replays) == ("pending", 1)
            assert [e.id for e in await store.pending_events(10)] == ["evt_2"]
            assert await store.replay_event("evt_nope") is False

    run(main)


# ---- the job queue --------------------------------------------------------------------------


def test_claim_takes_due_jobs_and_reclaims_expired_leases(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            await enqueue(
                store,
                [
                    job("job_1", "evt_1", run_at=NOW - 10),
                    job("job_2", "evt_2", run_at=NOW - 20),
                    job("job_3", "evt_3", run_at=NOW + 100),
                ],
            )
            claimed = await store.claim_jobs(NOW, 10, 60)
            assert [j.id for j in claimed] == ["job_2", "job_1"]  # oldest due first
            assert {(j.status, j.attempts) for j in claimed} == {("running", 1)}
            assert await store.claim_jobs(NOW + 30, 10, 60) == []  # leased, not due yet
            assert await store.next_run_at() == NOW + 100
            # the worker died: after the lease both come back, with the next attempt
            again = await store.claim_jobs(NOW + 61, 1, 60)
            assert [(j.id, j.attempts) for j in again] == [("job_2", 2)]
            later = await store.claim_jobs(NOW + 101, 10, 60)
            assert sorted(j.id for j in later) == ["job_1", "job_3"]

    run(main)


def test_backlog_counts_pending_events_and_due_jobs_with_the_oldest(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            assert await store.backlog(NOW) == Backlog(0, None, 0, None)
            await enqueue(
                store,
                [
                    job("job_1", "evt_1", run_at=NOW - 10),
                    job("job_2", "evt_2", run_at=NOW - 20),
                    job("job_3", "evt_3", run_at=NOW + 100),  # scheduled: not due yet
                ],
            )
            await store.insert_events(
                [event("evt_5", "k5", received_at=NOW - 7), event("evt_6", "k6", received_at=NOW)]
            )
            assert await store.backlog(NOW) == Backlog(2, NOW - 7, 2, NOW - 20)
            await store.claim_jobs(NOW, 1, 60)  # job_2 runs: no longer waiting
            assert await store.backlog(NOW) == Backlog(2, NOW - 7, 1, NOW - 10)
            # its worker died: due again once the lease lapses, with its old due time
            assert await store.backlog(NOW + 61) == Backlog(2, NOW - 7, 2, NOW - 20)
            await store.commit_dispatches([Dispatch("evt_5", "ignored")])
            assert await store.backlog(NOW) == Backlog(1, NOW, 1, NOW - 10)

    run(main)


def test_extend_leases_keeps_running_jobs(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            await enqueue(store, [job("job_1", "evt_1"), job("job_2", "evt_2")])
            assert len(await store.claim_jobs(NOW, 10, 10)) == 2
            await store.extend_leases(["job_1"], NOW + 100)
            await store.extend_leases([], NOW + 100)
            assert [j.id for j in await store.claim_jobs(NOW + 50, 10, 10)] == ["job_2"]
            await store.finish_jobs([JobOutcome("job_2", "succeeded")])
            assert [j.id for j in await store.claim_jobs(NOW + 101, 10, 10)] == ["job_1"]
            # a finished job is not leased again by a late heartbeat
            await store.finish_jobs([JobOutcome("job_1", "succeeded", result="ok")])
            await store.extend_leases(["job_1"], NOW + 1000)
            done = await store.get_job("job_1")
            assert done is not None and done.status == "succeeded"

    run(main)


def test_racing_claims_never_take_a_job_twice(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as a, opened(make_store) as b:
            await enqueue(a, [job(f"job_{n:02d}", f"evt_{n:02d}") for n in range(60)])
            taken: list[str] = []
            while True:
                rounds = await asyncio.gather(
                    a.claim_jobs(NOW, 7, 60),
                    b.claim_jobs(NOW, 7, 60),
                    a.claim_jobs(NOW, 7, 60),
                    b.claim_jobs(NOW, 7, 60),
                )
                got = [j.id for claimed in rounds for j in claimed]
                if not got:
                    break
                taken.extend(got)
            assert sorted(taken) == [f"job_{n:02d}" for n in range(60)]  # each exactly once
            assert await a.job_counts() == {"running": 60}

    run(main)


def test_finish_retry_list_and_purge(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            await enqueue(
                store,
                [
                    job("job_1", "evt_1", created_at=NOW - 30),
                    job("job_2", "evt_2", created_at=NOW - 20, integration="other"),
                    job("job_3", "evt_3", created_at=NOW - 10),
                    job("job_4", "evt_4", created_at=NOW),
                ],
            )
            assert len(await store.claim_jobs(NOW, 10, 60)) == 4
            await store.finish_jobs([JobOutcome("job_1", "succeeded", result='{"status": 200}')])
            await store.finish_jobs(  # a worker's batch of outcomes, in one write
                [
                    JobOutcome("job_2", "dead", error="HTTP 400"),
                    JobOutcome("job_3", "dead", error="HTTP 422"),
                    JobOutcome("job_4", "queued", run_at=NOW + 30, error="HTTP 503"),
                ]
            )
            await store.finish_jobs([])
            one = await store.get_job("job_1")
            assert one is not None
            assert (one.status, one.result, one.last_error, one.attempts) == (
                "succeeded",
                '{"status": 200}',
                None,
                1,
            )
            four = await store.get_job("job_4")
            assert four is not None
            assert (four.status, four.run_at, four.last_error) == ("queued", NOW + 30, "HTTP 503")
            assert await store.job_counts() == {"succeeded": 1, "dead": 2, "queued": 1}
            assert await store.next_run_at() == NOW + 30

            async def ids(**query: Any) -> list[str]:
                return [j.id for j in await store.list_jobs(JobQuery(**query))]

            assert await ids() == ["job_4", "job_3", "job_2", "job_1"]  # newest first
            assert await ids(status="dead") == ["job_3", "job_2"]
            assert await ids(integration="other") == ["job_2"]
            assert await ids(since=NOW - 20, until=NOW) == ["job_3", "job_2"]
            assert await ids(limit=1) == ["job_4"]
            assert await ids(id="job_3") == ["job_3"]

            assert await store.retry_jobs(JobQuery(integration="acme")) == 1  # dead ones only
            three = await store.get_job("job_3")
            assert three is not None and (three.status, three.attempts) == ("queued", 0)
            assert await store.retry_jobs(JobQuery()) == 1
            assert await store.retry_jobs(JobQuery()) == 0
            assert await store.get_job("job_nope") is None

            await store.commit_dispatches([Dispatch("evt_9", "ignored")])  # no such event
            old = event("evt_old", "old", received_at=NOW - 100)
            await store.insert_events([old])
            await store.commit_dispatches([Dispatch("evt_old", "ignored")])
            # jobs finished before the cutoff go, then events without jobs
            assert await store.purge(time.time() + 10) == (2, 1)
            assert await store.get_event("evt_old") is None
            assert await store.get_event("evt_1") is None
            assert await store.get_job("job_1") is None
            again = await store.insert_events([event("evt_new", "old")])
            assert again[0].duplicate is False  # past the retention a repeat is new again

    run(main)


def test_each_attempt_is_kept_in_order_bounded_and_goes_with_its_job(
    make_store: Factory,
) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            await enqueue(store, [job("job_1", "evt_1"), job("job_2", "evt_2", run_at=NOW + 999)])
            answers = [(503, "busy, token ***"), (503, "x" * 5000), (200, '{"ok": true}')]
            for n, (status, answer) in enumerate(answers, 1):
                [claimed] = await store.claim_jobs(NOW + n, 10, 60)
                assert (claimed.id, claimed.attempts) == ("job_1", n)
                late = JobOutcome("job_1", "succeeded", attempt=n - 1, answer="stale")
                await store.finish_jobs([late])  # a stale worker's: neither applied nor kept
                outcome = "succeeded" if status == 200 else "queued"
                await store.finish_jobs(
                    [
                        JobOutcome(
                            "job_1",
                            outcome,
                            run_at=NOW + n,
                            error=None if status == 200 else f"HTTP {status}",
                            attempt=n,
                            started_at=NOW + n,
                            duration_ms=10.5 * n,
                            http_status=status,
                            answer=answer,
                        )
                    ]
                )
            found = await store.job_attempts(["job_1", "job_2", "job_nope"])
            assert list(found) == ["job_1"]  # job_2 never ran; no such job has none
            assert [a.summary() for a in found["job_1"]] == [
                {
                    "attempt": 1,
                    "started_at": NOW + 1,
                    "duration_ms": 10.5,
                    "outcome": "retry",
                    "http_status": 503,
                    "error": "HTTP 503",
                    "answer": "busy, token ***",
                },
                {
                    "attempt": 2,
                    "started_at": NOW + 2,
                    "duration_ms": 21.0,
                    "outcome": "retry",
                    "http_status": 503,
                    "error": "HTTP 503",
                    "answer": "x" * ATTEMPT_TEXT_LIMIT,  # bounded
                },
                {
                    "attempt": 3,
                    "started_at": NOW + 3,
                    "duration_ms": 31.5,
                    "outcome": "succeeded",
                    "http_status": 200,
                    "error": None,
                    "answer": '{"ok": true}',
                },
            ]
            assert await store.job_attempts([]) == {}

            # outcomes without a claim's attempt apply to the job as it is: the history keeps
            # the newest ATTEMPTS_KEPT of them, and marks a skip
            for n in range(ATTEMPTS_KEPT + 3):
                await store.finish_jobs(
                    [JobOutcome("job_2", "queued", run_at=NOW + 999, started_at=float(n))]
                )
            await store.finish_jobs([JobOutcome("job_2", "succeeded", skipped=True)])
            kept = (await store.job_attempts(["job_2"]))["job_2"]
            assert len(kept) == ATTEMPTS_KEPT
            assert [a.started_at for a in kept[:-1]] == [
                float(n) for n in range(4, ATTEMPTS_KEPT + 3)
            ]
            assert (kept[-1].outcome, kept[-1].attempt, kept[-1].duration_ms) == (
                "skipped",
                0,
                None,
            )
            assert {a.outcome for a in kept[:-1]} == {"retry"}

            # a retry leaves room for a whole new run (max_attempts 5): the newest 95 stay
            await store.finish_jobs([JobOutcome("job_2", "dead", error="HTTP 410")])
            buried = (await store.job_attempts(["job_2"]))["job_2"]
            assert buried[:-1] == kept[1:] and buried[-1].outcome == "dead"
            assert await store.retry_jobs(JobQuery(id="job_2")) == 1
            left = (await store.job_attempts(["job_2"]))["job_2"]
            assert left == buried[5:]
            [again] = await store.claim_jobs(time.time(), 10, 60)
            assert (again.id, again.attempts) == ("job_2", 1)
            await store.finish_jobs([JobOutcome("job_2", "queued", run_at=NOW + 999, attempt=1)])
            after = (await store.job_attempts(["job_2"]))["job_2"]
            assert after[:-1] == left and (after[-1].attempt, after[-1].outcome) == (1, "retry")

            # retention: a purged job's history goes with it
            assert await store.purge(time.time() + 10) == (1, 1)
            assert await store.get_job("job_1") is None
            assert list(await store.job_attempts(["job_1", "job_2"])) == ["job_2"]

    run(main)


# ---- credentials and tokens -----------------------------------------------------------------


def test_credentials_and_tokens_round_trip(make_store: Factory) -> None:
    secret = b"gAAAA\x00\xff\xfe-not-utf8"

    async def main() -> None:
        async with opened(make_store) as store:
            assert await store.list_credentials() == []
            await store.set_credential("clinic", "stripe", "STRIPE_API_KEY", secret)
            await store.set_credential("clinic", "twilio", "TWILIO_AUTH_TOKEN", b"t1")
            await store.set_credential("acme", "stripe", "STRIPE_API_KEY", b"a1")
            await store.set_credential("clinic", "twilio", "TWILIO_AUTH_TOKEN", b"t2")  # replaces
            listed = await store.list_credentials()
            assert [row[:3] for row in listed] == [
                ("acme", "stripe", "STRIPE_API_KEY"),
                ("clinic", "stripe", "STRIPE_API_KEY"),
                ("clinic", "twilio", "TWILIO_AUTH_TOKEN"),
            ]
            assert all(isinstance(row[3], float) for row in listed)
            assert [r[:3] for r in await store.list_credentials("acme")] == [
                ("acme", "stripe", "STRIPE_API_KEY")
            ]
            assert sorted(await store.credential_tokens("clinic")) == [
                ("stripe", "STRIPE_API_KEY", secret),
                ("twilio", "TWILIO_AUTH_TOKEN", b"t2"),
            ]
            assert await store.tenants_with_credentials() == {"acme", "clinic"}
            await store.replace_credential_tokens(
                [
                    ("clinic", "stripe", "STRIPE_API_KEY", b"r1"),
                    ("acme", "stripe", "STRIPE_API_KEY", b"r2"),
                ]
            )
            await store.replace_credential_tokens([])
            assert sorted(await store.all_credential_tokens()) == [
                ("acme", "stripe", "STRIPE_API_KEY", b"r2"),
                ("clinic", "stripe", "STRIPE_API_KEY", b"r1"),
                ("clinic", "twilio", "TWILIO_AUTH_TOKEN", b"t2"),
            ]
            assert await store.delete_credential("acme", "stripe", "STRIPE_API_KEY") is True
            assert await store.delete_credential("acme", "stripe", "STRIPE_API_KEY") is False
            assert await store.tenants_with_credentials() == {"clinic"}

            assert await store.get_token("google_calendar", "clinic") is None
            await store.put_token("google_calendar", "clinic", secret)
            assert await store.get_token("google_calendar", "clinic") == secret
            await store.put_token("google_calendar", "clinic", b"refreshed")
            assert await store.get_token("google_calendar", "clinic") == b"refreshed"
            assert await store.get_token("google_calendar", "acme") is None

    run(main)


# ---- syncs ----------------------------------------------------------------------------------

KEY = SyncKey("acme", "default", "things")


def page(
    run_id: str,
    records: Mapping[str, str],
    *,
    final: bool,
    now: float,
    resume: str | None = None,
    cursor: str | None = None,
) -> PageCommit:
    """A page of (record id -> content hash): new ones are created, changed ones updated."""

    def plan(stored: Mapping[str, StoredRecord]) -> PagePlan:
        counts = SyncCounts(fetched=len(records), pages=1)
        writes = []
        events = []
        for record_id, digest in records.items():
            known = stored.get(record_id)
            if known is not None and known.content_hash == digest:
                counts.unchanged += 1
                continue
            if known is None:
                counts.created += 1
            else:
                counts.updated += 1
            writes.append(
                RecordWrite(record_id, digest, "2026-01-01T00:00:00Z", now, False, '{"n": 1}')
            )
            events.append(event(f"evt_{record_id}_{digest}", f"sync:{record_id}:{digest}"))
        return PagePlan(writes, events, counts)

    return PageCommit(
        key=KEY,
        run_id=run_id,
        record_ids=list(records),
        plan=plan,
        resume=resume,
        cursor=cursor,
        final=final,
        full=False,
        resumed=False,
        lease_until=now + 600,
        now=now,
    )


def test_sync_lease_pages_and_log(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            assert await store.get_sync_state(KEY) is None
            state = await store.acquire_sync(KEY, "run_1", now=NOW, lease_until=NOW + 600)
            assert state is not None and (state.run_id, state.cursor) == ("run_1", None)
            # while run_1 holds the lease, no other run starts
            assert (
                await store.acquire_sync(KEY, "run_x", now=NOW + 1, lease_until=NOW + 601) is None
            )
            plan = await store.commit_sync_page(
                page("run_1", {"r1": "h1", "r2": "h2"}, final=False, now=NOW + 2, resume='{"p": 2}')
            )
            assert (plan.counts.created, len(plan.events)) == (2, 2)
            held = await store.get_sync_state(KEY)
            assert held is not None and (held.resume, held.run_id) == ('{"p": 2}', "run_1")
            with pytest.raises(LeaseLost):
                await store.commit_sync_page(page("run_x", {"r3": "h3"}, final=True, now=NOW + 3))
            last = await store.commit_sync_page(
                page("run_1", {"r2": "h2b", "r3": "h3"}, final=True, now=NOW + 4, cursor='{"c": 1}')
            )
            assert (last.counts.created, last.counts.updated) == (1, 1)
            done = await store.get_sync_state(KEY)
            assert done is not None
            assert (done.cursor, done.resume, done.run_id, done.lease_until) == (
                '{"c": 1}',
                None,
                None,
                None,
            )
            logged = await store.get_sync_run("run_1")
            assert logged is not None
            assert (logged.status, logged.finished, logged.counts.as_dict()) == (
                "succeeded",
                NOW + 4,
                {"fetched": 4, "created": 3, "updated": 1, "unchanged": 0, "deleted": 0,
                 "conflicts": 0, "pages": 2},
            )  # fmt: skip
            assert await store.count_sync_records(KEY) == (3, 0)
            record = await store.get_sync_record(KEY, "r2")
            assert record is not None
            assert (record.content_hash, record.deleted, record.data) == ("h2b", False, '{"n": 1}')
            assert await store.get_sync_record(KEY, "nope") is None
            assert await store.count_events() == 4  # the page's events were stored too

            # a run that fails gives the lease up; its resume point stays
            assert await store.acquire_sync(KEY, "run_2", now=NOW + 10, lease_until=NOW + 610)
            await store.commit_sync_page(
                page("run_2", {"r1": "h1"}, final=False, now=NOW + 11, resume='{"p": 9}')
            )
            await store.finish_sync_run(
                KEY, "run_2", status="failed", error="HTTP 500", now=NOW + 12, full=True,
                resumed=False,
            )  # fmt: skip
            failed = await store.get_sync_run("run_2")
            assert failed is not None
            assert (failed.status, failed.error, failed.full, failed.counts.unchanged) == (
                "failed",
                "HTTP 500",
                True,
                1,
            )
            after = await store.get_sync_state(KEY)
            assert after is not None and (after.run_id, after.resume) == (None, '{"p": 9}')

            runs = await store.list_sync_runs(SyncRunQuery(integration="acme"))
            assert [r.id for r in runs] == ["run_2", "run_1"]
            assert [r.id for r in await store.list_sync_runs(SyncRunQuery(limit=1))] == ["run_2"]
            assert await store.list_sync_runs(SyncRunQuery(tenant="other")) == []
            assert await store.last_sync_starts() == {KEY: NOW + 10}
            assert await store.get_sync_run("nope") is None

    run(main)


def test_an_expired_sync_lease_is_taken_over_and_the_old_run_is_out(
    make_store: Factory,
) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            assert await store.acquire_sync(KEY, "run_1", now=NOW, lease_until=NOW + 60)
            taken = await store.acquire_sync(KEY, "run_2", now=NOW + 61, lease_until=NOW + 661)
            assert taken is not None and taken.run_id == "run_2"
            old = await store.get_sync_run("run_1")
            assert old is not None and old.status == "failed"
            assert "lease expired" in (old.error or "")
            with pytest.raises(LeaseLost):
                await store.commit_sync_page(page("run_1", {"r1": "h"}, final=True, now=NOW + 62))
            # the old run ending late does not free the new run's lease
            await store.finish_sync_run(
                KEY, "run_1", status="failed", error="late", now=NOW + 63, full=False,
                resumed=False,
            )  # fmt: skip
            state = await store.get_sync_state(KEY)
            assert state is not None and state.run_id == "run_2"

    run(main)


def test_racing_acquires_from_two_replicas_start_one_run(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as a, opened(make_store) as b:
            for n in range(5):
                key = SyncKey("acme", f"tenant{n}", "things")
                if n % 2:  # the sync ran before: its state row is there, free
                    assert await a.acquire_sync(key, f"run_0{n}", now=NOW - 9, lease_until=NOW)
                    await a.finish_sync_run(
                        key, f"run_0{n}", status="failed", error="x", now=NOW - 8, full=False,
                        resumed=False,
                    )  # fmt: skip
                got = await asyncio.gather(
                    a.acquire_sync(key, f"run_a{n}", now=NOW, lease_until=NOW + 600),
                    b.acquire_sync(key, f"run_b{n}", now=NOW, lease_until=NOW + 600),
                )
                winners = [s.run_id for s in got if s is not None]
                assert len(winners) == 1, got
                runs = await a.list_sync_runs(SyncRunQuery(tenant=f"tenant{n}"))
                assert [r.id for r in runs if r.status == "running"] == winners

    run(main)


# ---- selecting the implementation -----------------------------------------------------------


def function_call(
    id: str, key: str | None, outcome: str = "ok", answer: str = "hi"
) -> FunctionCall:
    return FunctionCall(
        id,
        "retell",
        "book",
        "default",
        key,
        outcome,
        200,
        "text/plain",
        answer,
        "{}",
        "[]",
        NOW,
        3.5,
    )


def test_function_calls_keep_one_answer_per_key_and_list_newest_first(
    make_store: Factory,
) -> None:
    async def main() -> None:
        async with opened(make_store) as one, opened(make_store) as other:
            assert await one.record_function_call(function_call("fnc_1", "k", "fallback"))
            assert await one.record_function_call(function_call("fnc_2", "k", answer="first"))
            # a second replica answering the same key: not stored, the first one stays
            assert not await other.record_function_call(function_call("fnc_3", "k", answer="x"))
            assert await other.record_function_call(function_call("fnc_4", "k", "repeat"))
            assert await other.record_function_call(function_call("fnc_5", None))
            assert await other.record_function_call(function_call("fnc_6", None))

            answer = await other.function_answer("retell", "book", "default", "k")
            assert answer == function_call("fnc_2", "k", answer="first")
            assert await one.function_answer("retell", "book", "other-tenant", "k") is None
            listed = await one.list_function_calls(FunctionCallQuery())
            assert [c.id for c in listed] == ["fnc_6", "fnc_5", "fnc_4", "fnc_2", "fnc_1"]
            page = await one.list_function_calls(FunctionCallQuery(limit=2, before="fnc_5"))
            assert [c.id for c in page] == ["fnc_4", "fnc_2"]
            fallbacks = await one.list_function_calls(FunctionCallQuery(outcome="fallback"))
            assert [c.id for c in fallbacks] == ["fnc_1"]
            assert await one.list_function_calls(FunctionCallQuery(function="other")) == []

            await one.purge(NOW + 1)  # retention forgets function calls too, keys with them
            assert await one.list_function_calls(FunctionCallQuery()) == []
            assert await one.function_answer("retell", "book", "default", "k") is None


def message(id: str, recipient: str = "+4915112345678", **fields: Any) -> Message:
    return Message(
        id=id,
        tenant=fields.pop("tenant", "default"),
        channel="twilio.sms",
        kind="sms",
        provider="twilio",
        recipient=recipient,
        template="sms/booking-confirmation.txt",
        status=fields.pop("status", "sent"),
        created_at=NOW,
        timeline=(MessageStep(fields.pop("status_at", "sent"), NOW),),
        **fields,
    )


def test_messages_record_update_and_list(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            assert await store.record_message(message("msg_1", provider_id="SM1", job_id="job_1"))
            assert not await store.record_message(message("msg_1", recipient="+49000"))
            await store.record_message(message("msg_2", recipient="+4917600000000"))
            skipped = message("msg_3", status="skipped", status_at="skipped")
            await store.record_message(skipped)

            delivered = MessageUpdate("delivered", NOW + 5, provider="twilio", provider_id="SM1")
            now = await store.update_message(delivered)
            assert now is not None and now.id == "msg_1" and now.status == "delivered"
            late = MessageUpdate("sent", NOW + 6, id="msg_1", detail="late")
            now = await store.update_message(late)
            assert now is not None and now.status == "delivered"  # a late sent does not regress
            failed = MessageUpdate("failed", NOW + 7, id="msg_2", provider_id_set="SM2")
            now = await store.update_message(failed)
            assert now is not None and now.status == "failed" and now.provider_id == "SM2"

            unknown = MessageUpdate("delivered", NOW, provider="twilio", provider_id="SMX")
            assert await store.update_message(unknown) is None
            assert await store.update_message(MessageUpdate("delivered", NOW)) is None

            got = await store.get_message("msg_1")
            assert got is not None
            assert got.recipient == "+4915112345678" and got.job_id == "job_1"
            assert [(s.status, s.at, s.detail) for s in got.timeline] == [
                ("sent", NOW, ""),
                ("delivered", NOW + 5, ""),
                ("sent", NOW + 6, "late"),
            ]
            assert await store.get_message("msg_9") is None

            listed = await store.list_messages(MessageQuery())
            assert [m.id for m in listed] == ["msg_3", "msg_2", "msg_1"]
            by_recipient = await store.list_messages(MessageQuery(recipient="+4915112345678"))
            assert [m.id for m in by_recipient] == ["msg_3", "msg_1"]
            by_status = await store.list_messages(MessageQuery(status="skipped"))
            assert [m.id for m in by_status] == ["msg_3"]
            assert await store.list_messages(MessageQuery(tenant="other")) == []
            assert len(await store.list_messages(MessageQuery(limit=1))) == 1

    run(main)


def test_opt_outs_per_tenant_and_kind(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            phone = "+4915112345678"
            assert await store.opt_out_reason("default", "sms", phone) is None
            assert await store.set_opt_out("default", "sms", phone, "replied STOP", NOW)
            assert not await store.set_opt_out("default", "sms", phone, "again", NOW + 1)
            assert await store.opt_out_reason("default", "sms", phone) == "replied STOP"
            assert await store.opt_out_reason("default", "whatsapp", phone) is None
            assert await store.opt_out_reason("other", "sms", phone) is None
            assert await store.clear_opt_out("default", "sms", phone)
            assert not await store.clear_opt_out("default", "sms", phone)
            assert await store.opt_out_reason("default", "sms", phone) is None

    run(main)


def test_added_jobs_are_enqueued_once(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            await store.add_jobs([job("job_1", "evt_1", key="k/then/a")])
            await store.add_jobs([job("job_2", "evt_1", key="k/then/a"), job("job_3", "evt_1")])
            await store.add_jobs([])
            listed = await store.list_jobs(JobQuery(event_id="evt_1"))
            assert sorted(j.id for j in listed) == ["job_1", "job_3"]
            assert {j.status for j in listed} == {"queued"}

    run(main)


# ---- people: find and erase ------------------------------------------------------------------

JANE = Person.of("Jane.Doe@Example.com", "+1 415 555 0123")
JANE_HERE = Person.of("jane.doe@example.com", "14155550123", "default")


async def seed_people(store: Store) -> None:
    """Jane's data in tenants default and clinic (in several forms), Bob's beside it."""
    jane_json = json.dumps(
        {
            "payload": {
                "attendees": [{"email": "Jane.Doe@Example.com", "phone": "+1 (415) 555-0123"}]
            }
        }
    )
    await store.insert_events(
        [
            event("evt_jane", "k-jane", body=jane_json.encode()),
            event("evt_form", "k-form", tenant="clinic", body=b"From=%2B14155550123&Body=STOP"),
            event("evt_keyed", "sync/contacts/jane.doe@example.com/created/ab", type=None),
            event("evt_bob", "k-bob", body=b'{"email": "bob@example.org", "to": "+4915112345678"}'),
        ]
    )
    jane_job = replace(job("job_jane", "evt_jane"), context='{"data": {"to": "+14155550123"}}')
    bob_job = replace(job("job_bob", "evt_bob"), context='{"data": {"to": "+4915112345678"}}')
    await store.commit_dispatches(
        [
            Dispatch("evt_jane", "dispatched", [jane_job]),
            Dispatch("evt_bob", "dispatched", [bob_job]),
            Dispatch("evt_form", "dispatched"),
            Dispatch("evt_keyed", "dispatched"),
        ]
    )
    await store.record_message(message("msg_jane", recipient="+14155550123"))
    await store.record_message(message("msg_bob", recipient="+4915112345678"))
    await store.set_opt_out("default", "sms", "+14155550123", "replied STOP", NOW)
    await store.set_opt_out("clinic", "sms", "+14155550123", "replied STOP", NOW)
    await store.set_opt_out("default", "sms", "+4915112345678", "replied STOP", NOW)
    jane_call = function_call("fnc_jane", "call-1", answer="Booked for jane.doe@example.com.")
    jane_call = replace(jane_call, request='{"call": {"from_number": "+14155550123"}}')
    await store.record_function_call(jane_call)
    await store.record_function_call(function_call("fnc_bob", "call-2", answer="Booked, Bob."))

    def plan(stored: Mapping[str, StoredRecord]) -> PagePlan:
        writes = [
            RecordWrite("c1", "h1", None, None, False, '{"email": "JANE.DOE@example.com"}'),
            RecordWrite("c2", "h2", None, None, False, '{"email": "bob@example.org"}'),
        ]
        return PagePlan(writes, [], SyncCounts(fetched=2, created=2, pages=1))

    assert await store.acquire_sync(KEY, "run_1", now=NOW, lease_until=NOW + 600) is not None
    await store.commit_sync_page(
        PageCommit(KEY, "run_1", ["c1", "c2"], plan, None, None, True, False, False, NOW + 600, NOW)
    )


def test_a_person_is_found_in_every_table_by_email_and_phone(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            await seed_people(store)
            everywhere = (await store.find_person(JANE)).as_dict()["tables"]
            assert {n: t["count"] for n, t in everywhere.items() if t["count"]} == {
                "events": 3,
                "jobs": 1,
                "messages": 1,
                "opt_outs": 2,
                "function_calls": 1,
                "records": 1,
            }
            assert everywhere["events"]["references"] == ["evt_form", "evt_jane", "evt_keyed"]
            assert everywhere["opt_outs"]["references"] == ["sms/clinic", "sms/default"]
            assert everywhere["records"]["references"] == ["acme.things/default/c1"]
            here = (await store.find_person(JANE_HERE)).as_dict()
            assert here["tables"]["events"]["references"] == ["evt_jane", "evt_keyed"]
            assert here["total"] == 7
            by_phone = await store.find_person(Person.of(None, "004915112345678"))
            assert by_phone.tables["events"].references == ["evt_bob"]
            assert by_phone.tables["messages"].references == ["msg_bob"]
            nobody = await store.find_person(Person.of("jane@example.com", None))
            assert nobody.total == 0

    run(main)


def test_erasing_a_person_keeps_dedup_and_leaves_others_alone(make_store: Factory) -> None:
    async def main() -> None:
        async with opened(make_store) as store:
            await seed_people(store)
            bob_before = await store.find_person(Person.of("bob@example.org", "+4915112345678"))
            erased = await store.erase_person(JANE_HERE)
            assert erased.redacted == {
                "events": 2,
                "jobs": 1,
                "function_calls": 1,
                "records": 1,
            }
            assert erased.deleted == {"messages": 1, "opt_outs": 1}
            assert erased.compacted

            jane = await store.get_event("evt_jane")
            assert jane is not None
            assert (jane.body, jane.headers, jane.status) == (ERASED_BODY, {}, "dispatched")
            keyed = await store.insert_events(
                [event("evt_again", "k-jane"), event("evt_new", "k-new")]
            )
            assert [(r.event_id, r.duplicate) for r in keyed] == [
                ("evt_jane", True),  # a redelivery is still a duplicate
                ("evt_new", False),
            ]
            (jane_job,) = await store.list_jobs(JobQuery(event_id="evt_jane"))
            assert (jane_job.context, jane_job.spec, jane_job.status) == (
                ERASED_JSON,
                ERASED_JSON,
                "cancelled",
            )
            assert await store.get_message("msg_jane") is None
            assert await store.opt_out_reason("default", "sms", "+14155550123") is None
            answer = await store.function_answer("retell", "book", "default", "call-1")
            assert answer is not None and answer.answer == "Booked for [erased]."
            assert answer.request == ERASED_JSON
            record = await store.get_sync_record(KEY, "c1")
            assert record is not None and (record.data, record.content_hash) == (ERASED_JSON, "h1")

            # the other tenant's copy and the other person are untouched
            assert await store.opt_out_reason("clinic", "sms", "+14155550123") == "replied STOP"
            form = await store.get_event("evt_form")
            assert form is not None and form.body == b"From=%2B14155550123&Body=STOP"
            bob = await store.get_event("evt_bob")
            assert bob is not None and b"bob@example.org" in bob.body
            assert await store.get_message("msg_bob") is not None
            assert await store.opt_out_reason("default", "sms", "+4915112345678") is not None
            bob_after = await store.find_person(Person.of("bob@example.org", "+4915112345678"))
            assert bob_after.as_dict() == bob_before.as_dict()

            assert (await store.find_person(JANE_HERE)).total == 0
            again = await store.erase_person(JANE_HERE)
            assert (again.total, again.redacted, again.deleted) == (0, {}, {})
            assert (await store.find_person(JANE)).tables["events"].references == ["evt_form"]

    run(main)


def test_open_store_selects_by_url(tmp_path: Path) -> None:
    assert isinstance(open_store(f"sqlite:///{tmp_path / 'g.db'}"), SQLiteStore)
    with pytest.raises(UsageError, match="expected sqlite:///PATH or postgresql://"):
        open_store("mysql://u@db.example/gw")
    pytest.importorskip("asyncpg", reason="asyncpg is not installed")
    from gateway.store.postgres import PostgresStore

    assert isinstance(open_store("postgresql://u@db.example/gw"), PostgresStore)
    assert isinstance(open_store("postgres://u@db.example/gw"), PostgresStore)


def test_postgres_without_asyncpg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for name in list(sys.modules):
        if name.startswith("gateway.store.postgres"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # as if it were not installed
    with pytest.raises(UsageError, match=r"pip install 'yaml-gateway\[postgres\]'"):
        open_store("postgresql://u@db.example/gw")


def test_an_unreachable_postgres_is_a_clear_error_without_the_password() -> None:
    pytest.importorskip("asyncpg", reason="asyncpg is not installed")
    store = open_store("postgresql://gw:hunter2@127.0.0.1:1/gw")  # nothing listens on port 1
    with pytest.raises(
        UsageError, match=r"cannot open PostgreSQL at postgresql://gw:\*\*\*@"
    ) as info:
        asyncio.run(store.open())
    assert "hunter2" not in str(info.value)
