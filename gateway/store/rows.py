"""Rows as both backends read and write them: column lists and row <-> dataclass mapping."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from gateway.store.entities import (
    ATTEMPT_TEXT_LIMIT,
    BODY_CONTAINS,
    REPLAY_LIMIT,
    Backlog,
    EventQuery,
    FunctionCall,
    FunctionCallQuery,
    Job,
    JobAttempt,
    JobOutcome,
    JobQuery,
    NewJob,
    StoredEvent,
)
from gateway.store.sync_model import SyncCounts, SyncKey, SyncRun

EVENT_COLUMNS = (
    "id, integration, tenant, provider_id, type, received_at, status, headers, body, replays, error"
)
JOB_COLUMNS = (
    "id, idempotency_key, event_id, flow, action, kind, integration, tenant, schedule_key, spec,"
    " context, status, attempts, max_attempts, run_at, last_error, result, created_at, updated_at"
)
# A job's history: its attempts, oldest first (`seq` orders them; attempt numbers restart
# when a dead job is retried).
ATTEMPT_COLUMNS = "job_id, attempt, started_at, duration_ms, outcome, http_status, error, answer"
# A job whose worker died during its last allowed attempt is dead, not run once more.
LOST_JOBS = (
    "UPDATE jobs SET status = 'dead', locked_until = NULL, updated_at = ?,"
    " last_error = 'its worker stopped during the last allowed attempt'"
    " WHERE status = 'running' AND locked_until < ? AND attempts >= max_attempts"
)


_BACKLOG = (
    "SELECT (SELECT count(*) FROM events WHERE status = 'pending'),"
    " (SELECT received_at FROM events WHERE status = 'pending' ORDER BY id LIMIT 1),"
    " (SELECT count(*) FROM jobs WHERE status = 'queued' AND run_at <= :now),"
    " (SELECT min(run_at) FROM jobs WHERE status = 'queued' AND run_at <= :now),"
    " (SELECT count(*) FROM jobs WHERE status = 'running' AND locked_until < :now),"
    " (SELECT min(run_at) FROM jobs WHERE status = 'running' AND locked_until < :now)"
)


def backlog_query(now: str) -> str:
    """Pending events and due jobs with the oldest of each, `now` the placeholder of the
    time; each part reads one index (events_pending, jobs_due): no table scan."""
    return _BACKLOG.replace(":now", now)


def backlog_from_row(row: Sequence[Any]) -> Backlog:
    """The row of `backlog_query`: due jobs are the queued ones and those of a dead worker."""
    events, oldest_event, queued, oldest_queued, lapsed, oldest_lapsed = row
    oldest_job = min((t for t in (oldest_queued, oldest_lapsed) if t is not None), default=None)
    return Backlog(
        int(events),
        float(oldest_event) if oldest_event is not None else None,
        int(queued) + int(lapsed),
        float(oldest_job) if oldest_job is not None else None,
    )


RUN_COLUMNS = (  # "full" is quoted: a reserved word in PostgreSQL
    "id, integration, tenant, sync, started, finished, fetched, created, updated, unchanged,"
    ' deleted, conflicts, pages, status, error, "full", resumed'
)

Mark = Callable[[int], str]  # the placeholder of the n-th argument (from 1)


def sqlite_mark(_n: int) -> str:
    return "?"


def postgres_mark(n: int) -> str:
    return f"${n}"


def event_where(query: EventQuery, mark: Mark) -> tuple[str, list[Any]]:
    """The WHERE clause (or "") of an event query and its arguments. A body search is a LIKE
    over the body as text in SQLite (whose LIKE has no escape character unless told) and
    over its bytes in PostgreSQL (whose escape character is the backslash already)."""
    filters = query.filters()
    sqlite = mark is sqlite_mark
    clauses: list[str] = []
    args: list[Any] = []
    for n, (condition, value) in enumerate(filters, 1):
        if condition == BODY_CONTAINS:
            if sqlite:
                clauses.append(f"CAST(body AS TEXT) LIKE {mark(n)} ESCAPE '\\'")
                args.append(value)
            else:
                clauses.append(f"body LIKE {mark(n)}")
                args.append(str(value).encode())
        else:
            clauses.append(f"{condition}{mark(n)}")
            args.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return where, args


def replay_limit(query: EventQuery) -> int:
    """How many events one bulk replay may take: the query's limit, at most REPLAY_LIMIT."""
    return max(0, min(query.limit, REPLAY_LIMIT))


def event_from_row(row: Sequence[Any]) -> StoredEvent:
    return StoredEvent(
        id=row[0],
        integration=row[1],
        tenant=row[2],
        provider_id=row[3],
        type=row[4],
        received_at=row[5],
        status=row[6],
        headers=json.loads(row[7]),
        body=bytes(row[8]),
        replays=row[9],
        error=row[10],
    )


def job_from_row(row: Sequence[Any]) -> Job:
    return Job(*row)


def attempts_by_job(rows: Sequence[Sequence[Any]]) -> dict[str, list[JobAttempt]]:
    """Rows in ATTEMPT_COLUMNS order, oldest first, grouped by job."""
    found: dict[str, list[JobAttempt]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(JobAttempt(*row))
    return found


def attempt_texts(outcome: JobOutcome) -> tuple[str | None, str | None]:
    """An outcome's error and answer as an attempt keeps them: at most ATTEMPT_TEXT_LIMIT."""
    error, answer = outcome.error, outcome.answer
    return (
        None if error is None else error[:ATTEMPT_TEXT_LIMIT],
        None if answer is None else answer[:ATTEMPT_TEXT_LIMIT],
    )


def new_job_values(job: NewJob) -> tuple[Any, ...]:
    """The values a new job's INSERT takes (see the backends' statements)."""
    return (
        job.id, job.idempotency_key, job.event_id, job.flow, job.action, job.kind,
        job.integration, job.tenant, job.schedule_key, job.spec, job.context,
        job.max_attempts, job.run_at, job.created_at, job.created_at,
    )  # fmt: skip


def job_query_fields(query: JobQuery) -> dict[str, Any]:
    return {name: getattr(query, name) for name in JobQuery.__dataclass_fields__}


def sync_key_values(key: SyncKey) -> tuple[str, str, str]:
    return (key.integration, key.tenant, key.sync)


def run_from_row(row: Sequence[Any]) -> SyncRun:
    return SyncRun(
        id=row[0],
        integration=row[1],
        tenant=row[2],
        sync=row[3],
        started=row[4],
        finished=row[5],
        counts=SyncCounts(*row[6:13]),
        status=row[13],
        error=row[14],
        full=bool(row[15]),
        resumed=bool(row[16]),
    )


FUNCTION_CALL_COLUMNS = (
    "id, integration, function, tenant, idempotency_key, outcome, status, content_type,"
    " answer, request, steps, started_at, duration_ms"
)


def function_call_values(call: FunctionCall) -> tuple[Any, ...]:
    """A call's values in FUNCTION_CALL_COLUMNS order."""
    return (
        call.id,
        call.integration,
        call.function,
        call.tenant,
        call.idempotency_key,
        call.outcome,
        call.status,
        call.content_type,
        call.answer,
        call.request,
        call.steps,
        call.started_at,
        call.duration_ms,
    )


def function_call_from_row(row: Sequence[Any]) -> FunctionCall:
    return FunctionCall(*row)


def function_call_where(query: FunctionCallQuery, mark: Mark) -> tuple[str, list[Any]]:
    filters = query.filters()
    clauses = [f"{condition}{mark(n)}" for n, (condition, _) in enumerate(filters, 1)]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return where, [value for _, value in filters]
