"""Operator commands on storage: `gateway jobs` and `gateway replay`.

They work beside a running server: SQLite in WAL mode lets another process write, and the
server's workers pick queued jobs and pending events up on their next pass.
"""

from __future__ import annotations

import argparse
import asyncio

from gateway.cli.arguments import Subparsers, add_config_args, event_query, parse_time, shown_time
from gateway.errors import UsageError
from gateway.store import open_store
from gateway.store.entities import (
    EVENT_STATUSES,
    JOB_STATUSES,
    REPLAY_LIMIT,
    Job,
    JobAttempt,
    JobQuery,
)

REPLAY_FILTERS = ("status", "integration", "tenant", "since", "until")


def job_line(job: Job) -> str:
    error = f"  {job.last_error}" if job.last_error else ""
    return (
        f"{job.id}  {job.status:<9}  {job.integration}/{job.tenant}  {job.flow}/{job.action}"
        f"  attempts={job.attempts}/{job.max_attempts}  run_at={shown_time(job.run_at)}{error}"
    )


def attempt_line(attempt: JobAttempt) -> str:
    """One attempt of a job's history: when, how long, what came of it, and why."""
    took = "" if attempt.duration_ms is None else f"  {attempt.duration_ms:.0f}ms"
    status = "" if attempt.http_status is None else f"  HTTP {attempt.http_status}"
    error = f"  {attempt.error}" if attempt.error else ""
    answer = "  answer: " + attempt.answer.replace("\n", "\\n") if attempt.answer else ""
    return (
        f"  #{attempt.attempt}  {shown_time(attempt.started_at)}  {attempt.outcome:<9}"
        f"{status}{took}{error}{answer}"
    )


async def _jobs(args: argparse.Namespace) -> int:
    if args.action == "show" and not args.job:
        raise UsageError("jobs show needs a JOB id (gateway jobs lists them)")
    store = open_store(args.db, create=False)
    await store.open()
    try:
        query = JobQuery(
            status=args.status,
            integration=args.integration,
            tenant=args.tenant,
            event_id=args.event,
            since=parse_time(args.since),
            until=parse_time(args.until),
            limit=args.limit,
        )
        if args.action == "retry":
            if args.job:
                job = await store.get_job(args.job)
                if job is None:
                    raise UsageError(f"no job {args.job}")
                if job.status != "dead":
                    raise UsageError(f"job {job.id} is {job.status}: only dead jobs are retried")
                query = JobQuery(id=job.id)
            elif not (args.integration or args.since or args.until or args.all_dead):
                raise UsageError(
                    "name a JOB, or filter with --integration/--since/--until, or --all"
                )
            count = await store.retry_jobs(query)
            print(f"queued {count} dead job(s) again")
            return 0
        if args.job:
            job = await store.get_job(args.job)
            if job is None:
                raise UsageError(f"no job {args.job}")
            print(job_line(job))
            print(f"spec: {job.spec}")
            print(f"result: {job.result}")
            history = (await store.job_attempts([job.id])).get(job.id, [])
            print(f"attempt history ({len(history)}, oldest first):")
            for attempt in history:
                print(attempt_line(attempt))
            return 0
        for job in await store.list_jobs(query):
            print(job_line(job))
        return 0
    finally:
        await store.close()


async def _replay(args: argparse.Namespace) -> int:
    filtered = [f"--{name}" for name in REPLAY_FILTERS if getattr(args, name)]
    if args.event_ids and filtered:
        raise UsageError(f"name EVENT_IDs or filter with {filtered[0]}, not both")
    if not args.event_ids and not filtered:
        raise UsageError("name EVENT_IDs, or filter with --status/--integration/--since/...")
    if args.dry_run and not filtered:
        raise UsageError("--dry-run goes with a filter (--status, --integration, --since, ...)")
    query = event_query(args, REPLAY_LIMIT)
    store = open_store(args.db, create=False)
    await store.open()
    try:
        if args.dry_run:
            count = await store.count_events(query)
            capped = f" (one replay takes at most {REPLAY_LIMIT})" if count > REPLAY_LIMIT else ""
            print(f"{count} event(s) match{capped}; nothing changed")
            return 0
        if filtered:
            count = await store.replay_events(query)
            more = "" if count < REPLAY_LIMIT else ": the most one call takes, narrow with --until"
            print(f"queued {count} event(s) for dispatch again{more}")
            return 0
        for event_id in args.event_ids:
            if not await store.replay_event(event_id):
                raise UsageError(f"no event {event_id}")
            print(f"{event_id}: queued for dispatch again")
        return 0
    finally:
        await store.close()


def register(sub: Subparsers) -> None:
    p = sub.add_parser("jobs", help="list, show and retry jobs of the durable queue")
    p.add_argument("action", nargs="?", choices=("list", "show", "retry"), default="list")
    p.add_argument("job", nargs="?", help="a job id (show, retry)")
    p.add_argument("--status", choices=JOB_STATUSES)
    p.add_argument("--integration")
    p.add_argument("--tenant")
    p.add_argument("--event", help="jobs of one event")
    p.add_argument("--since", help="created at or after (ISO 8601)")
    p.add_argument("--until", help="created before (ISO 8601)")
    p.add_argument("--all", dest="all_dead", action="store_true", help="retry: every dead job")
    p.add_argument("--limit", type=int, default=50)
    add_config_args(p)
    p.set_defaults(func=lambda args: asyncio.run(_jobs(args)))

    p = sub.add_parser(
        "replay",
        help="dispatch stored events again, mapped from the current configuration",
        description="Dispatch stored events again: named by id, or every event a filter"
        f" matches (the oldest first, at most {REPLAY_LIMIT} per call).",
    )
    p.add_argument("event_ids", nargs="*", metavar="EVENT_ID")
    p.add_argument("--status", choices=EVENT_STATUSES)
    p.add_argument("--integration")
    p.add_argument("--tenant")
    p.add_argument("--since", help="received at or after (ISO 8601)")
    p.add_argument("--until", help="received before (ISO 8601)")
    p.add_argument(
        "--dry-run", action="store_true", help="print how many events match; change nothing"
    )
    add_config_args(p)
    p.set_defaults(func=lambda args: asyncio.run(_replay(args)))
