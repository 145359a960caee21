"""The SQLite connections: one writer (a sqlite3 connection on its own thread) and one reader.

Several tasks write (the event writer, the dispatcher, the workers, the syncs, admin actions);
each write is one plain function run on the writer thread inside BEGIN IMMEDIATE ... COMMIT
(`write`), so the one writer thread orders them and no statement ever lands inside another
write's transaction. Reads go through the reader (aiosqlite), which WAL lets run beside the
writer; it is opened `query_only`, so the writer stays the only connection that writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import aiosqlite

from gateway.store.sqlite_thread import WriterThread

T = TypeVar("T")


class SQLiteBase:
    def __init__(self) -> None:
        self._reader: aiosqlite.Connection | None = None
        self._thread: WriterThread | None = None

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return self._reader

    async def write(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(connection, *args)` in one transaction on the writer thread: a whole batch of
        statements in one hop, sharing the transaction with the writes queued beside it (each
        undone alone if it raises). Returns once committed (durably, with synchronous=FULL)."""
        if self._thread is None:
            raise RuntimeError("store is not open")
        return await self._thread.transact(fn, *args)
