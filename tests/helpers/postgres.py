"""A PostgreSQL for tests: GATEWAY_TEST_POSTGRES_URL (a local server by default), and a fresh
schema per test, named in the URL (``?search_path=...``) and dropped afterwards.

With no server reachable (or no asyncpg installed) the PostgreSQL tests are skipped, saying why.
"""

from __future__ import annotations

import asyncio
import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

POSTGRES_URL = os.environ.get(
    "GATEWAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@functools.cache
def unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        import asyncpg
    except ModuleNotFoundError:
        return "asyncpg is not installed (pip install -e '.[test]')"

    async def probe() -> None:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"no PostgreSQL reachable at GATEWAY_TEST_POSTGRES_URL={POSTGRES_URL}: {exc}"
    return None


def _admin(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run())


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A database URL whose tables live in a new, empty schema (dropped at the end); skips the
    test when no PostgreSQL is reachable."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    schema = f"gw_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE SCHEMA "{schema}"')
    joiner = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{joiner}search_path={schema}"
    finally:
        _admin(f'DROP SCHEMA "{schema}" CASCADE')
