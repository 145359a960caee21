"""PostgreSQL storage through asyncpg: for several replicas sharing one database.

The same tables and semantics as SQLite's (sqlite.py), through one connection pool. A batch of
events is one transaction (group commit, writer.py; see postgres_events.py). asyncpg is an
optional dependency: `open_store` imports this module only for a postgresql:// URL.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gateway.errors import UsageError
from gateway.store.entities import EventQuery, Inserted, NewEvent, StoredEvent
from gateway.store.interfaces import Coordination
from gateway.store.postgres_base import affected
from gateway.store.postgres_coordination import CoordinationTables
from gateway.store.postgres_events import insert_events
from gateway.store.postgres_functions import FunctionTables
from gateway.store.postgres_jobs import JobTables
from gateway.store.postgres_messages import MessageTables
from gateway.store.postgres_people import PeopleTables
from gateway.store.postgres_schema import create_schema
from gateway.store.postgres_sync import SyncTables
from gateway.store.rows import EVENT_COLUMNS, event_from_row, event_where, postgres_mark


def shown_url(url: str) -> str:
    """The URL without its password, fit for a message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresStore(
    JobTables, SyncTables, FunctionTables, CoordinationTables, MessageTables, PeopleTables
):
    """`PostgresStore("postgresql://user@host/db")`; ``pool_min`` and ``pool_max`` bound the
    connection pool (1 and 10 by default); query parameters the driver does not know
    (``?search_path=gateway``) are session settings."""

    async def open(self) -> None:
        try:
            pool = await asyncpg.create_pool(
                self.url,
                min_size=self.min_size,
                max_size=self.max_size,
                server_settings=self.server_settings or None,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise UsageError(f"cannot open PostgreSQL at {shown_url(self.url)}: {exc}") from exc
        try:
            async with pool.acquire() as db:
                await create_schema(db)
        except asyncpg.PostgresError as exc:
            await pool.close()
            raise UsageError(
                f"cannot create the gateway's tables in PostgreSQL at {shown_url(self.url)}: {exc}"
            ) from exc
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def check_writable(self) -> None:
        """Raises when the database cannot be written now (a standby, a read-only session)."""
        async with self.pool.acquire() as db:
            read_only = await db.fetchval(
                "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"
            )
        if read_only:
            raise RuntimeError("the database is read-only")

    def coordination(self) -> Coordination:
        return self

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # ---- events -------------------------------------------------------------------------

    async def insert_events(self, events: Sequence[NewEvent]) -> list[Inserted]:
        if not events:
            return []
        async with self.transaction() as db:
            return await insert_events(db, events)

    async def list_events(self, query: EventQuery) -> list[StoredEvent]:
        where, args = event_where(query, postgres_mark)
        rows = await self.pool.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events {where}"  # noqa: S608
            f" ORDER BY id DESC LIMIT ${len(args) + 1}",
            *args,
            query.limit,
        )
        return [event_from_row(r) for r in rows]

    async def get_event(self, event_id: str) -> StoredEvent | None:
        row = await self.pool.fetchrow(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE id = $1",  # noqa: S608
            event_id,
        )
        return event_from_row(row) if row is not None else None

    async def pending_events(self, limit: int) -> list[StoredEvent]:
        rows = await self.pool.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE status = 'pending'"  # noqa: S608
            " ORDER BY id LIMIT $1",
            limit,
        )
        return [event_from_row(r) for r in rows]

    async def count_events(self, query: EventQuery | None = None) -> int:
        where, args = event_where(query, postgres_mark) if query is not None else ("", [])
        return int(await self.pool.fetchval(f"SELECT count(*) FROM events {where}", *args))  # noqa: S608

    # ---- credentials ----------------------------------------------------------------------

    async def set_credential(self, tenant: str, integration: str, name: str, token: bytes) -> None:
        await self.pool.execute(
            "INSERT INTO credentials (tenant, integration, name, token, updated_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, integration, name)"
            " DO UPDATE SET token = excluded.token, updated_at = excluded.updated_at",
            tenant,
            integration,
            name,
            token,
            time.time(),
        )

    async def delete_credential(self, tenant: str, integration: str, name: str) -> bool:
        status = await self.pool.execute(
            "DELETE FROM credentials WHERE tenant = $1 AND integration = $2 AND name = $3",
            tenant,
            integration,
            name,
        )
        return affected(status) > 0

    async def list_credentials(
        self, tenant: str | None = None
    ) -> list[tuple[str, str, str, float]]:
        where, args = ("WHERE tenant = $1", [tenant]) if tenant else ("", [])
        rows = await self.pool.fetch(
            f"SELECT tenant, integration, name, updated_at FROM credentials {where}"  # noqa: S608
            " ORDER BY tenant, integration, name",
            *args,
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def credential_tokens(self, tenant: str) -> list[tuple[str, str, bytes]]:
        rows = await self.pool.fetch(
            "SELECT integration, name, token FROM credentials WHERE tenant = $1", tenant
        )
        return [(r[0], r[1], bytes(r[2])) for r in rows]

    async def replace_credential_tokens(self, rows: Sequence[tuple[str, str, str, bytes]]) -> None:
        if not rows:
            return
        async with self.transaction() as db:
            await db.executemany(
                "UPDATE credentials SET token = $1"
                " WHERE tenant = $2 AND integration = $3 AND name = $4",
                [(token, tenant, integration, name) for tenant, integration, name, token in rows],
            )

    async def all_credential_tokens(self) -> list[tuple[str, str, str, bytes]]:
        rows = await self.pool.fetch("SELECT tenant, integration, name, token FROM credentials")
        return [(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    async def tenants_with_credentials(self) -> set[str]:
        rows = await self.pool.fetch("SELECT DISTINCT tenant FROM credentials")
        return {r[0] for r in rows}
