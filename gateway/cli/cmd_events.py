"""`gateway events list|show`: the stored events, what became of them, and why.

Like `gateway jobs`, it reads the store beside a running server.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from gateway.cli.arguments import (
    Subparsers,
    add_config_args,
    event_query,
    positive,
    shown_time,
)
from gateway.cli.cmd_operations import job_line
from gateway.errors import UsageError
from gateway.store import open_store
from gateway.store.entities import EVENT_STATUSES, JobQuery, StoredEvent

ERROR_SHOWN = 120  # characters of an event's error in a list line (`show` prints it whole)
JOBS_SHOWN = 100


def event_line(event: StoredEvent) -> str:
    error = event.error or ""
    if len(error) > ERROR_SHOWN:
        error = f"{error[:ERROR_SHOWN]}..."
    return (
        f"{event.id}  {event.status:<10}  {event.integration}/{event.tenant}"
        f"  {event.type or '-'}  received={shown_time(event.received_at)}"
        f"  replays={event.replays}{'  ' + error if error else ''}"
    )


def shown_body(body: bytes) -> str:
    """The body as stored: pretty-printed when it is JSON, as text when it is UTF-8."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(body)} bytes, not UTF-8 text)"
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


async def _events(args: argparse.Namespace) -> int:
    if args.action == "show" and not args.event:
        raise UsageError("events show needs an EVENT_ID")
    if args.action == "list" and args.event:
        raise UsageError(f"events list takes filters, not an id: gateway events show {args.event}")
    query = event_query(args, args.limit)
    store = open_store(args.db, create=False)
    await store.open()
    try:
        if args.action == "list":
            for listed in await store.list_events(query):
                print(event_line(listed))
            return 0
        event = await store.get_event(args.event)
        if event is None:
            raise UsageError(f"no event {args.event}")
        jobs = await store.list_jobs(JobQuery(event_id=event.id, limit=JOBS_SHOWN))
    finally:
        await store.close()
    print(f"event: {event.id}")
    print(f"integration: {event.integration}  tenant: {event.tenant}")
    print(f"type: {event.type or '-'}  provider id: {event.provider_id or '-'}")
    print(f"received: {shown_time(event.received_at)}  replays: {event.replays}")
    print(f"status: {event.status}")
    print(f"error: {event.error or '-'}")
    print("headers:")
    for name, value in sorted(event.headers.items()):
        print(f"  {name}: {value}")
    print("body:")
    print(shown_body(event.body))
    print(f"jobs: {len(jobs) if jobs else 'none'}")
    for job in jobs:
        print(f"  {job_line(job)}")
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("events", help="list and show stored events: status, error, jobs")
    p.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    p.add_argument("event", nargs="?", metavar="EVENT_ID", help="the event to show")
    p.add_argument("--status", choices=EVENT_STATUSES)
    p.add_argument("--integration")
    p.add_argument("--tenant")
    p.add_argument("--since", help="received at or after (ISO 8601)")
    p.add_argument("--until", help="received before (ISO 8601)")
    p.add_argument("--limit", type=positive, default=50, help="at most this many (newest first)")
    add_config_args(p)
    p.set_defaults(func=lambda args: asyncio.run(_events(args)))
