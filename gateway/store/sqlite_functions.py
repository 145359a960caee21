"""SQLite table of in-call functions: every invocation with its answer (function_calls)."""

from __future__ import annotations

import sqlite3

from gateway.store.entities import FunctionCall, FunctionCallQuery
from gateway.store.rows import (
    FUNCTION_CALL_COLUMNS,
    function_call_from_row,
    function_call_values,
    function_call_where,
    sqlite_mark,
)
from gateway.store.sqlite_base import SQLiteBase

# One answered call per idempotency key: the unique index holds only the `ok` ones, so a
# fallback leaves the key free for the retry, and a repeat is stored beside the first.
FUNCTIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS function_calls (
    id TEXT PRIMARY KEY,
    integration TEXT NOT NULL,
    function TEXT NOT NULL,
    tenant TEXT NOT NULL,
    idempotency_key TEXT,
    outcome TEXT NOT NULL,
    status INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    answer TEXT NOT NULL,
    request TEXT NOT NULL,
    steps TEXT NOT NULL,
    started_at REAL NOT NULL,
    duration_ms REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS function_calls_answered
    ON function_calls (integration, function, tenant, idempotency_key)
    WHERE outcome = 'ok' AND idempotency_key IS NOT NULL;
"""

_PLACEHOLDERS = ", ".join("?" for _ in FUNCTION_CALL_COLUMNS.split(","))


class FunctionTables(SQLiteBase):
    async def record_function_call(self, call: FunctionCall) -> bool:
        return await self.write(_insert, call)

    async def function_answer(
        self, integration: str, function: str, tenant: str, key: str
    ) -> FunctionCall | None:
        rows = await self.reader.execute_fetchall(
            f"SELECT {FUNCTION_CALL_COLUMNS} FROM function_calls"  # noqa: S608
            " WHERE integration = ? AND function = ? AND tenant = ? AND idempotency_key = ?"
            " AND outcome = 'ok'",
            [integration, function, tenant, key],
        )
        return function_call_from_row(next(iter(rows))) if rows else None

    async def list_function_calls(self, query: FunctionCallQuery) -> list[FunctionCall]:
        where, args = function_call_where(query, sqlite_mark)
        rows = await self.reader.execute_fetchall(
            f"SELECT {FUNCTION_CALL_COLUMNS} FROM function_calls {where}"  # noqa: S608
            " ORDER BY id DESC LIMIT ?",
            [*args, query.limit],
        )
        return [function_call_from_row(r) for r in rows]


def _insert(db: sqlite3.Connection, call: FunctionCall) -> bool:
    cursor = db.execute(
        f"INSERT INTO function_calls ({FUNCTION_CALL_COLUMNS})"  # noqa: S608
        f" VALUES ({_PLACEHOLDERS}) ON CONFLICT DO NOTHING",
        function_call_values(call),
    )
    return cursor.rowcount > 0
