"""PostgreSQL tables of the sync engine: sync_state (cursor, resume point, lease), sync_runs
(the sync log) and records.

The lease is a row lock first: `acquire_sync` and `commit_sync_page` read the sync's state
row FOR UPDATE, so two replicas deciding about the same sync take turns, and the second sees
what the first committed. Two runs of one sync therefore never overlap, across replicas too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.store.postgres_base import PostgresBase
from gateway.store.postgres_events import insert_event_rows
from gateway.store.rows import RUN_COLUMNS, run_from_row, sync_key_values
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

if TYPE_CHECKING:
    import asyncpg

_KEY = "integration = $1 AND tenant = $2 AND sync = $3"
_UPSERT_RECORD = (
    "INSERT INTO records (integration, tenant, sync, record_id, content_hash, updated_at,"
    " updated_ts, deleted, data, synced_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    " ON CONFLICT (integration, tenant, sync, record_id) DO UPDATE SET"
    " content_hash = excluded.content_hash, updated_at = excluded.updated_at,"
    " updated_ts = excluded.updated_ts, deleted = excluded.deleted,"
    " data = excluded.data, synced_at = excluded.synced_at"
)
_COUNT_RUN = (
    "UPDATE sync_runs SET fetched = fetched + $1, created = created + $2,"
    " updated = updated + $3, unchanged = unchanged + $4, deleted = deleted + $5,"
    ' conflicts = conflicts + $6, pages = pages + $7, "full" = $8, resumed = $9,'
    " status = $10, finished = $11 WHERE id = $12"
)


async def _stored(
    db: asyncpg.Connection, key: SyncKey, ids: Sequence[str]
) -> dict[str, StoredRecord]:
    rows = await db.fetch(
        "SELECT record_id, content_hash, updated_ts, deleted FROM records"  # noqa: S608
        f" WHERE {_KEY} AND record_id = ANY($4::text[])",
        *sync_key_values(key),
        list(dict.fromkeys(ids)),
    )
    return {r[0]: StoredRecord(r[0], r[1], r[2], bool(r[3])) for r in rows}


class SyncTables(PostgresBase):
    """The sync tables; mixed into PostgresStore."""

    async def acquire_sync(
        self, key: SyncKey, run_id: str, *, now: float, lease_until: float
    ) -> SyncState | None:
        """Take the sync's lease for a new run and log the run as running, atomically; None
        when another run holds an unexpired lease. A run whose lease expired (its process
        died) is logged as failed."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO sync_state (integration, tenant, sync, updated_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                *sync_key_values(key),
                now,
            )
            row = await db.fetchrow(
                f"SELECT cursor, resume, run_id, lease_until FROM sync_state WHERE {_KEY}"  # noqa: S608
                " FOR UPDATE",
                *sync_key_values(key),
            )
            cursor, resume, holder, until = row
            if holder is not None and until is not None and until > now:
                return None
            if holder is not None:
                await db.execute(
                    "UPDATE sync_runs SET status = 'failed', finished = $1,"
                    " error = 'interrupted: the run stopped without finishing (lease expired)'"
                    " WHERE id = $2 AND status = 'running'",
                    now,
                    holder,
                )
            await db.execute(
                "UPDATE sync_state SET run_id = $4, lease_until = $5, updated_at = $6"  # noqa: S608
                f" WHERE {_KEY}",
                *sync_key_values(key),
                run_id,
                lease_until,
                now,
            )
            await db.execute(
                "INSERT INTO sync_runs (id, integration, tenant, sync, started, status)"
                " VALUES ($1, $2, $3, $4, $5, 'running')",
                run_id,
                *sync_key_values(key),
                now,
            )
        return SyncState(cursor, resume, run_id, lease_until)

    async def commit_sync_page(self, commit: PageCommit) -> PagePlan:
        """Apply one page: the records and events its plan decides, the run's counters, the
        resume point (and when final: the cursor, success, the lease given up)."""
        key = commit.key
        async with self.transaction() as db:
            holder = await db.fetchval(
                f"SELECT run_id FROM sync_state WHERE {_KEY} FOR UPDATE",  # noqa: S608
                *sync_key_values(key),
            )
            if holder != commit.run_id:
                raise LeaseLost(f"sync {key}: run {commit.run_id} lost its lease")
            plan = commit.plan(await _stored(db, key, commit.record_ids))
            if plan.writes:
                await db.executemany(
                    _UPSERT_RECORD,
                    [
                        (
                            *sync_key_values(key),
                            w.record_id,
                            w.content_hash,
                            w.updated_at,
                            w.updated_ts,
                            w.deleted,
                            w.data,
                            commit.now,
                        )
                        for w in plan.writes
                    ],
                )
            await insert_event_rows(db, plan.events)
            c = plan.counts
            await db.execute(
                _COUNT_RUN,
                c.fetched,
                c.created,
                c.updated,
                c.unchanged,
                c.deleted,
                c.conflicts,
                c.pages,
                commit.full,
                commit.resumed,
                "succeeded" if commit.final else "running",
                commit.now if commit.final else None,
                commit.run_id,
            )
            if commit.final:
                await db.execute(
                    "UPDATE sync_state SET cursor = $4, resume = NULL, run_id = NULL,"  # noqa: S608
                    f" lease_until = NULL, updated_at = $5 WHERE {_KEY}",
                    *sync_key_values(key),
                    commit.cursor,
                    commit.now,
                )
            else:
                await db.execute(
                    "UPDATE sync_state SET resume = $4, lease_until = $5, updated_at = $6"  # noqa: S608
                    f" WHERE {_KEY}",
                    *sync_key_values(key),
                    commit.resume,
                    commit.lease_until,
                    commit.now,
                )
        return plan

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
        async with self.transaction() as db:
            await db.execute(
                'UPDATE sync_runs SET status = $1, error = $2, finished = $3, "full" = $4,'
                " resumed = $5 WHERE id = $6 AND status = 'running'",
                status,
                error,
                now,
                full,
                resumed,
                run_id,
            )
            await db.execute(
                "UPDATE sync_state SET run_id = NULL, lease_until = NULL, updated_at = $4"  # noqa: S608
                f" WHERE {_KEY} AND run_id = $5",
                *sync_key_values(key),
                now,
                run_id,
            )

    async def get_sync_state(self, key: SyncKey) -> SyncState | None:
        row = await self.pool.fetchrow(
            f"SELECT cursor, resume, run_id, lease_until FROM sync_state WHERE {_KEY}",  # noqa: S608
            *sync_key_values(key),
        )
        return SyncState(*row) if row is not None else None

    async def list_sync_runs(self, query: SyncRunQuery) -> list[SyncRun]:
        clauses: list[str] = []
        args: list[Any] = []
        for column in ("integration", "tenant", "sync"):
            value = getattr(query, column)
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        args.append(query.limit)
        rows = await self.pool.fetch(
            f"SELECT {RUN_COLUMNS} FROM sync_runs {where}"  # noqa: S608
            f" ORDER BY started DESC, id DESC LIMIT ${len(args)}",
            *args,
        )
        return [run_from_row(r) for r in rows]

    async def get_sync_run(self, run_id: str) -> SyncRun | None:
        row = await self.pool.fetchrow(
            f"SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1",  # noqa: S608
            run_id,
        )
        return run_from_row(row) if row is not None else None

    async def last_sync_starts(self) -> dict[SyncKey, float]:
        """When each sync (per tenant) last started a run."""
        rows = await self.pool.fetch(
            "SELECT integration, tenant, sync, max(started) FROM sync_runs"
            " GROUP BY integration, tenant, sync"
        )
        return {SyncKey(r[0], r[1], r[2]): r[3] for r in rows}

    async def get_sync_record(self, key: SyncKey, record_id: str) -> StoredRecord | None:
        row = await self.pool.fetchrow(
            "SELECT record_id, content_hash, updated_ts, deleted, updated_at, data"  # noqa: S608
            f" FROM records WHERE {_KEY} AND record_id = $4",
            *sync_key_values(key),
            record_id,
        )
        if row is None:
            return None
        return StoredRecord(row[0], row[1], row[2], bool(row[3]), row[4], row[5])

    async def count_sync_records(self, key: SyncKey) -> tuple[int, int]:
        """(live, deleted) records of one sync."""
        row = await self.pool.fetchrow(
            "SELECT count(*) FILTER (WHERE NOT deleted), count(*) FILTER (WHERE deleted)"  # noqa: S608
            f" FROM records WHERE {_KEY}",
            *sync_key_values(key),
        )
        return int(row[0]), int(row[1])
