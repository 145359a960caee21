"""PostgreSQL: finding a person's rows and erasing them.

The person's `prefilter` (a regular expression PostgreSQL reads, case-insensitive: ``~*``)
selects candidate rows in the database, bodies matched as their escaped text; the exact
pattern (`people.PersonMatcher`) decides in Python, as on SQLite. Erasing locks and re-reads
each row found, in one transaction, and applies `people.planned`. Deleted and updated tuples
stay in the table files until VACUUM reclaims them (and in WAL segments and backups until
those are recycled): see the README's "Data protection".
"""

from __future__ import annotations

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
from gateway.store.postgres_base import PostgresBase
from gateway.store.rows import postgres_mark


def _condition(column: Column, mark: str) -> str:
    text = f"encode({column.name}, 'escape')" if column.binary else column.name
    return f"{text} ~* {mark}"


class PeopleTables(PostgresBase):
    """Finding and erasing a person; mixed into PostgresStore."""

    async def find_person(self, person: Person) -> PersonFound:
        matcher = PersonMatcher(person)
        args = [person.prefilter(), *([person.tenant] if person.tenant else [])]
        tables: dict[str, FoundRows] = {}
        for table in TABLES:
            sql = matching_sql(table, postgres_mark, _condition, person.tenant is not None)
            rows = await self.pool.fetch(sql, *args)
            tables[table.name] = found_rows(table, [tuple(r) for r in rows], matcher)
        return PersonFound(person, tables)

    async def erase_person(self, person: Person) -> Erased:
        found = await self.find_person(person)
        matcher = PersonMatcher(person)
        erased = Erased(person)
        async with self.transaction() as db:
            for table in TABLES:
                deleted = redacted = 0
                for key in found.tables[table.name].keys:
                    row = await db.fetchrow(row_sql(table, postgres_mark, lock=True), *key)
                    change = planned(table, tuple(row), matcher) if row is not None else None
                    if change is None or change == ("update", {}):
                        continue
                    if change[0] == "delete":
                        await db.execute(delete_sql(table, postgres_mark), *key)
                        deleted += 1
                    else:
                        columns = list(change[1])
                        values = [change[1][c] for c in columns]
                        await db.execute(update_sql(table, columns, postgres_mark), *values, *key)
                        redacted += 1
                if deleted:
                    erased.deleted[table.name] = deleted
                if redacted:
                    erased.redacted[table.name] = redacted
        return erased
