"""What the sync tables hold, as the store hands it over: state, runs (the sync log), records.

The store keeps these opaque where it can: the committed cursor and the resume point are JSON
text the sync engine writes and reads; what a page changes is decided by the engine's
`PageCommit.plan`, called inside the store's transaction with the stored versions of the page's
records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from gateway.store.entities import NewEvent

RUN_STATUSES = ("running", "succeeded", "failed")


@dataclass(frozen=True, slots=True)
class SyncKey:
    integration: str
    tenant: str
    sync: str

    def __str__(self) -> str:
        return f"{self.integration}.{self.sync}/{self.tenant}"


@dataclass(frozen=True, slots=True)
class SyncState:
    """One sync's row of sync_state. `cursor`: JSON of the committed incremental state;
    `resume`: JSON of where an unfinished run stopped; `run_id`/`lease_until`: the lease."""

    cursor: str | None = None
    resume: str | None = None
    run_id: str | None = None
    lease_until: float | None = None


@dataclass(slots=True)
class SyncCounts:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    conflicts: int = 0
    pages: int = 0

    def add(self, other: SyncCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class SyncRun:
    """One entry of the sync log."""

    id: str
    integration: str
    tenant: str
    sync: str
    started: float
    finished: float | None
    counts: SyncCounts
    status: str
    error: str | None
    full: bool
    resumed: bool

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "integration": self.integration,
            "tenant": self.tenant,
            "sync": self.sync,
            "started": self.started,
            "finished": self.finished,
            **self.counts.as_dict(),
            "status": self.status,
            "error": self.error,
            "full": self.full,
            "resumed": self.resumed,
        }


@dataclass(frozen=True, slots=True)
class SyncRunQuery:
    integration: str | None = None
    tenant: str | None = None
    sync: str | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as stored. `data` is only read by `get_sync_record`."""

    record_id: str
    content_hash: str
    updated_ts: float | None
    deleted: bool
    updated_at: str | None = None
    data: str | None = None


@dataclass(frozen=True, slots=True)
class RecordWrite:
    """A record to insert or replace. `data` is its JSON text."""

    record_id: str
    content_hash: str
    updated_at: str | None
    updated_ts: float | None
    deleted: bool
    data: str


@dataclass(frozen=True, slots=True)
class PagePlan:
    """What one page changes: records to write, events to store, and its counts."""

    writes: Sequence[RecordWrite] = ()
    events: Sequence[NewEvent] = ()
    counts: SyncCounts = field(default_factory=SyncCounts)


Planner = Callable[[Mapping[str, StoredRecord]], PagePlan]


@dataclass(frozen=True, slots=True)
class PageCommit:
    """One page, committed in one transaction together with the run's counters and the resume
    point (`resume`: JSON, None when `final`). `final` also stores `cursor` as the committed
    incremental state, ends the run as succeeded and gives the lease up."""

    key: SyncKey
    run_id: str
    record_ids: Sequence[str]
    plan: Planner
    resume: str | None
    cursor: str | None
    final: bool
    full: bool
    resumed: bool
    lease_until: float
    now: float


class LeaseLost(Exception):
    """The run no longer holds its sync's lease (it expired and another run took it)."""
