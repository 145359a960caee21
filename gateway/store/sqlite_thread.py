"""A thread that owns one sqlite3 connection, the SQLite store's only writer: a whole batch
of writes in one hop.

Each aiosqlite call is a hop to its thread and back, and a thread waiting for the GIL behind a
busy event loop can wait the interpreter's whole switch interval (5 ms). Four hops per batch
made each group commit cost up to ~20 ms under load. Here a batch is one plain function run on
the writer thread: one hop, whatever the batch holds.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

T = TypeVar("T")


class WriterThread:
    def __init__(self, path: str, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        connection.execute("PRAGMA busy_timeout=5000")
        self._connection = connection

    def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._connection is None:
            raise RuntimeError("writer thread is not open")
        return fn(self._connection, *args)

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._connect)

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(connection, *args)` on the writer thread (the only thread using the connection)."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, partial(self._run, fn, *args)
        )

    async def close(self) -> None:
        if self._connection is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._connection.close)
            self._connection = None
        self._pool.shutdown(wait=True)


def in_transaction(connection: sqlite3.Connection, fn: Callable[..., T], *args: object) -> T:
    """Run `fn(connection, *args)` inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = fn(connection, *args)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result
