"""The two SQLite connections and the one way to write: `transaction()`.

Several tasks write (the event writer, the dispatcher, the workers, admin actions), but a
connection holds one transaction at a time; an asyncio lock makes every write wait its turn,
so no statement ever lands inside another task's transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import aiosqlite

from gateway.store.sqlite_thread import WriterThread, in_transaction

T = TypeVar("T")


class SQLiteBase:
    def __init__(self) -> None:
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._thread: WriterThread | None = None
        self._write_lock = asyncio.Lock()

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return self._reader

    async def write(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(connection, *args)` in one transaction on the writer thread: a batch of
        statements in one hop (the hot paths use this; `transaction` suits the rest)."""
        if self._thread is None:
            raise RuntimeError("store is not open")
        async with self._write_lock:
            return await self._thread.call(in_transaction, fn, *args)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer connection inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""
        async with self._write_lock:
            db = self.writer
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")
