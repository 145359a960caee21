"""`gateway erase --email E --phone P [--tenant T]`: erase what is stored about one person.

Each table either deletes the person's rows or keeps them (for dedup and the audit trail) with
the personal columns replaced (`gateway.store.people` says which and why); the command prints
how many rows of each table changed. Running it again changes nothing, and says so. On SQLite
the file is rewritten and its WAL emptied, so no copy of the erased data is left in its bytes;
that fails (exit 1, the rows erased all the same) when another process keeps the WAL busy.
On PostgreSQL it names the tables to `VACUUM (FULL)`.
`--dry-run` prints what would change. `GET /admin/api/people` shows the same, over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio

from gateway.cli.arguments import DEFAULT_DB, Subparsers, db_default
from gateway.errors import GatewayError
from gateway.store import POSTGRES_SCHEMES, open_store
from gateway.store.people import TABLES, Erased, Person, PersonFound


class NotCompacted(GatewayError):
    """The rows were erased but old copies may remain in the SQLite file's WAL."""


def found_lines(found: PersonFound) -> list[str]:
    by_name = {t.name: t for t in TABLES}
    return [
        f"{name}: {len(rows.keys)} to be {by_name[name].action}"
        f" ({', '.join(rows.references[:5])}{', ...' if len(rows.references) > 5 else ''})"
        for name, rows in found.tables.items()
        if rows.keys
    ]


def erased_lines(erased: Erased) -> list[str]:
    lines = []
    for table in TABLES:
        if table.name in erased.redacted:
            lines.append(f"{table.name}: {erased.redacted[table.name]} redacted")
        if table.name in erased.deleted:
            lines.append(f"{table.name}: {erased.deleted[table.name]} deleted")
    return lines


async def _erase(args: argparse.Namespace) -> int:
    person = Person.of(args.email, args.phone, args.tenant)
    store = open_store(args.db, create=False)
    await store.open()
    try:
        if args.dry_run:
            found = await store.find_person(person)
        else:
            erased = await store.erase_person(person)
    finally:
        await store.close()
    if args.dry_run:
        if not found.total:
            print(f"nothing stored about {person.described()}")
            return 0
        print(f"stored about {person.described()} (nothing changed: --dry-run):")
        for line in found_lines(found):
            print(f"  {line}")
        return 0
    if not erased.total:
        print(f"nothing stored about {person.described()}: nothing changed")
    else:
        print(f"erased {person.described()}:")
        for line in erased_lines(erased):
            print(f"  {line}")
        print(f"{erased.total} row(s) changed")
        if args.db.startswith(POSTGRES_SCHEMES):
            changed = [
                t.name for t in TABLES if t.name in erased.redacted or t.name in erased.deleted
            ]
            print(
                "PostgreSQL keeps the old row versions until VACUUM reclaims them: run"
                f" VACUUM (FULL) {', '.join(changed)}"
            )
    if not erased.compacted:
        raise NotCompacted(
            "the SQLite WAL could not be emptied (another connection was reading): old copies"
            " of the erased rows may remain in the -wal file; run `gateway erase` again, or"
            " stop the server first"
        )
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "erase",
        help="erase what is stored about a person (by email and/or phone)",
        description="Delete or redact a person's events, jobs, messages, opt-outs, function"
        " calls and synced records, found by email (any case) and/or phone number (any"
        " format). Idempotent.",
    )
    p.add_argument("--email", help="the person's email address (matched in any case)")
    p.add_argument(
        "--phone", help="the person's phone number, international (+14155550123, any format)"
    )
    p.add_argument("--tenant", help="only this tenant's data (default: every tenant)")
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    p.add_argument(
        "--db",
        default=db_default(),
        metavar="URL",
        help=f"storage URL (default: $GATEWAY_DATABASE_URL, then {DEFAULT_DB})",
    )
    p.set_defaults(func=lambda args: asyncio.run(_erase(args)))
