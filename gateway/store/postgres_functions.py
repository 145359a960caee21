"""PostgreSQL table of in-call functions: every invocation with its answer (function_calls)."""

from __future__ import annotations

from gateway.store.entities import FunctionCall, FunctionCallQuery
from gateway.store.postgres_base import PostgresBase, affected
from gateway.store.rows import (
    FUNCTION_CALL_COLUMNS,
    function_call_from_row,
    function_call_values,
    function_call_where,
    postgres_mark,
)

# As on SQLite (sqlite_functions.py): one `ok` answer per idempotency key.
FUNCTIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS function_calls (
    id TEXT COLLATE "C" PRIMARY KEY,
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
    started_at DOUBLE PRECISION NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS function_calls_answered
    ON function_calls (integration, function, tenant, idempotency_key)
    WHERE outcome = 'ok' AND idempotency_key IS NOT NULL;
"""

_PLACEHOLDERS = ", ".join(f"${n}" for n in range(1, len(FUNCTION_CALL_COLUMNS.split(",")) + 1))


class FunctionTables(PostgresBase):
    async def record_function_call(self, call: FunctionCall) -> bool:
        status = await self.pool.execute(
            f"INSERT INTO function_calls ({FUNCTION_CALL_COLUMNS})"  # noqa: S608
            f" VALUES ({_PLACEHOLDERS}) ON CONFLICT DO NOTHING",
            *function_call_values(call),
        )
        return affected(status) > 0

    async def function_answer(
        self, integration: str, function: str, tenant: str, key: str
    ) -> FunctionCall | None:
        row = await self.pool.fetchrow(
            f"SELECT {FUNCTION_CALL_COLUMNS} FROM function_calls"  # noqa: S608
            " WHERE integration = $1 AND function = $2 AND tenant = $3"
            " AND idempotency_key = $4 AND outcome = 'ok'",
            integration,
            function,
            tenant,
            key,
        )
        return function_call_from_row(row) if row is not None else None

    async def list_function_calls(self, query: FunctionCallQuery) -> list[FunctionCall]:
        where, args = function_call_where(query, postgres_mark)
        rows = await self.pool.fetch(
            f"SELECT {FUNCTION_CALL_COLUMNS} FROM function_calls {where}"  # noqa: S608
            f" ORDER BY id DESC LIMIT ${len(args) + 1}",
            *args,
            query.limit,
        )
        return [function_call_from_row(r) for r in rows]
