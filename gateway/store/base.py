"""The storage interface the engine talks to; SQLite and (later) PostgreSQL implement it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from gateway.lint import UsageError

if TYPE_CHECKING:  # sync_model imports NewEvent from here
    from gateway.store.sync_model import (
        PageCommit,
        PagePlan,
        StoredRecord,
        SyncKey,
        SyncRun,
        SyncRunQuery,
        SyncState,
    )


class SchemaTooNew(UsageError):
    """The database was set up by a newer gateway than this one."""


class NewEvent(NamedTuple):
    """An event verified and ready to be stored. A tuple in the events table's column order:
    it is made on every request and bound to the INSERT as it is."""

    id: str
    integration: str
    tenant: str
    dedup_key: str
    provider_id: str | None
    type: str | None
    received_at: float
    headers: str  # JSON object of the headers kept for audit (secrets removed)
    body: bytes  # the event's bytes: the raw body, or one item of a split batch as JSON


class Inserted(NamedTuple):
    event_id: str  # the stored event's id: the new one, or the first one's for a duplicate
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: str
    integration: str
    tenant: str
    provider_id: str | None
    type: str | None
    received_at: float
    status: str
    headers: dict[str, str]
    body: bytes
    replays: int = 0
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "integration": self.integration,
            "tenant": self.tenant,
            "provider_event_id": self.provider_id,
            "type": self.type,
            "received_at": self.received_at,
            "status": self.status,
            "replays": self.replays,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class EventQuery:
    integration: str | None = None
    tenant: str | None = None
    type: str | None = None
    limit: int = 50
    before: str | None = None  # page backwards: events with an id below this one


# ---- the durable job queue ------------------------------------------------------------------

JOB_STATUSES = ("queued", "running", "succeeded", "dead", "cancelled")


@dataclass(frozen=True, slots=True)
class NewJob:
    """An action to run, derived from an event by a flow."""

    id: str
    idempotency_key: str  # unique: the same event, flow and action never enqueue twice
    event_id: str
    flow: str
    action: str
    kind: str  # send | call
    integration: str  # the integration the action calls (limits, bulk retry)
    tenant: str
    schedule_key: str | None  # set for scheduled actions, so a cancel can find them
    spec: str  # JSON: the action as declared (rendered when it runs)
    context: str  # JSON: the normalised event it runs for
    run_at: float
    max_attempts: int
    created_at: float


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    idempotency_key: str
    event_id: str
    flow: str
    action: str
    kind: str
    integration: str
    tenant: str
    schedule_key: str | None
    spec: str
    context: str
    status: str
    attempts: int
    max_attempts: int
    run_at: float
    last_error: str | None
    result: str | None
    created_at: float
    updated_at: float

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "flow": self.flow,
            "action": self.action,
            "kind": self.kind,
            "integration": self.integration,
            "tenant": self.tenant,
            "schedule_key": self.schedule_key,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "run_at": self.run_at,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What became of one attempt at a job."""

    job_id: str
    status: str  # succeeded | queued (to retry at run_at) | dead
    run_at: float | None = None
    error: str | None = None
    result: str | None = None
    attempt: int | None = None  # the claim's attempt: a stale worker's outcome is not recorded


@dataclass(frozen=True, slots=True)
class JobQuery:
    id: str | None = None
    status: str | None = None
    integration: str | None = None
    tenant: str | None = None
    event_id: str | None = None
    since: float | None = None  # created at or after
    until: float | None = None  # created before
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What dispatching one event decided, committed in one transaction."""

    event_id: str
    status: str  # dispatched | ignored | failed
    jobs: Sequence[NewJob] = ()
    cancels: Sequence[tuple[str, str]] = ()  # (tenant, schedule key)
    error: str | None = None


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def insert_events(self, events: Sequence[NewEvent]) -> list[Inserted]:
        """Store events in one transaction, durably, before returning. A repeat of
        (integration, tenant, dedup_key) is not stored again: its result names the first."""
        ...

    async def list_events(self, query: EventQuery) -> list[StoredEvent]: ...

    async def get_event(self, event_id: str) -> StoredEvent | None: ...

    async def count_events(self) -> int: ...

    async def set_credential(
        self, tenant: str, integration: str, name: str, token: bytes
    ) -> None: ...

    async def delete_credential(self, tenant: str, integration: str, name: str) -> bool: ...

    async def list_credentials(
        self, tenant: str | None = None
    ) -> list[tuple[str, str, str, float]]:
        """(tenant, integration, name, updated_at) rows; never values."""
        ...

    async def credential_tokens(self, tenant: str) -> list[tuple[str, str, bytes]]:
        """(integration, name, encrypted token) rows of one tenant."""
        ...

    async def replace_credential_tokens(self, rows: Sequence[tuple[str, str, str, bytes]]) -> None:
        """Re-encrypted tokens for (tenant, integration, name) rows, in one transaction."""
        ...

    async def tenants_with_credentials(self) -> set[str]: ...

    async def all_credential_tokens(self) -> list[tuple[str, str, str, bytes]]: ...

    # processing
    async def pending_events(self, limit: int) -> list[StoredEvent]: ...

    async def commit_dispatches(self, dispatches: Sequence[Dispatch]) -> None: ...

    async def replay_event(self, event_id: str) -> bool: ...

    async def purge(self, cutoff: float) -> tuple[int, int]: ...

    async def claim_jobs(self, now: float, limit: int, lease: float) -> list[Job]: ...

    async def finish_jobs(self, outcomes: Sequence[JobOutcome]) -> None:
        """Record the outcomes of a batch of jobs in one transaction."""
        ...

    async def extend_leases(self, job_ids: Sequence[str], until: float) -> None: ...

    async def next_run_at(self) -> float | None: ...

    async def list_jobs(self, query: JobQuery) -> list[Job]: ...

    async def get_job(self, job_id: str) -> Job | None: ...

    async def retry_jobs(self, query: JobQuery) -> int: ...

    async def job_counts(self) -> dict[str, int]: ...

    async def get_token(self, integration: str, tenant: str) -> bytes | None: ...

    async def put_token(self, integration: str, tenant: str, token: bytes) -> None: ...

    # ---- syncs (see gateway/store/sync_model.py) ------------------------------------------

    async def acquire_sync(
        self, key: SyncKey, run_id: str, *, now: float, lease_until: float
    ) -> SyncState | None:
        """Take the sync's lease and log run `run_id` as running, atomically; None when
        another run holds the lease."""
        ...

    async def commit_sync_page(self, commit: PageCommit) -> PagePlan:
        """One page's records, events, counters and resume point in one transaction; raises
        `LeaseLost` when the run no longer holds the lease."""
        ...

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
    ) -> None: ...

    async def get_sync_state(self, key: SyncKey) -> SyncState | None: ...

    async def list_sync_runs(self, query: SyncRunQuery) -> list[SyncRun]: ...

    async def get_sync_run(self, run_id: str) -> SyncRun | None: ...

    async def last_sync_starts(self) -> dict[SyncKey, float]: ...

    async def get_sync_record(self, key: SyncKey, record_id: str) -> StoredRecord | None: ...

    async def count_sync_records(self, key: SyncKey) -> tuple[int, int]: ...
