"""The PostgreSQL schema: the same tables as SQLite's, created idempotently at open.

Times are DOUBLE PRECISION epoch seconds and JSON is TEXT (the engine hands JSON text over and
reads it back byte for byte), as in SQLite; bodies, credentials and tokens are BYTEA. Ids sort
bytewise (COLLATE "C"), as in SQLite, whatever the database's collation: listings page by id.
Several replicas may open the same database at once: an advisory lock makes one of them create
the tables while the others wait.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.store.entities import SchemaTooNew
from gateway.store.postgres_coordination import COORDINATION_SCHEMA
from gateway.store.postgres_functions import FUNCTIONS_SCHEMA
from gateway.store.postgres_messages import MESSAGES_SCHEMA

if TYPE_CHECKING:
    import asyncpg

# 2: jobs keep a history of their attempts (job_attempts). The tables are created if missing,
# so a database of an older version only needs its recorded version raised.
SCHEMA_VERSION = 2
_LOCK = 0x6761_7465_7761_7901  # pg_advisory_xact_lock key: "gateway" + 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id TEXT COLLATE "C" PRIMARY KEY,
    integration TEXT NOT NULL,
    tenant TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    provider_id TEXT,
    type TEXT,
    received_at DOUBLE PRECISION NOT NULL,
    headers TEXT NOT NULL,
    body BYTEA NOT NULL,
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
    token BYTEA NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, integration, name)
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT COLLATE "C" PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    flow TEXT NOT NULL,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    integration TEXT NOT NULL,
    tenant TEXT NOT NULL,
    schedule_key TEXT,
    spec TEXT NOT NULL,
    context TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at DOUBLE PRECISION NOT NULL,
    locked_until DOUBLE PRECISION,
    last_error TEXT,
    result TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (status, run_at);
CREATE INDEX IF NOT EXISTS jobs_by_schedule ON jobs (tenant, schedule_key);
CREATE INDEX IF NOT EXISTS jobs_by_event ON jobs (event_id);
CREATE TABLE IF NOT EXISTS job_attempts (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id TEXT COLLATE "C" NOT NULL,
    attempt INTEGER NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    duration_ms DOUBLE PRECISION,
    outcome TEXT NOT NULL,
    http_status INTEGER,
    error TEXT,
    answer TEXT
);
CREATE INDEX IF NOT EXISTS job_attempts_by_job ON job_attempts (job_id, seq);
CREATE TABLE IF NOT EXISTS oauth_tokens (
    integration TEXT NOT NULL,
    tenant TEXT NOT NULL,
    token BYTEA NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (integration, tenant)
);
CREATE TABLE IF NOT EXISTS sync_state (
    integration TEXT NOT NULL,
    tenant TEXT NOT NULL,
    sync TEXT NOT NULL,
    cursor TEXT,
    resume TEXT,
    run_id TEXT,
    lease_until DOUBLE PRECISION,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (integration, tenant, sync)
);
CREATE TABLE IF NOT EXISTS sync_runs (
    id TEXT COLLATE "C" PRIMARY KEY,
    integration TEXT NOT NULL,
    tenant TEXT NOT NULL,
    sync TEXT NOT NULL,
    started DOUBLE PRECISION NOT NULL,
    finished DOUBLE PRECISION,
    fetched INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    conflicts INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    error TEXT,
    "full" BOOLEAN NOT NULL DEFAULT FALSE,
    resumed BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS sync_runs_by_key ON sync_runs (integration, tenant, sync, started);
CREATE TABLE IF NOT EXISTS records (
    integration TEXT NOT NULL,
    tenant TEXT NOT NULL,
    sync TEXT NOT NULL,
    record_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    updated_at TEXT,
    updated_ts DOUBLE PRECISION,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    data TEXT NOT NULL,
    synced_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (integration, tenant, sync, record_id)
);
"""


async def create_schema(db: asyncpg.Connection) -> None:
    """Create what is missing and record the schema version, once, whoever else is opening."""
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        await db.execute(_SCHEMA + FUNCTIONS_SCHEMA + COORDINATION_SCHEMA + MESSAGES_SCHEMA)
        found = await db.fetchval("SELECT max(version) FROM schema_version")
        if found is None:
            await db.execute("INSERT INTO schema_version (version) VALUES ($1)", SCHEMA_VERSION)
        elif found > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database's schema is version {found}, newer than this gateway's"
                f" ({SCHEMA_VERSION}): upgrade the gateway"
            )
        elif found < SCHEMA_VERSION:
            await db.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION)
