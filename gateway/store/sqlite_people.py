"""SQLite: finding a person's rows and erasing them, down to the file's bytes.

Finding scans the tables of `people.TABLES` on the reader, the person's pattern applied by a
Python function registered on the connection (`gateway_matches`). Erasing re-reads each row
found inside one write transaction (it may have changed since), applies `people.planned` with
``secure_delete`` on (freed space is zeroed), then VACUUMs (the file is rewritten: no stale copy
of an earlier version of a row survives in free space or free pages) and checkpoints the WAL
with TRUNCATE (the WAL, which held every page as written, is emptied; the -shm file only ever
holds the WAL's index, never row data).
"""

from __future__ import annotations

import functools
import re
import sqlite3

from gateway.store.people import (
    TABLES,
    Column,
    Erased,
    FoundRows,
    Person,
    PersonFound,
    PersonMatcher,
    delete_sql,
    found_rows,
    matching_sql,
    planned,
    row_sql,
    update_sql,
)
from gateway.store.sqlite_base import SQLiteBase
from gateway.store.sqlite_thread import in_transaction

MATCHES = "gateway_matches"


def _mark(n: int) -> str:
    return f"?{n}"


@functools.lru_cache(maxsize=16)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def sql_matches(pattern: str, value: object) -> int:
    """gateway_matches(pattern, value): 1 when the text (or UTF-8 bytes) holds the pattern."""
    if value is None:
        return 0
    text = bytes(value).decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return 1 if _compiled(pattern).search(text) else 0


def _condition(column: Column, mark: str) -> str:
    return f"{MATCHES}({mark}, {column.name})"


class PeopleTables(SQLiteBase):
    """Finding and erasing a person; mixed into SQLiteStore."""

    async def find_person(self, person: Person) -> PersonFound:
        matcher = PersonMatcher(person)
        args = [person.pattern(), *([person.tenant] if person.tenant else [])]
        tables: dict[str, FoundRows] = {}
        for table in TABLES:
            sql = matching_sql(table, _mark, _condition, person.tenant is not None)
            rows = await self.reader.execute_fetchall(sql, args)
            tables[table.name] = found_rows(table, list(rows), matcher)
        return PersonFound(person, tables)

    async def erase_person(self, person: Person) -> Erased:
        found = await self.find_person(person)
        if self._thread is None:
            raise RuntimeError("store is not open")
        return await self._thread.call(_erase_securely, found)


def _erase_securely(db: sqlite3.Connection, found: PersonFound) -> Erased:
    before = int(db.execute("PRAGMA secure_delete").fetchone()[0])
    db.execute("PRAGMA secure_delete=ON")
    try:
        erased = in_transaction(db, _erase, found)
        try:
            db.execute("VACUUM")
            busy = int(db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
        except sqlite3.OperationalError:  # another process held the lock past busy_timeout
            busy = 1
    finally:
        db.execute(f"PRAGMA secure_delete={before}")
    erased.compacted = busy == 0
    return erased


def _erase(db: sqlite3.Connection, found: PersonFound) -> Erased:
    matcher = PersonMatcher(found.person)
    erased = Erased(found.person)
    for table in TABLES:
        deleted = redacted = 0
        for key in found.tables[table.name].keys:
            row = db.execute(row_sql(table, _mark), key).fetchone()
            change = planned(table, row, matcher) if row is not None else None
            if change is None or change == ("update", {}):
                continue
            if change[0] == "delete":
                db.execute(delete_sql(table, _mark), key)
                deleted += 1
            else:
                columns = list(change[1])
                values = [change[1][c] for c in columns]
                db.execute(update_sql(table, columns, _mark), (*values, *key))
                redacted += 1
        if deleted:
            erased.deleted[table.name] = deleted
        if redacted:
            erased.redacted[table.name] = redacted
    return erased
