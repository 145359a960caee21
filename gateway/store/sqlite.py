"""SQLite storage (the embedded default), in WAL mode.

Every write, the schema's creation and migration included, goes through one sqlite3
connection on its own thread (sqlite_thread.py); reads use a second, read-only connection
(aiosqlite), which WAL lets run beside the writer. `synchronous=FULL` makes each commit survive
power loss; the group-commit writer (writer.py) shares one commit among many concurrent requests.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from gateway.errors import UsageError
from gateway.store.entities import EventQuery, Inserted, NewEvent, SchemaTooNew, StoredEvent
from gateway.store.rows import EVENT_COLUMNS, event_from_row, event_where, sqlite_mark
from gateway.store.sqlite_events import insert_events
from gateway.store.sqlite_functions import FUNCTIONS_SCHEMA, FunctionTables
from gateway.store.sqlite_jobs import JOBS_SCHEMA, JobTables
from gateway.store.sqlite_messages import MESSAGES_SCHEMA, MessageTables
from gateway.store.sqlite_people import MATCHES, PeopleTables, sql_matches
from gateway.store.sqlite_sync import SYNC_SCHEMA, SyncTables
from gateway.store.sqlite_thread import WriterThread

SCHEMA_VERSION = 3
# What a database of an older version needs before _SCHEMA brings it up to date.
_MIGRATIONS = {
    # v2: the pending-events index holds only pending events (as on PostgreSQL): smaller, and
    # cheaper to keep up on every insert and every status change.
    2: "DROP INDEX IF EXISTS events_pending;",
    # v3: jobs keep a history of their attempts (job_attempts, which _SCHEMA creates).
    3: "",
}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    integration TEXT NOT NULL,
    tenant TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    provider_id TEXT,
    type TEXT,
    received_at REAL NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    replays INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    UNIQUE (integration, tenant, dedup_key)
);
CREATE INDEX IF NOT EXISTS events_pending ON events (id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS events_by_filter ON events (integration, tenant, type, id);
CREATE TABLE IF NOT EXISTS credentials (
    tenant TEXT NOT NULL,
    integration TEXT NOT NULL,
    name TEXT NOT NULL,
    token BLOB NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant, integration, name)
);
"""


def sqlite_path(url: str) -> str:
    """``sqlite:///var/gateway.db`` -> ``var/gateway.db``; ``sqlite:////tmp/x`` -> ``/tmp/x``."""
    rest = url.removeprefix("sqlite://")
    path = rest[1:] if rest.startswith("/") else rest
    if path in ("", ":memory:"):
        raise ValueError(f"{url!r} names no file: the gateway's database must be durable")
    return path


def unusable_database(path: str, exc: BaseException) -> UsageError:
    """The one line a database that cannot be opened is reported as, saying why when it can."""
    target = Path(path)
    if target.is_dir():
        reason = "it is a folder"
    elif any(parent.exists() and not parent.is_dir() for parent in target.parents):
        reason = "a part of its path is a file, not a folder"
    elif isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        reason = "the file is not a SQLite database"
    else:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return UsageError(f"cannot open the SQLite database {path}: {reason}")


