"""PostgreSQL tables of processing: dispatch state of events, the durable job queue, OAuth
tokens.

Several replicas claim from one queue: `claim_jobs` is one statement that locks the due rows
it takes with FOR UPDATE SKIP LOCKED, so two workers never take the same job, and neither waits
for the other. Several dispatchers may dispatch the same pending event: the jobs' unique
idempotency keys (ON CONFLICT DO NOTHING) keep that harmless. Writes of one transaction touch
rows in a fixed order (sorted keys), so two dispatchers never deadlock on each other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from gateway.store.entities import (
    ATTEMPTS_KEPT,
    Backlog,
    Dispatch,
    EventQuery,
    Job,
    JobAttempt,
    JobOutcome,
    JobQuery,
    NewJob,
)
from gateway.store.postgres_base import PostgresBase, affected
from gateway.store.rows import (
    ATTEMPT_COLUMNS,
    JOB_COLUMNS,
    LOST_JOBS,
    attempt_texts,
    attempts_by_job,
    backlog_from_row,
    backlog_query,
    event_where,
    job_from_row,
    job_query_fields,
    new_job_values,
    postgres_mark,
    replay_limit,
)

_BACKLOG = backlog_query("$1::double precision")
_CLAIM = (  # jobs.id: `due` has an id too
    "WITH due AS (SELECT id FROM jobs"  # noqa: S608
    " WHERE (status = 'queued' AND run_at <= $1) OR (status = 'running' AND locked_until < $1)"
    " ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
    " UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_until = $3,"
    " updated_at = $1 FROM due WHERE jobs.id = due.id"
    f" RETURNING jobs.{JOB_COLUMNS}"
)
# One statement, so one round trip and one transaction: the outcomes apply to the jobs a
# claim still holds, and each applied outcome's attempt goes in its job's history. An outcome
# from a claim adds one row per claim, which ATTEMPTS_KEPT has room for; one from no claim cuts
# the history (the DELETE sees it before this INSERT: it keeps one fewer).
_FINISH = (
    "WITH o AS (SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[],"  # noqa: S608
    " $5::text[], $7::int[], $8::float8[], $9::float8[], $10::int[], $11::text[], $12::text[],"
    " $13::text[]) AS o (id, status, run_at, error, result, attempt, started_at, duration_ms,"
    " http_status, outcome, attempt_error, answer)),"
    " done AS (UPDATE jobs SET status = o.status, run_at = COALESCE(o.run_at, jobs.run_at),"
    " last_error = o.error, result = COALESCE(o.result, jobs.result), locked_until = NULL,"
    " updated_at = $6 FROM o WHERE jobs.id = o.id"
    " AND (o.attempt IS NULL OR (jobs.status = 'running' AND jobs.attempts = o.attempt))"
    " RETURNING jobs.id, jobs.attempts),"
    " cut AS (DELETE FROM job_attempts h USING done, o WHERE h.job_id = done.id"
    " AND o.id = done.id AND o.attempt IS NULL"
    " AND h.seq <= (SELECT k.seq FROM job_attempts k WHERE k.job_id = done.id"
    " ORDER BY k.seq DESC LIMIT 1 OFFSET $14))"
    f" INSERT INTO job_attempts ({ATTEMPT_COLUMNS})"
    " SELECT o.id, done.attempts, COALESCE(o.started_at, $6), o.duration_ms, o.outcome,"
    " o.http_status, o.attempt_error, o.answer FROM done JOIN o ON o.id = done.id"
)
_INSERT_JOB = (
    f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES"  # noqa: S608
    " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', 0, $12, $13, NULL, NULL, $14, $15)"
    " ON CONFLICT (idempotency_key) DO NOTHING"
)


class JobTables(PostgresBase):
    """The processing tables; mixed into PostgresStore."""

    # ---- dispatch -------------------------------------------------------------------------

    async def commit_dispatches(self, dispatches: Sequence[Dispatch]) -> None:
        """Enqueue the jobs, apply the cancels and mark the events, all in one transaction."""
        now = time.time()
        jobs = sorted((job for d in dispatches for job in d.jobs), key=lambda j: j.idempotency_key)
        cancels = sorted({pair for d in dispatches for pair in d.cancels})
        marks = sorted(((d.event_id, d.status, d.error) for d in dispatches), key=lambda m: m[0])
        async with self.transaction() as db:
            if jobs:
                await db.executemany(_INSERT_JOB, [new_job_values(job) for job in jobs])
            if cancels:
                await db.executemany(
                    "UPDATE jobs SET status = 'cancelled', updated_at = $1"
                    " WHERE tenant = $2 AND schedule_key = $3 AND status = 'queued'",
                    [(now, tenant, key) for tenant, key in cancels],
                )
            if marks:
                await db.executemany(
                    "UPDATE events SET status = $2, error = $3 WHERE id = $1", marks
                )

    async def add_jobs(self, jobs: Sequence[NewJob]) -> None:
        if jobs:
            ordered = sorted(jobs, key=lambda j: j.idempotency_key)
            await self.pool.executemany(_INSERT_JOB, [new_job_values(job) for job in ordered])

    async def purge(self, cutoff: float) -> tuple[int, int]:
        """Forget what is finished and older than `cutoff`: (events, jobs) deleted, and the
        in-call function calls of that age. A repeat of a purged event is new again, so the
        retention is also the dedup window."""
        async with self.transaction() as db:
            await db.execute(  # the histories of the jobs that go
                "DELETE FROM job_attempts WHERE job_id IN (SELECT id FROM jobs"
                " WHERE status IN ('succeeded', 'dead', 'cancelled') AND updated_at < $1)",
                cutoff,
            )
            jobs = await db.execute(
                "DELETE FROM jobs WHERE status IN ('succeeded', 'dead', 'cancelled')"
                " AND updated_at < $1",
                cutoff,
            )
            events = await db.execute(
                "DELETE FROM events WHERE status IN ('dispatched', 'partial', 'ignored', 'failed')"
                " AND received_at < $1"
                " AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.event_id = events.id)",
                cutoff,
            )
            await db.execute("DELETE FROM function_calls WHERE started_at < $1", cutoff)
        return affected(events), affected(jobs)

    async def replay_event(self, event_id: str) -> bool:
        """Dispatch an event again: its flows run anew (new idempotency keys)."""
        status = await self.pool.execute(
            "UPDATE events SET status = 'pending', replays = replays + 1, error = NULL"
            " WHERE id = $1",
            event_id,
        )
        return affected(status) > 0

    async def replay_events(self, query: EventQuery) -> int:
        """Dispatch again, in one statement, the events `query` matches (the oldest first, at
        most `query.limit` and REPLAY_LIMIT): how many. The rows are
        locked in id order, as the dispatchers lock them."""
        where, args = event_where(query, postgres_mark)
        status = await self.pool.execute(
            f"WITH chosen AS (SELECT id FROM events {where}"  # noqa: S608
            f" ORDER BY id LIMIT ${len(args) + 1} FOR UPDATE)"
            " UPDATE events SET status = 'pending', replays = events.replays + 1, error = NULL"
            " FROM chosen WHERE events.id = chosen.id",
            *args,
            replay_limit(query),
        )
        return affected(status)

    # ---- the queue ------------------------------------------------------------------------

    async def claim_jobs(self, now: float, limit: int, lease: float) -> list[Job]:
        """Take due jobs (and jobs whose worker died: lease expired) and mark them running;
        a job locked by another claim at that moment is skipped, never taken twice."""
        await self.pool.execute(LOST_JOBS.replace("?", "$1"), now)
        rows = await self.pool.fetch(_CLAIM, now, limit, now + lease)
        return sorted((job_from_row(r) for r in rows), key=lambda j: (j.run_at, j.id))

    async def finish_jobs(self, outcomes: Sequence[JobOutcome]) -> None:
        """Record the outcomes of a batch of jobs and their attempts: one statement, one
        transaction."""
        if not outcomes:
            return
        texts = [attempt_texts(o) for o in outcomes]
        await self.pool.execute(
            _FINISH,
            [o.job_id for o in outcomes],
            [o.status for o in outcomes],
            [o.run_at for o in outcomes],
            [o.error for o in outcomes],
            [o.result for o in outcomes],
            time.time(),
            [o.attempt for o in outcomes],
            [o.started_at for o in outcomes],
            [o.duration_ms for o in outcomes],
            [o.http_status for o in outcomes],
            [o.attempt_outcome for o in outcomes],
            [error for error, _ in texts],
            [answer for _, answer in texts],
            ATTEMPTS_KEPT - 1,
        )

    async def extend_leases(self, job_ids: Sequence[str], until: float) -> None:
        """Keep running jobs leased while their worker is alive (a heartbeat)."""
        if not job_ids:
            return
        await self.pool.execute(
            "UPDATE jobs SET locked_until = $1 WHERE status = 'running' AND id = ANY($2::text[])",
            until,
            list(job_ids),
        )

    async def next_run_at(self) -> float | None:
        value = await self.pool.fetchval("SELECT min(run_at) FROM jobs WHERE status = 'queued'")
        return float(value) if value is not None else None

    async def count_jobs(self, query: JobQuery) -> int:
        """Jobs `query` matches (its limit does not apply)."""
        clauses, args = _job_filters(query)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        found = await self.pool.fetchval(f"SELECT count(*) FROM jobs {where}", *args)  # noqa: S608
        return int(found)

    async def list_jobs(self, query: JobQuery) -> list[Job]:
        clauses, args = _job_filters(query)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        args.append(query.limit)
        rows = await self.pool.fetch(
            f"SELECT {JOB_COLUMNS} FROM jobs {where}"  # noqa: S608
            f" ORDER BY created_at DESC, id DESC LIMIT ${len(args)}",
            *args,
        )
        return [job_from_row(r) for r in rows]

    async def get_job(self, job_id: str) -> Job | None:
        row = await self.pool.fetchrow(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1",  # noqa: S608
            job_id,
        )
        return job_from_row(row) if row is not None else None

    async def job_attempts(self, job_ids: Sequence[str]) -> dict[str, list[JobAttempt]]:
        """The recorded attempts of these jobs, oldest first."""
        if not job_ids:
            return {}
        rows = await self.pool.fetch(
            f"SELECT {ATTEMPT_COLUMNS} FROM job_attempts"  # noqa: S608
            " WHERE job_id = ANY($1::text[]) ORDER BY job_id, seq",
            list(job_ids),
        )
        return attempts_by_job(rows)

    async def retry_jobs(self, query: JobQuery) -> int:
        """Queue dead jobs again, now, with a fresh attempt budget. Returns how many."""
        now = time.time()
        clauses, args = _job_filters(
            JobQuery(**{**job_query_fields(query), "status": "dead"}), start=2
        )
        where = " AND ".join(clauses)
        async with self.transaction() as db:
            await db.execute(  # leave room in their histories for the new runs (ATTEMPTS_KEPT)
                "DELETE FROM job_attempts WHERE seq IN (SELECT seq FROM (SELECT h.seq,"  # noqa: S608
                " j.max_attempts, row_number() OVER (PARTITION BY h.job_id ORDER BY h.seq DESC)"
                f" AS newer FROM job_attempts h JOIN (SELECT id, max_attempts FROM jobs WHERE"
                f" {where}) j ON j.id = h.job_id) ranked WHERE newer > $1 - max_attempts)",
                ATTEMPTS_KEPT,
                *args,
            )
            status = await db.execute(
                "UPDATE jobs SET status = 'queued', attempts = 0, run_at = $1, updated_at = $1"  # noqa: S608
                f" WHERE {where}",
                now,
                *args,
            )
        return affected(status)

    async def job_counts(self) -> dict[str, int]:
        rows = await self.pool.fetch("SELECT status, count(*) FROM jobs GROUP BY status")
        return {r[0]: int(r[1]) for r in rows}

    async def backlog(self, now: float) -> Backlog:
        row = await self.pool.fetchrow(_BACKLOG, now)
        return backlog_from_row(tuple(row))

    # ---- OAuth tokens ---------------------------------------------------------------------

    async def get_token(self, integration: str, tenant: str) -> bytes | None:
        token = await self.pool.fetchval(
            "SELECT token FROM oauth_tokens WHERE integration = $1 AND tenant = $2",
            integration,
            tenant,
        )
        return bytes(token) if token is not None else None

    async def put_token(self, integration: str, tenant: str, token: bytes) -> None:
        await self.pool.execute(
            "INSERT INTO oauth_tokens (integration, tenant, token, updated_at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (integration, tenant)"
            " DO UPDATE SET token = excluded.token, updated_at = excluded.updated_at",
            integration,
            tenant,
            token,
            time.time(),
        )


def _job_filters(query: JobQuery, *, start: int = 1) -> tuple[list[str], list[Any]]:
    """WHERE clauses with numbered parameters from `$start` on, and their values."""
    clauses: list[str] = []
    args: list[Any] = []
    for column in ("id", "status", "integration", "tenant", "event_id"):
        value = getattr(query, column)
        if value is not None:
            clauses.append(f"{column} = ${start + len(args)}")
            args.append(value)
    if query.since is not None:
        clauses.append(f"created_at >= ${start + len(args)}")
        args.append(query.since)
    if query.until is not None:
        clauses.append(f"created_at < ${start + len(args)}")
        args.append(query.until)
    return clauses, args
