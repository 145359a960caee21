"""SQLite has one writer: every write, through every public method, runs on the writer thread's
connection; the reader connection cannot write at all."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.store import SQLiteStore
from gateway.store.entities import (
    Dispatch,
    EventQuery,
    FunctionCall,
    JobOutcome,
    JobQuery,
    Message,
    MessageUpdate,
    NewEvent,
    NewJob,
)
from gateway.store.interfaces import Lifecycle, Store
from gateway.store.people import Person
from gateway.store.sync_model import PageCommit, PagePlan, RecordWrite, SyncCounts, SyncKey

NOW = 1_750_000_000.0
KEY = SyncKey("acme", "default", "things")
# Statements that write (or take the write lock), as the trace callback reports them.
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "BEGIN")
# Public methods that only read: every other method of `Store` is exercised below as a write.
READS = {
    "find_person",
    "list_events",
    "get_event",
    "count_events",
    "pending_events",
    "next_run_at",
    "list_jobs",
    "count_jobs",
    "get_job",
    "job_attempts",
    "job_counts",
    "backlog",
    "list_credentials",
    "credential_tokens",
    "tenants_with_credentials",
    "all_credential_tokens",
    "get_token",
    "get_sync_state",
    "list_sync_runs",
    "get_sync_run",
    "last_sync_starts",
    "get_sync_record",
    "count_sync_records",
    "function_answer",
    "list_function_calls",
    "get_message",
    "list_messages",
    "opt_out_reason",
}

Traced = list[tuple[int, str, str]]  # (connection number, thread name, statement)


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Traced:
    """Every statement run by any sqlite3 connection opened from now on (aiosqlite's too)."""
    log: Traced = []
    real_connect = sqlite3.connect
    opened = 0

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        nonlocal opened
        connection = real_connect(*args, **kwargs)
        number = opened
        opened += 1
        connection.set_trace_callback(
            lambda sql: log.append((number, threading.current_thread().name, sql))
        )
        return connection

    monkeypatch.setattr(sqlite3, "connect", connect)
    return log


def _writes(log: Traced) -> Traced:
    return [entry for entry in log if entry[2].lstrip().upper().startswith(WRITES)]


def _event(event_id: str) -> NewEvent:
    return NewEvent(event_id, "acme", "default", event_id, None, "t", NOW, "{}", b"{}")


def _job(job_id: str, event_id: str) -> NewJob:
    return NewJob(
        id=job_id,
        idempotency_key=f"{event_id}/{job_id}",
        event_id=event_id,
        flow="flow",
        action="a",
        kind="call",
        integration="acme",
        tenant="default",
        schedule_key="s1",
        spec="{}",
        context="{}",
        run_at=NOW,
        max_attempts=5,
        created_at=NOW,
    )


def _page(run_id: str) -> PageCommit:
    def plan(stored: Any) -> PagePlan:
        write = RecordWrite("r1", "h1", None, None, False, "{}")
        return PagePlan([write], [_event("evt_sync")], SyncCounts(fetched=1, created=1))

    return PageCommit(
        key=KEY,
        run_id=run_id,
        record_ids=["r1"],
        plan=plan,
        resume=None,
        cursor="{}",
        final=True,
        full=True,
        resumed=False,
        lease_until=NOW + 600,
        now=NOW,
    )


def _function_call() -> FunctionCall:
    return FunctionCall(
        "fnc_1", "acme", "f", "default", "k", "ok", 200, "text/plain", "hi", "{}", "[]", NOW, 1.0
    )


def _calls(store: SQLiteStore) -> dict[str, Callable[[], Awaitable[object]]]:
    """One call of each public method that writes, in an order in which each one writes."""
    return {
        "insert_events": lambda: store.insert_events([_event("evt_1"), _event("evt_2")]),
        "commit_dispatches": lambda: store.commit_dispatches(
            [Dispatch("evt_1", "dispatched", [_job("job_1", "evt_1"), _job("job_2", "evt_1")])]
        ),
        "replay_event": lambda: store.replay_event("evt_1"),
        "replay_events": lambda: store.replay_events(EventQuery(integration="acme")),
        "claim_jobs": lambda: store.claim_jobs(NOW + 1, 10, 60),
        "extend_leases": lambda: store.extend_leases(["job_1"], NOW + 120),
        "finish_jobs": lambda: store.finish_jobs([JobOutcome("job_1", "dead", error="no")]),
        "retry_jobs": lambda: store.retry_jobs(JobQuery(id="job_1")),
        "purge": lambda: store.purge(NOW + 10),
        "set_credential": lambda: store.set_credential("default", "acme", "key", b"t1"),
        "replace_credential_tokens": lambda: store.replace_credential_tokens(
            [("default", "acme", "key", b"t2")]
        ),
        "delete_credential": lambda: store.delete_credential("default", "acme", "key"),
        "put_token": lambda: store.put_token("acme", "default", b"tok"),
        "acquire_sync": lambda: store.acquire_sync(KEY, "run_1", now=NOW, lease_until=NOW + 60),
        "commit_sync_page": lambda: store.commit_sync_page(_page("run_1")),
        "finish_sync_run": lambda: store.finish_sync_run(
            KEY, "run_1", status="failed", error="x", now=NOW, full=False, resumed=False
        ),
        "record_function_call": lambda: store.record_function_call(_function_call()),
        "record_message": lambda: store.record_message(_message("msg_1")),
        "update_message": lambda: store.update_message(MessageUpdate("sent", NOW, id="msg_1")),
        "add_jobs": lambda: store.add_jobs([_job("job_9", "evt_1")]),
        "set_opt_out": lambda: store.set_opt_out("default", "sms", "+4915112345678", "STOP", NOW),
        "clear_opt_out": lambda: store.clear_opt_out("default", "sms", "+4915112345678"),
        # the message recorded above is to this number: deleted, with VACUUM on the writer too
        "erase_person": lambda: store.erase_person(Person.of(None, "+4915112345678")),
    }


def _message(id: str) -> Message:
    return Message(
        id, "default", "twilio.sms", "sms", "twilio", "+4915112345678", "t", "sending", NOW
    )


def _public_methods() -> set[str]:
    lifecycle = {name for name, _ in inspect.getmembers(Lifecycle, inspect.isfunction)}
    return {
        name
        for name, _ in inspect.getmembers(Store, inspect.isfunction)
        if not name.startswith("_") and name not in lifecycle
    }


def test_every_write_runs_on_the_one_writer_connection(tmp_path: Path, traced: Traced) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
    calls = _calls(store)
    assert set(calls) | READS == _public_methods()  # a new method must be listed here

    async def main() -> None:
        await store.open()
        try:
            assert len({number for number, _, _ in traced}) == 2  # a writer and a reader
            writer = {number for number, _, _ in _writes(traced)}
            assert len(writer) == 1  # the schema was created by one connection
            for name, call in calls.items():
                before = len(traced)
                await call()
                writes = _writes(traced[before:])
                assert writes, f"{name} wrote nothing"
                assert {number for number, _, _ in writes} == writer, name
                assert {thread for _, thread, _ in writes} == {"sqlite-writer_0"}, name
        finally:
            await store.close()

    asyncio.run(main())
    assert len({number for number, _, _ in _writes(traced)}) == 1


def test_the_reader_cannot_write(tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
        await store.open()
        try:
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                await store.reader.execute("DELETE FROM events")
        finally:
            await store.close()

    asyncio.run(main())


def _fails(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO opt_outs (tenant, kind, address, reason, created_at)"
               " VALUES ('t', 'sms', '+1', 'x', 0)")  # fmt: skip
    raise ValueError("this write changes its mind")


def test_writes_queued_together_share_one_transaction_and_fail_alone(
    tmp_path: Path, traced: Traced
) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")

    async def main() -> list[object]:
        await store.open()
        try:
            before = len(traced)
            results = await asyncio.gather(
                store.insert_events([_event("evt_a")]),
                store.write(_fails),
                store.insert_events([_event("evt_b")]),
                store.set_opt_out("default", "sms", "+4915112345678", "STOP", NOW),
                return_exceptions=True,
            )
            began = [sql for _, _, sql in traced[before:] if sql.startswith("BEGIN")]
            assert began == ["BEGIN IMMEDIATE"]  # four writes, one transaction
            assert await store.count_events() == 2
            assert await store.opt_out_reason("default", "sms", "+4915112345678") == "STOP"
            assert await store.opt_out_reason("t", "sms", "+1") is None  # undone alone
            return results
        finally:
            await store.close()

    inserted_a, failed, inserted_b, new = asyncio.run(main())
    assert isinstance(failed, ValueError) and str(failed) == "this write changes its mind"
    assert [i.event_id for i in inserted_a] == ["evt_a"]  # type: ignore[attr-defined]
    assert [i.event_id for i in inserted_b] == ["evt_b"]  # type: ignore[attr-defined]
    assert new is True
