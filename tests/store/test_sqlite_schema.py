"""An existing SQLite database is brought up to the current schema with its events intact."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.store import SQLiteStore
from gateway.store.entities import Dispatch, JobOutcome, NewEvent, NewJob, SchemaTooNew
from gateway.store.sqlite import SCHEMA_VERSION
from tests.helpers import REPO

V1_EVENTS = """
CREATE TABLE events (
    id TEXT PRIMARY KEY, integration TEXT NOT NULL, tenant TEXT NOT NULL,
    dedup_key TEXT NOT NULL, provider_id TEXT, type TEXT, received_at REAL NOT NULL,
    headers TEXT NOT NULL, body BLOB NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    replays INTEGER NOT NULL DEFAULT 0, error TEXT, UNIQUE (integration, tenant, dedup_key)
);
CREATE INDEX events_pending ON events (status, id);
CREATE INDEX events_by_filter ON events (integration, tenant, type, id);
INSERT INTO events (id, integration, tenant, dedup_key, received_at, headers, body, status)
VALUES ('evt_1', 'acme', 'default', 'k1', 1.0, '{}', x'7b7d', 'pending'),
       ('evt_2', 'acme', 'default', 'k2', 2.0, '{}', x'7b7d', 'dispatched');
PRAGMA user_version = 1;
"""


def _index_sql(path: Path) -> str:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT sql FROM sqlite_master WHERE name = 'events_pending'").fetchone()
        return str(row[0])


def test_a_version_1_database_is_migrated_and_keeps_its_events(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(V1_EVENTS)

    async def scenario() -> tuple[list[str], int]:
        store = SQLiteStore(f"sqlite:///{path}")
        await store.open()
        pending = [e.id for e in await store.pending_events(10)]
        count = await store.count_events()
        await store.close()
        return pending, count

    assert asyncio.run(scenario()) == (["evt_1"], 2)
    assert "WHERE status = 'pending'" in _index_sql(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_version_2_database_gains_the_attempt_history_and_keeps_its_jobs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v2.db"
    url = f"sqlite:///{path}"

    async def make() -> None:
        store = SQLiteStore(url)
        await store.open()
        await store.insert_events(
            [NewEvent("evt_1", "acme", "default", "k1", None, None, 1.0, "{}", b"{}")]
        )
        job = NewJob(
            "job_1", "evt_1/0/f/a", "evt_1", "f", "a", "call", "acme", "default", None,
            "{}", "{}", 1.0, 5, 1.0,
        )  # fmt: skip
        await store.commit_dispatches([Dispatch("evt_1", "dispatched", [job])])
        await store.close()

    asyncio.run(make())
    with sqlite3.connect(path) as db:  # as a version 2 gateway left it
        db.executescript("DROP TABLE job_attempts; PRAGMA user_version = 2;")

    async def scenario() -> list[tuple[int, str]]:
        store = SQLiteStore(url)
        await store.open()
        try:
            [claimed] = await store.claim_jobs(2.0, 10, 60)
            await store.finish_jobs([JobOutcome(claimed.id, "succeeded", attempt=1)])
            found = await store.job_attempts(["job_1"])
            return [(a.attempt, a.outcome) for a in found["job_1"]]
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [(1, "succeeded")]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_database_from_a_newer_gateway_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    async def scenario() -> None:
        store = SQLiteStore(f"sqlite:///{path}")
        try:
            await store.open()
        finally:
            await store.close()

    with pytest.raises(SchemaTooNew, match="upgrade the gateway"):
        asyncio.run(scenario())


@pytest.mark.parametrize("command", [["serve", "--integrations", "integrations.d"], ["jobs"]])
def test_commands_refuse_a_newer_database_and_exit(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *command, "--db", f"sqlite:///{path}"],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "newer than this gateway's" in done.stderr
