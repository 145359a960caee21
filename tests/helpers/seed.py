"""Events and dead jobs written straight into a SQLite file, before a gateway opens it: what
the admin UI tests look at. The events are dispatched already and the jobs dead, so a
gateway that opens the file runs nothing on its own. Each dead job was tried three times:
two 503s (retried), then a 500 that buried it; its history keeps the provider's answers."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.store import SQLiteStore
from gateway.store.entities import Dispatch, Job, JobOutcome, NewEvent, NewJob

ATTEMPTS = 3
BUSY = '{"error": "busy, try later"}'
DOWN = '{"error": "upstream down"}'


def _outcome(job: Job, now: float) -> JobOutcome:
    """The seeded jobs' attempts: 503, 503, then 500 and dead."""
    started = now - 40 + 10 * job.attempts
    if job.attempts < ATTEMPTS:
        return JobOutcome(
            job.id, "queued", run_at=now - 5, error="HTTP 503 from the provider",
            attempt=job.attempts, started_at=started, duration_ms=120.0, http_status=503,
            answer=BUSY,
        )  # fmt: skip
    return JobOutcome(
        job.id, "dead", error="HTTP 500 from the provider", attempt=job.attempts,
        started_at=started, duration_ms=80.5, http_status=500, answer=DOWN,
    )  # fmt: skip


@dataclass(frozen=True)
class Seeded:
    event_ids: list[str]
    provider_ids: list[str]
    dead_job_ids: list[str]


def _job(event_id: str, n: int, integration: str, now: float) -> NewJob:
    return NewJob(
        id=f"job_{event_id}_{n}",
        idempotency_key=f"{event_id}:notify:{n}",
        event_id=event_id,
        flow="notify",
        action=f"sms_{n}",
        kind="call",
        integration=integration,
        tenant="default",
        schedule_key=None,
        spec="{}",
        context=json.dumps({"type": "payment.succeeded", "amount": 1200 + n}),
        run_at=now - 5,
        max_attempts=ATTEMPTS,
        created_at=now - 5,
    )


async def _seed(db: Path, integration: str, events: int, dead: int) -> Seeded:
    store = SQLiteStore(f"sqlite:///{db}")
    await store.open()
    now = time.time()
    try:
        new = [
            NewEvent(
                id=f"evt_ui_{i:03d}",
                integration=integration,
                tenant="default",
                dedup_key=f"pi_ui_{i:03d}",
                provider_id=f"pi_ui_{i:03d}",
                type="payment_intent.succeeded",
                received_at=now - 60 * i,
                headers=json.dumps({"content-type": "application/json"}),
                body=json.dumps(
                    {"id": f"pi_ui_{i:03d}", "note": f"order {i} <b>bold</b>", "amount": 1200}
                ).encode(),
            )
            for i in range(events)
        ]
        await store.insert_events(new)
        jobs = [_job(new[i % events].id, i, integration, now) for i in range(dead)]
        dispatches = [
            Dispatch(e.id, "dispatched", jobs=[j for j in jobs if j.event_id == e.id]) for e in new
        ]
        await store.commit_dispatches(dispatches)
        claimed: list[Job] = []
        for _ in range(ATTEMPTS):
            claimed = await store.claim_jobs(now, dead, 60)
            await store.finish_jobs([_outcome(j, now) for j in claimed])
        return Seeded(
            [e.id for e in new], [e.provider_id or "" for e in new], [j.id for j in claimed]
        )
    finally:
        await store.close()


def seed(db: Path, *, integration: str = "stripe", events: int = 5, dead: int = 3) -> Seeded:
    return asyncio.run(_seed(db, integration, events, dead))
