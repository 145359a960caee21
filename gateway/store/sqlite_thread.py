"""A thread that owns one sqlite3 connection, the SQLite store's only writer: a whole batch
of writes in one hop, and the writes that queue up meanwhile in one transaction.

Each aiosqlite call is a hop to its thread and back, and a thread waiting for the GIL behind a
busy event loop can wait the interpreter's whole switch interval (5 ms). Four hops per batch
made each group commit cost up to ~20 ms under load. Here a batch is one plain function run on
the writer thread: one hop, whatever the batch holds.

Writes that arrive while one is on the thread (jobs finishing together, messages recorded as
their sends go out, the dispatcher's commit beside the webhooks') are taken together: one hop,
one transaction and one fsync for all of them (`transact`). Each runs in its own savepoint, so
one that fails is rolled back alone and raises to its own caller; every caller is answered
once the shared COMMIT is durable.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")
_Write = tuple[Callable[..., Any], tuple[object, ...]]
_Done = tuple[bool, Any]  # (True, result) or (False, the exception it raised)


class WriterThread:
    def __init__(self, path: str, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._connection: sqlite3.Connection | None = None
        self._queued: list[tuple[_Write, asyncio.Future[Any]]] = []
        self._draining = False
        self._drainer: asyncio.Task[None] | None = None

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

    async def transact(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(connection, *args)` in a transaction on the writer thread, shared with the
        writes queued beside it; returns (or raises) once that transaction is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queued.append(((fn, args), future))
        if not self._draining:
            self._draining = True
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    done = await self.call(_in_one_transaction, [write for write, _ in batch])
                except BaseException as exc:  # BEGIN or COMMIT failed: nothing was written
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), (ok, value) in zip(batch, done, strict=True):
                    if future.done():  # its caller went away: written all the same
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._draining = False

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


def _in_one_transaction(connection: sqlite3.Connection, writes: list[_Write]) -> list[_Done]:
    """Every write inside one BEGIN IMMEDIATE ... COMMIT, each in a savepoint of its own (when
    there are several): a write that raises is undone alone, and the rest commit."""
    if len(writes) == 1:
        fn, args = writes[0]
        try:
            return [(True, in_transaction(connection, fn, *args))]
        except Exception as exc:
            return [(False, exc)]
    done: list[_Done] = []
    connection.execute("BEGIN IMMEDIATE")
    try:
        for fn, args in writes:
            connection.execute("SAVEPOINT one_write")
            try:
                result = fn(connection, *args)
            except Exception as exc:
                connection.execute("ROLLBACK TO one_write")
                done.append((False, exc))
            else:
                done.append((True, result))
            connection.execute("RELEASE one_write")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return done
