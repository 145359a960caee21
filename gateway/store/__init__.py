"""Storage: pick the implementation a database URL names."""

from __future__ import annotations

from gateway.lint import UsageError
from gateway.store.base import EventQuery, Inserted, NewEvent, Store, StoredEvent
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


def open_store(url: str) -> SQLiteStore:
    """The store for `url` (not yet opened). SQLite is the embedded default."""
    if url.startswith("sqlite:"):
        try:
            return SQLiteStore(url)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    if url.startswith(("postgresql:", "postgres:")):
        raise UsageError(
            "PostgreSQL storage is not available in this version yet; use a sqlite:/// URL"
        )
    raise UsageError(f"unsupported database URL {url!r}: expected sqlite:///PATH")
