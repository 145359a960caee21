"""SQLite tables of the sync engine: sync_state (cursor, resume point, lease), sync_runs (the
sync log) and records (what the syncs pulled, one row per record)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.store.rows import RUN_COLUMNS, run_from_row, sync_key_values
from gateway.store.sqlite_base import SQLiteBase
from gateway.store.sqlite_events import insert_event_rows
from gateway.store.sync_model import (
    LeaseLost,
    PageCommit,
    PagePlan,
    StoredRecord,
    SyncKey,
    SyncRun,
    SyncRunQuery,
    SyncState,
)

SYNC_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_state (
    integration TEXT NOT NULL,
    tenant TEXT NOT NULL,
    sync TEXT NOT NULL,
    cursor TEXT,
    resume TEXT,
    run_id TEXT,
    lease_until REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (integration, tenant, sync)
);
CREATE TABLE IF NOT EXISTS sync_runs (
    id TEXT PRIMARY KEY,
    integration TEXT NOT NULL,
    tenant TEXT NOT NULL,
    sync TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    fetched INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    conflicts INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    error TEXT,
    full INTEGER NOT NULL DEFAULT 0,
    resumed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sync_runs_by_key ON sync_runs (integration, tenant, sync, started);
CREATE TABLE IF NOT EXISTS records (
    integration TEXT NOT NULL,
    tenant TEXT NOT NULL,
    sync TEXT NOT NULL,
    record_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    updated_at TEXT,
    updated_ts REAL,
    deleted INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    synced_at REAL NOT NULL,
    PRIMARY KEY (integration, tenant, sync, record_id)
);
"""
_KEY = "integration = ? AND tenant = ? AND sync = ?"
_CHUNK = 500  # record ids per SELECT (well under SQLite's limit of bound parameters)


