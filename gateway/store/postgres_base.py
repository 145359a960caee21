"""One asyncpg pool per store, and the one way to write: `transaction()`.

PostgreSQL serialises what must be serialised itself (row locks, unique indexes), so unlike
SQLite no lock of our own orders the writers: every task takes a connection of the pool, and
several replicas may share the database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg


def affected(status: str) -> int:
    """The row count of a command status: ``UPDATE 3`` -> 3."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresBase:
    def __init__(
        self,
        url: str,
        *,
        server_settings: Mapping[str, str] | None = None,
        min_size: int = 1,
        max_size: int = 10,
    ) -> None:
        self.url = url
        self.server_settings = dict(server_settings or {})
        self.min_size = min_size
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the pool inside BEGIN ... COMMIT (ROLLBACK on error)."""
        async with self.pool.acquire() as db, db.transaction():
            yield db
