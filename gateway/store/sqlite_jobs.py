"""SQLite tables of processing: dispatch state of events, the durable job queue, OAuth tokens."""

from __future__ import annotations

import sqlite3
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
    replay_limit,
    sqlite_mark,
)
from gateway.store.sqlite_base import SQLiteBase

JOBS_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    flow TEXT NOT NULL,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    integration TEXT NOT NULL,
    tenant TEXT NOT NULL,
    schedule_key TEXT,
    spec TEXT NOT NULL,
    context TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at REAL NOT NULL,
    locked_until REAL,
    last_error TEXT,
    result TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (status, run_at);
CREATE INDEX IF NOT EXISTS jobs_by_schedule ON jobs (tenant, schedule_key);
CREATE INDEX IF NOT EXISTS jobs_by_event ON jobs (event_id);
CREATE TABLE IF NOT EXISTS job_attempts (
    seq INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at REAL NOT NULL,
    duration_ms REAL,
    outcome TEXT NOT NULL,
    http_status INTEGER,
    error TEXT,
    answer TEXT
);
CREATE INDEX IF NOT EXISTS job_attempts_by_job ON job_attempts (job_id, seq);
CREATE TABLE IF NOT EXISTS oauth_tokens (
    integration TEXT NOT NULL,
    tenant TEXT NOT NULL,
    token BLOB NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (integration, tenant)
);
"""
_BACKLOG = backlog_query(":now")


class JobTables(SQLiteBase):
    """The processing tables; mixed into SQLiteStore."""

    # ---- dispatch -------------------------------------------------------------------------

    async def commit_dispatches(self, dispatches: Sequence[Dispatch]) -> None:
        """Enqueue the jobs, apply the cancels and mark the events, all in one transaction."""
        await self.write(_commit_dispatches, dispatches, time.time())

    async def add_jobs(self, jobs: Sequence[NewJob]) -> None:
        await self.write(_add_jobs, jobs)

    async def purge(self, cutoff: float) -> tuple[int, int]:
        """Forget what is finished and older than `cutoff`: (events, jobs) deleted, and the
        in-call function calls of that age. A repeat of a purged event is new again, so the
        retention is also the dedup window."""
        return await self.write(_purge, cutoff)

    async def replay_event(self, event_id: str) -> bool:
        """Dispatch an event again: its flows run anew (new idempotency keys)."""
        return await self.write(_replay, event_id)

    async def replay_events(self, query: EventQuery) -> int:
        """Dispatch again, in one transaction, the events `query` matches (the oldest first,
        at most `query.limit` and REPLAY_LIMIT): how many."""
        where, args = event_where(query, sqlite_mark)
        return await self.write(_replay_matching, where, [*args, replay_limit(query)])

    # ---- the queue ------------------------------------------------------------------------

    async def claim_jobs(self, now: float, limit: int, lease: float) -> list[Job]:
        """Take due jobs (and jobs whose worker died: lease expired) and mark them running."""
        if not await self._anything_due(now):
            return []  # an idle worker polls without taking the write lock
        return await self.write(_claim, now, limit, lease)

    async def _anything_due(self, now: float) -> bool:
        rows = await self.reader.execute_fetchall(
            "SELECT 1 FROM jobs WHERE (status = 'queued' AND run_at <= ?)"
            " OR (status = 'running' AND locked_until < ?) LIMIT 1",
            (now, now),
        )
        return bool(rows)

    async def finish_jobs(self, outcomes: Sequence[JobOutcome]) -> None:
        await self.write(_finish, outcomes, time.time())

    async def extend_leases(self, job_ids: Sequence[str], until: float) -> None:
        """Keep running jobs leased while their worker is alive (a heartbeat)."""
        await self.write(_extend_leases, job_ids, until)

    async def next_run_at(self) -> float | None:
        rows = await self.reader.execute_fetchall(
            "SELECT min(run_at) FROM jobs WHERE status = 'queued'"
        )
        value = next(iter(rows))[0]
        return float(value) if value is not None else None

    async def list_jobs(self, query: JobQuery) -> list[Job]:
        clauses, args = _job_filters(query)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.reader.execute_fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, id DESC LIMIT ?",  # noqa: S608
            [*args, query.limit],
        )
        return [job_from_row(r) for r in rows]

    async def count_jobs(self, query: JobQuery) -> int:
        """Jobs `query` matches (its limit does not apply)."""
        clauses, args = _job_filters(query)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.reader.execute_fetchall(
            f"SELECT count(*) FROM jobs {where}",  # noqa: S608
            args,
        )
        return int(next(iter(rows))[0])

    async def get_job(self, job_id: str) -> Job | None:
        rows = await self.reader.execute_fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?",  # noqa: S608
            [job_id],
        )
        return job_from_row(next(iter(rows))) if rows else None

    async def job_attempts(self, job_ids: Sequence[str]) -> dict[str, list[JobAttempt]]:
        """The recorded attempts of these jobs, oldest first."""
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        rows = await self.reader.execute_fetchall(
            f"SELECT {ATTEMPT_COLUMNS} FROM job_attempts"  # noqa: S608
            f" WHERE job_id IN ({marks}) ORDER BY job_id, seq",
            list(job_ids),
        )
        return attempts_by_job(list(rows))

    async def retry_jobs(self, query: JobQuery) -> int:
        """Queue dead jobs again, now, with a fresh attempt budget. Returns how many."""
        clauses, args = _job_filters(JobQuery(**{**job_query_fields(query), "status": "dead"}))
        return await self.write(_retry, clauses, args, time.time())

    async def job_counts(self) -> dict[str, int]:
        rows = await self.reader.execute_fetchall(
            "SELECT status, count(*) FROM jobs GROUP BY status"
        )
        return {r[0]: int(r[1]) for r in rows}

    async def backlog(self, now: float) -> Backlog:
        rows = await self.reader.execute_fetchall(_BACKLOG, {"now": now})
        return backlog_from_row(next(iter(rows)))

    # ---- OAuth tokens ---------------------------------------------------------------------

    async def get_token(self, integration: str, tenant: str) -> bytes | None:
        rows = await self.reader.execute_fetchall(
            "SELECT token FROM oauth_tokens WHERE integration = ? AND tenant = ?",
            (integration, tenant),
        )
        return bytes(next(iter(rows))[0]) if rows else None

    async def put_token(self, integration: str, tenant: str, token: bytes) -> None:
        await self.write(_put_token, (integration, tenant, token, time.time()))


def _replay(db: sqlite3.Connection, event_id: str) -> bool:
    cursor = db.execute(
        "UPDATE events SET status = 'pending', replays = replays + 1, error = NULL WHERE id = ?",
        (event_id,),
    )
    return cursor.rowcount > 0


def _extend_leases(db: sqlite3.Connection, job_ids: Sequence[str], until: float) -> None:
    marks = ",".join("?" * len(job_ids))
    db.execute(
        f"UPDATE jobs SET locked_until = ? WHERE status = 'running' AND id IN ({marks})",  # noqa: S608
        (until, *job_ids),
    )


def _retry(db: sqlite3.Connection, clauses: list[str], args: list[Any], now: float) -> int:
    where = " AND ".join(clauses)
    db.execute(  # leave room in their histories for the new runs (see ATTEMPTS_KEPT)
        "DELETE FROM job_attempts WHERE seq IN (SELECT seq FROM (SELECT h.seq, j.max_attempts,"  # noqa: S608
        " row_number() OVER (PARTITION BY h.job_id ORDER BY h.seq DESC) AS newer"
        f" FROM job_attempts h JOIN (SELECT id, max_attempts FROM jobs WHERE {where})"
        " j ON j.id = h.job_id) WHERE newer > ? - max_attempts)",
        [*args, ATTEMPTS_KEPT],
    )
    cursor = db.execute(
        "UPDATE jobs SET status = 'queued', attempts = 0, run_at = ?, updated_at = ?"  # noqa: S608
        f" WHERE {where}",
        [now, now, *args],
    )
    return cursor.rowcount


def _put_token(db: sqlite3.Connection, row: tuple[str, str, bytes, float]) -> None:
    db.execute(
        "INSERT INTO oauth_tokens (integration, tenant, token, updated_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (integration, tenant)"
        " DO UPDATE SET token = excluded.token, updated_at = excluded.updated_at",
        row,
    )


def _claim(db: sqlite3.Connection, now: float, limit: int, lease: float) -> list[Job]:
    db.execute(LOST_JOBS, (now, now))
    ids = [
        row[0]
        for row in db.execute(
            "SELECT id FROM jobs WHERE (status = 'queued' AND run_at <= ?)"
            " OR (status = 'running' AND locked_until < ?) ORDER BY run_at LIMIT ?",
            (now, now, limit),
        )
    ]
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    db.execute(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1,"  # noqa: S608
        f" locked_until = ?, updated_at = ? WHERE id IN ({marks})",
        (now + lease, now, *ids),
    )
    rows = db.execute(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({marks}) ORDER BY run_at",  # noqa: S608
        ids,
    )
    return [job_from_row(r) for r in rows]


def _finish(db: sqlite3.Connection, outcomes: Sequence[JobOutcome], now: float) -> None:
    """Each outcome's attempt goes in its job's history (before the job leaves `running`,
    under the same condition), then the outcomes apply. An outcome from a claim adds one row
    per claim, which ATTEMPTS_KEPT has room for; one from no claim cuts the history."""
    db.executemany(
        f"INSERT INTO job_attempts ({ATTEMPT_COLUMNS})"  # noqa: S608
        " SELECT id, attempts, ?, ?, ?, ?, ?, ? FROM jobs WHERE id = ?"
        " AND (? IS NULL OR (status = 'running' AND attempts = ?))",
        [
            (
                now if o.started_at is None else o.started_at,
                o.duration_ms,
                o.attempt_outcome,
                o.http_status,
                *attempt_texts(o),
                o.job_id,
                o.attempt,
                o.attempt,
            )
            for o in outcomes
        ],
    )
    unclaimed = [(o.job_id, o.job_id, ATTEMPTS_KEPT) for o in outcomes if o.attempt is None]
    if unclaimed:
        db.executemany(
            "DELETE FROM job_attempts WHERE job_id = ? AND seq <= (SELECT seq FROM job_attempts"
            " WHERE job_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            unclaimed,
        )
    db.executemany(
        "UPDATE jobs SET status = ?, run_at = COALESCE(?, run_at), last_error = ?,"
        " result = COALESCE(?, result), locked_until = NULL, updated_at = ? WHERE id = ?"
        " AND (? IS NULL OR (status = 'running' AND attempts = ?))",
        [
            (o.status, o.run_at, o.error, o.result, now, o.job_id, o.attempt, o.attempt)
            for o in outcomes
        ],
    )


def _purge(db: sqlite3.Connection, cutoff: float) -> tuple[int, int]:
    db.execute(  # the histories of the jobs that go
        "DELETE FROM job_attempts WHERE job_id IN (SELECT id FROM jobs"
        " WHERE status IN ('succeeded', 'dead', 'cancelled') AND updated_at < ?)",
        (cutoff,),
    )
    jobs = db.execute(
        "DELETE FROM jobs WHERE status IN ('succeeded', 'dead', 'cancelled') AND updated_at < ?",
        (cutoff,),
    ).rowcount
    events = db.execute(
        "DELETE FROM events WHERE status IN ('dispatched', 'partial', 'ignored', 'failed')"
        " AND received_at < ? AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.event_id = events.id)",
        (cutoff,),
    ).rowcount
    db.execute("DELETE FROM function_calls WHERE started_at < ?", (cutoff,))  # and their keys
    return events, jobs


def _add_jobs(db: sqlite3.Connection, jobs: Sequence[NewJob]) -> None:
    db.executemany(
        f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES"  # noqa: S608
        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, NULL, NULL, ?, ?)"
        " ON CONFLICT (idempotency_key) DO NOTHING",
        [new_job_values(job) for job in jobs],
    )


def _commit_dispatches(db: sqlite3.Connection, dispatches: Sequence[Dispatch], now: float) -> None:
    _add_jobs(db, [job for d in dispatches for job in d.jobs])
    db.executemany(
        "UPDATE jobs SET status = 'cancelled', updated_at = ?"
        " WHERE tenant = ? AND schedule_key = ? AND status = 'queued'",
        [(now, tenant, key) for d in dispatches for tenant, key in d.cancels],
    )
    db.executemany(
        "UPDATE events SET status = ?, error = ? WHERE id = ?",
        [(d.status, d.error, d.event_id) for d in dispatches],
    )


def _job_filters(query: JobQuery) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column in ("id", "status", "integration", "tenant", "event_id"):
        value = getattr(query, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    if query.since is not None:
        clauses.append("created_at >= ?")
        args.append(query.since)
    if query.until is not None:
        clauses.append("created_at < ?")
        args.append(query.until)
    return clauses, args


def _replay_matching(db: sqlite3.Connection, where: str, args: list[object]) -> int:
    cursor = db.execute(
        "UPDATE events SET status = 'pending', replays = replays + 1, error = NULL"  # noqa: S608
        f" WHERE id IN (SELECT id FROM events {where} ORDER BY id LIMIT ?)",
        args,
    )
    return cursor.rowcount
