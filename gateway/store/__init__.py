"""Storage: pick the implementation a database URL names."""

from __future__ import annotations

from pathlib import Path

from gateway.errors import UsageError
from gateway.store.entities import EventQuery, Inserted, NewEvent, StoredEvent
from gateway.store.interfaces import Store
from gateway.store.sqlite import SQLiteStore

__all__ = [
    "EventQuery",
    "Inserted",
    "NewEvent",
    "SQLiteStore",
    "Store",
    "StoredEvent",
    "open_store",
]
POSTGRES_SCHEMES = ("postgresql:", "postgres:")


def open_store(url: str, *, create: bool = True) -> Store:
    """The store for `url` (not yet opened). SQLite is the embedded default; a postgresql://
    URL selects PostgreSQL, which needs the optional asyncpg.

    `create=False` is for commands that only look (or change what is there): a SQLite file
    that does not exist is then a usage error, and neither it nor its folders are created.
    """
    if url.startswith("sqlite:"):
        try:
            store = SQLiteStore(url)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        if not create and not Path(store.path).exists():
            raise UsageError(
                f"no database at {store.path}: check --db or GATEWAY_DATABASE_URL"
                " (nothing was created)"
            )
        return store
    if url.startswith(POSTGRES_SCHEMES):
        try:
            from gateway.store.postgres import PostgresStore
        except ModuleNotFoundError as exc:
            if exc.name != "asyncpg":
                raise
            raise UsageError(
                "PostgreSQL storage needs the asyncpg driver: pip install 'yaml-gateway[postgres]'"
            ) from exc
        return PostgresStore(url)
    raise UsageError(
        f"unsupported database URL {url!r}: expected sqlite:///PATH or postgresql://..."
    )