class SyncTables(SQLiteBase):
    """The sync tables; mixed into SQLiteStore."""

    async def acquire_sync(
        self, key: SyncKey, run_id: str, *, now: float, lease_until: float
    ) -> SyncState | None:
        """Take the sync's lease for a new run and log the run as running, atomically; None
        when another run holds an unexpired lease. A run whose lease expired (its process
        died) is logged as failed."""
        return await self.write(_acquire, key, run_id, now, lease_until)

    async def commit_sync_page(self, commit: PageCommit) -> PagePlan:
        """Apply one page: the records and events its plan decides, the run's counters, the
        resume point (and when final: the cursor, success, the lease given up)."""
        return await self.write(_commit_page, commit)

    async def finish_sync_run(
        self,
        key: SyncKey,
        run_id: str,
        *,
        status: str,
        error: str | None,
        now: float,
        full: bool,
        resumed: bool,
    ) -> None:
        """End a run that did not finish through its final page (failed), giving the lease up
        if it still holds it. The resume point stays where the last page left it."""
        await self.write(_finish_run, key, run_id, (status, error, now, int(full), int(resumed)))

    async def get_sync_state(self, key: SyncKey) -> SyncState | None:
        rows = await self.reader.execute_fetchall(
            f"SELECT cursor, resume, run_id, lease_until FROM sync_state WHERE {_KEY}",  # noqa: S608
            sync_key_values(key),
        )
        row = next(iter(rows), None)
        return SyncState(*row) if row is not None else None

    async def list_sync_runs(self, query: SyncRunQuery) -> list[SyncRun]:
        clauses, args = [], []
        for column in ("integration", "tenant", "sync"):
            value = getattr(query, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.reader.execute_fetchall(
            f"SELECT {RUN_COLUMNS} FROM sync_runs {where}"  # noqa: S608
            " ORDER BY started DESC, id DESC LIMIT ?",
            [*args, query.limit],
        )
        return [run_from_row(r) for r in rows]

    async def get_sync_run(self, run_id: str) -> SyncRun | None:
        rows = await self.reader.execute_fetchall(
            f"SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = ?",  # noqa: S608
            [run_id],
        )
        row = next(iter(rows), None)
        return run_from_row(row) if row is not None else None

    async def last_sync_starts(self) -> dict[SyncKey, float]:
        """When each sync (per tenant) last started a run."""
        rows = await self.reader.execute_fetchall(
            "SELECT integration, tenant, sync, max(started) FROM sync_runs"
            " GROUP BY integration, tenant, sync"
        )
        return {SyncKey(r[0], r[1], r[2]): r[3] for r in rows}

    async def get_sync_record(self, key: SyncKey, record_id: str) -> StoredRecord | None:
        rows = await self.reader.execute_fetchall(
            "SELECT record_id, content_hash, updated_ts, deleted, updated_at, data"  # noqa: S608
            f" FROM records WHERE {_KEY} AND record_id = ?",
            [*sync_key_values(key), record_id],
        )
        row = next(iter(rows), None)
        if row is None:
            return None
        return StoredRecord(row[0], row[1], row[2], bool(row[3]), row[4], row[5])

    async def count_sync_records(self, key: SyncKey) -> tuple[int, int]:
        """(live, deleted) records of one sync."""
        rows = await self.reader.execute_fetchall(
            "SELECT coalesce(sum(deleted = 0), 0), coalesce(sum(deleted), 0)"  # noqa: S608
            f" FROM records WHERE {_KEY}",
            sync_key_values(key),
        )
        live, deleted = next(iter(rows))
        return int(live), int(deleted)


# ---- on the writer thread, inside the write's transaction ------------------------------------


def _stored(db: sqlite3.Connection, key: SyncKey, ids: Sequence[str]) -> dict[str, StoredRecord]:
    found: dict[str, StoredRecord] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        rows = db.execute(
            "SELECT record_id, content_hash, updated_ts, deleted FROM records"  # noqa: S608
            f" WHERE {_KEY} AND record_id IN ({','.join('?' * len(chunk))})",
            [*sync_key_values(key), *chunk],
        )
        for r in rows:
            found[r[0]] = StoredRecord(r[0], r[1], r[2], bool(r[3]))
    return found


def _acquire(
    db: sqlite3.Connection, key: SyncKey, run_id: str, now: float, lease_until: float
) -> SyncState | None:
    db.execute(
        "INSERT INTO sync_state (integration, tenant, sync, updated_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (*sync_key_values(key), now),
    )
    cursor, resume, holder, until = db.execute(
        f"SELECT cursor, resume, run_id, lease_until FROM sync_state WHERE {_KEY}",  # noqa: S608
        sync_key_values(key),
    ).fetchone()
    if holder is not None and until is not None and until > now:
        return None
    if holder is not None:
        db.execute(
            "UPDATE sync_runs SET status = 'failed', finished = ?,"
            " error = 'interrupted: the run stopped without finishing (lease expired)'"
            " WHERE id = ? AND status = 'running'",
            (now, holder),
        )
    db.execute(
        f"UPDATE sync_state SET run_id = ?, lease_until = ?, updated_at = ? WHERE {_KEY}",  # noqa: S608
        (run_id, lease_until, now, *sync_key_values(key)),
    )
    db.execute(
        "INSERT INTO sync_runs (id, integration, tenant, sync, started, status)"
        " VALUES (?, ?, ?, ?, ?, 'running')",
        (run_id, *sync_key_values(key), now),
    )
    return SyncState(cursor, resume, run_id, lease_until)


def _commit_page(db: sqlite3.Connection, commit: PageCommit) -> PagePlan:
    key = commit.key
    row = db.execute(
        f"SELECT run_id FROM sync_state WHERE {_KEY}",  # noqa: S608
        sync_key_values(key),
    ).fetchone()
    if row is None or row[0] != commit.run_id:
        raise LeaseLost(f"sync {key}: run {commit.run_id} lost its lease")
    plan = commit.plan(_stored(db, key, commit.record_ids))
    db.executemany(
        "INSERT INTO records (integration, tenant, sync, record_id, content_hash,"
        " updated_at, updated_ts, deleted, data, synced_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (integration, tenant, sync, record_id) DO UPDATE SET"
        " content_hash = excluded.content_hash, updated_at = excluded.updated_at,"
        " updated_ts = excluded.updated_ts, deleted = excluded.deleted,"
        " data = excluded.data, synced_at = excluded.synced_at",
        [
            (
                *sync_key_values(key),
                w.record_id,
                w.content_hash,
                w.updated_at,
                w.updated_ts,
                int(w.deleted),
                w.data,
                commit.now,
            )
            for w in plan.writes
        ],
    )
    insert_event_rows(db, plan.events)
    c = plan.counts
    db.execute(
        "UPDATE sync_runs SET fetched = fetched + ?, created = created + ?,"
        " updated = updated + ?, unchanged = unchanged + ?, deleted = deleted + ?,"
        " conflicts = conflicts + ?, pages = pages + ?, full = ?, resumed = ?,"
        " status = ?, finished = ? WHERE id = ?",
        (
            c.fetched,
            c.created,
            c.updated,
            c.unchanged,
            c.deleted,
            c.conflicts,
            c.pages,
            int(commit.full),
            int(commit.resumed),
            "succeeded" if commit.final else "running",
            commit.now if commit.final else None,
            commit.run_id,
        ),
    )
    if commit.final:
        db.execute(
            "UPDATE sync_state SET cursor = ?, resume = NULL, run_id = NULL,"  # noqa: S608
            f" lease_until = NULL, updated_at = ? WHERE {_KEY}",
            (commit.cursor, commit.now, *sync_key_values(key)),
        )
    else:
        db.execute(
            f"UPDATE sync_state SET resume = ?, lease_until = ?, updated_at = ? WHERE {_KEY}",  # noqa: S608
            (commit.resume, commit.lease_until, commit.now, *sync_key_values(key)),
        )
    return plan


def _finish_run(
    db: sqlite3.Connection,
    key: SyncKey,
    run_id: str,
    outcome: tuple[str, str | None, float, int, int],
) -> None:
    status, error, now, full, resumed = outcome
    db.execute(
        "UPDATE sync_runs SET status = ?, error = ?, finished = ?, full = ?, resumed = ?"
        " WHERE id = ? AND status = 'running'",
        (status, error, now, full, resumed, run_id),
    )
    db.execute(
        "UPDATE sync_state SET run_id = NULL, lease_until = NULL, updated_at = ?"  # noqa: S608
        f" WHERE {_KEY} AND run_id = ?",
        (now, *sync_key_values(key), run_id),
    )
