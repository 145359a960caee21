"""Storage: pick the implementation a database URL names."""

from __future__ import annotations

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


def open_store(url: str) -> Store:
    """The store for `url` (not yet opened). SQLite is the embedded default; a postgresql://
    URL selects PostgreSQL, which needs the optional asyncpg."""
    if url.startswith("sqlite:"):
        try:
            return SQLiteStore(url)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
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
