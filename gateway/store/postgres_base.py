"""One asyncpg pool per store, and the one way to write: `transaction()`.

PostgreSQL serialises what must be serialised itself (row locks, unique indexes), so unlike
SQLite no lock of our own orders the writers: every task takes a connection of the pool, and
several replicas may share the database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.errors import UsageError

if TYPE_CHECKING:
    import asyncpg


POOL_PARAMS = ("pool_min", "pool_max")


def pool_sizes(url: str, min_size: int, max_size: int) -> tuple[str, tuple[int, int]]:
    """The URL without ``pool_min``/``pool_max`` (the connection pool's bounds, which the
    driver would take for session settings), and those bounds (defaults: the arguments)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    sizes = {"pool_min": min_size, "pool_max": max_size}
    for name, value in query:
        if name in POOL_PARAMS:
            if not (value.isascii() and value.isdigit() and 0 < int(value) <= 1000):
                raise UsageError(f"{name}={value!r} in the database URL: expected 1 to 1000")
            sizes[name] = int(value)
    if sizes["pool_min"] > sizes["pool_max"]:
        raise UsageError(
            f"pool_min={sizes['pool_min']} is above pool_max={sizes['pool_max']} in the"
            " database URL"
        )
    rest = urlencode([(n, v) for n, v in query if n not in POOL_PARAMS])
    return urlunsplit(parts._replace(query=rest)), (sizes["pool_min"], sizes["pool_max"])


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
        self.url, sizes = pool_sizes(url, min_size, max_size)
        self.min_size, self.max_size = sizes
        self.server_settings = dict(server_settings or {})
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