def _create_schema(db: sqlite3.Connection) -> None:
    """Bring the database up to SCHEMA_VERSION (on the writer thread, as the store opens)."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the database's schema is version {version}, newer than this gateway's"
            f" ({SCHEMA_VERSION}): upgrade the gateway"
        )
    if version != 0:  # 0: a new database, which _SCHEMA makes whole
        for step in range(version + 1, SCHEMA_VERSION + 1):
            db.executescript(_MIGRATIONS[step])
    db.executescript(_SCHEMA + JOBS_SCHEMA + SYNC_SCHEMA + FUNCTIONS_SCHEMA + MESSAGES_SCHEMA)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _nothing(_connection: sqlite3.Connection) -> None:
    return None


class SQLiteStore(JobTables, SyncTables, FunctionTables, MessageTables, PeopleTables):
    def __init__(self, url: str, *, synchronous: str = "FULL") -> None:
        super().__init__()
        self.path = sqlite_path(url)
        self.synchronous = synchronous

    def coordination(self) -> None:
        """One process owns an SQLite file: nothing to agree on with other replicas."""
        return None

    async def open(self) -> None:
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unusable_database(self.path, exc) from exc
        try:
            self._thread = WriterThread(self.path, self.synchronous)
            await self._thread.open()
            await self._thread.call(_create_schema)
            self._reader = await aiosqlite.connect(self.path, isolation_level=None)
            await self._reader.execute("PRAGMA busy_timeout=5000")
            await self._reader.execute("PRAGMA query_only=ON")
            await self._reader.create_function(MATCHES, 2, sql_matches, deterministic=True)
        except (OSError, sqlite3.Error) as exc:
            await self.close()  # the connections' threads would keep the process alive
            raise unusable_database(self.path, exc) from exc
        except BaseException:
            await self.close()
            raise

    async def check_writable(self) -> None:
        """Take the write lock and let it go (BEGIN IMMEDIATE ... COMMIT, writing nothing):
        raises when the database cannot be written."""
        await self.write(_nothing)

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._thread is not None:  # last: the writer checkpoints the WAL as it closes
            await self._thread.close()
            self._thread = None

    # ---- events -------------------------------------------------------------------------

    async def insert_events(self, events: Sequence[NewEvent]) -> list[Inserted]:
        return await self.write(insert_events, events)

    async def list_events(self, query: EventQuery) -> list[StoredEvent]:
        where, args = event_where(query, sqlite_mark)
        rows = await self.reader.execute_fetchall(
            f"SELECT {EVENT_COLUMNS} FROM events {where} ORDER BY id DESC LIMIT ?",  # noqa: S608
            [*args, query.limit],
        )
        return [event_from_row(r) for r in rows]

    async def get_event(self, event_id: str) -> StoredEvent | None:
        rows = await self.reader.execute_fetchall(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE id = ?",  # noqa: S608
            [event_id],
        )
        return event_from_row(next(iter(rows))) if rows else None

    async def pending_events(self, limit: int) -> list[StoredEvent]:
        rows = await self.reader.execute_fetchall(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE status = 'pending'"  # noqa: S608
            " ORDER BY id LIMIT ?",
            [limit],
        )
        return [event_from_row(r) for r in rows]

    async def count_events(self, query: EventQuery | None = None) -> int:
        where, args = event_where(query, sqlite_mark) if query is not None else ("", [])
        rows = await self.reader.execute_fetchall(
            f"SELECT count(*) FROM events {where}",  # noqa: S608
            args,
        )
        return int(next(iter(rows))[0])

    # ---- credentials ----------------------------------------------------------------------

    async def set_credential(self, tenant: str, integration: str, name: str, token: bytes) -> None:
        await self.write(_set_credential, (tenant, integration, name, token, time.time()))

    async def delete_credential(self, tenant: str, integration: str, name: str) -> bool:
        return await self.write(_delete_credential, (tenant, integration, name))

    async def list_credentials(
        self, tenant: str | None = None
    ) -> list[tuple[str, str, str, float]]:
        where, args = ("WHERE tenant = ?", [tenant]) if tenant else ("", [])
        rows = await self.reader.execute_fetchall(
            f"SELECT tenant, integration, name, updated_at FROM credentials {where}"  # noqa: S608
            " ORDER BY tenant, integration, name",
            args,
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def credential_tokens(self, tenant: str) -> list[tuple[str, str, bytes]]:
        rows = await self.reader.execute_fetchall(
            "SELECT integration, name, token FROM credentials WHERE tenant = ?", [tenant]
        )
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    async def replace_credential_tokens(self, rows: Sequence[tuple[str, str, str, bytes]]) -> None:
        values = [(token, tenant, integration, name) for tenant, integration, name, token in rows]
        await self.write(_replace_credential_tokens, values)

    async def all_credential_tokens(self) -> list[tuple[str, str, str, bytes]]:
        rows = await self.reader.execute_fetchall(
            "SELECT tenant, integration, name, token FROM credentials"
        )
        return [(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    async def tenants_with_credentials(self) -> set[str]:
        rows = await self.reader.execute_fetchall("SELECT DISTINCT tenant FROM credentials")
        return {r[0] for r in rows}


def _set_credential(db: sqlite3.Connection, row: tuple[str, str, str, bytes, float]) -> None:
    db.execute(
        "INSERT INTO credentials (tenant, integration, name, token, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, integration, name)"
        " DO UPDATE SET token = excluded.token, updated_at = excluded.updated_at",
        row,
    )


def _delete_credential(db: sqlite3.Connection, key: tuple[str, str, str]) -> bool:
    cursor = db.execute(
        "DELETE FROM credentials WHERE tenant = ? AND integration = ? AND name = ?", key
    )
    return cursor.rowcount > 0


def _replace_credential_tokens(
    db: sqlite3.Connection, values: Sequence[tuple[bytes, str, str, str]]
) -> None:
    db.executemany(
        "UPDATE credentials SET token = ? WHERE tenant = ? AND integration = ? AND name = ?",
        values,
    )
