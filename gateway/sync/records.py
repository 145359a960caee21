"""Records of one page: read from the response as declared, then compared with the stored
versions to decide what is created, updated, unchanged, deleted or in conflict.

Conflict policy: a record whose updated_at is older than the stored version's is a conflict
(a stale page, a resumed run, a lagging replica). ``last_write_wins`` keeps the stored
version; ``provider_wins`` applies the incoming one anyway. Both count the conflict.
A deletion of a record never stored is kept as a tombstone (so an older copy arriving later
does not bring it back) and counted as deleted, without an event: there was nothing to delete.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.config.syncs import SyncSpec, truthy
from gateway.expr.expressions import RENDER_ERRORS, Expression
from gateway.expr.filters import to_datetime
from gateway.store.entities import NewEvent
from gateway.store.sync_model import PagePlan, RecordWrite, StoredRecord, SyncCounts
from gateway.sync.spec import SyncError

log = logging.getLogger("gateway.sync")

EventFactory = Callable[[str, "Incoming"], NewEvent]


@dataclass(frozen=True, slots=True)
class Incoming:
    """One record as fetched: its id, version, deletion flag, canonical JSON and its hash."""

    record_id: str
    updated_at: Any  # as the provider wrote it (kept for the since value)
    updated_ts: float | None  # comparable: epoch seconds
    deleted: bool
    data: str
    content_hash: str

    def write(self) -> RecordWrite:
        updated = None if self.updated_at is None else str(self.updated_at)
        return RecordWrite(
            self.record_id, self.content_hash, updated, self.updated_ts, self.deleted, self.data
        )


def timestamp(value: Any) -> float | None:
    """Epoch seconds of an updated-at value (ISO 8601, epoch s or ms); None when empty."""
    if value is None or value == "":
        return None
    try:
        return to_datetime(value).timestamp()
    except (ValueError, TypeError, OverflowError) as exc:
        raise SyncError(f"updated_at {value!r} is not a time: {exc}") from None


def _render(expr: Expression, variables: Mapping[str, Any], what: str) -> Any:
    try:
        return expr.render(variables)
    except RENDER_ERRORS as exc:
        raise SyncError(f"{what} ({expr.source.strip()}): {exc}") from None


def page_records(spec: SyncSpec, response: Any, tenant: Mapping[str, Any]) -> list[Any]:
    """The records of one response, as the sync's `records` expression finds them."""
    found = _render(spec.records, {"response": response, "tenant": tenant}, "records")
    if found is None:
        return []
    if not isinstance(found, list | tuple):
        raise SyncError(f"records: expected a list, got {type(found).__name__}")
    return list(found)


def read_record(spec: SyncSpec, record: Any, tenant: Mapping[str, Any], index: int) -> Incoming:
    variables = {"record": record, "tenant": tenant}
    where = f"record {index}"
    raw_id = _render(spec.record_id, variables, f"{where}: id")
    if raw_id is None or str(raw_id) == "":
        raise SyncError(f"{where}: id is empty")
    updated = (
        _render(spec.updated_at, variables, f"{where}: updated_at") if spec.updated_at else None
    )
    updated = None if updated == "" else updated
    deleted = (
        truthy(_render(spec.deleted, variables, f"{where}: deleted")) if spec.deleted else False
    )
    data = json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return Incoming(
        record_id=str(raw_id),
        updated_at=updated,
        updated_ts=timestamp(updated),
        deleted=deleted,
        data=data,
        content_hash=hashlib.sha256(data.encode()).hexdigest(),
    )


def _is_older(incoming: Incoming, stored: StoredRecord) -> bool:
    return (
        incoming.updated_ts is not None
        and stored.updated_ts is not None
        and incoming.updated_ts < stored.updated_ts
    )


def plan_page(
    spec: SyncSpec,
    incoming: Sequence[Incoming],
    stored: Mapping[str, StoredRecord],
    make_event: EventFactory | None,
    delivered: Sequence[NewEvent | str | None] | None = None,
) -> PagePlan:
    """What a page changes, given the stored versions of its records (pure). `delivered`:
    for each record, its ``as_webhook`` event (or why it has none), taken when it is written."""
    counts = SyncCounts(fetched=len(incoming), pages=1)
    current = dict(stored)  # a record twice on one page: the second meets the first
    writes: dict[str, RecordWrite] = {}
    events: list[NewEvent] = []
    for index, record in enumerate(incoming):
        before = current.get(record.record_id)
        change = _change(spec, record, before, counts)
        if change is None:
            continue
        writes[record.record_id] = record.write()
        current[record.record_id] = StoredRecord(
            record.record_id, record.content_hash, record.updated_ts, record.deleted
        )
        setattr(counts, change, getattr(counts, change) + 1)
        emits = before is not None or change != "deleted"
        if make_event is not None and emits and change in spec.emit:
            events.append(make_event(change, record))
        if delivered is not None:
            delivery = delivered[index]
            if isinstance(delivery, str):
                raise SyncError(delivery)
            if delivery is not None:
                events.append(delivery)
    return PagePlan(list(writes.values()), events, counts)


def _change(
    spec: SyncSpec, record: Incoming, before: StoredRecord | None, counts: SyncCounts
) -> str | None:
    """created | updated | deleted, or None when nothing is written (unchanged, conflict)."""
    if before is None:
        return "deleted" if record.deleted else "created"
    if before.content_hash == record.content_hash and before.deleted == record.deleted:
        counts.unchanged += 1
        return None
    if before.deleted and record.deleted:
        counts.unchanged += 1  # a tombstone's details changed: still deleted
        return None
    if _is_older(record, before):
        counts.conflicts += 1
        log.info(
            "sync %s: record %s is older (%s) than the stored one (%s): %s",
            spec.label,
            record.record_id,
            record.updated_ts,
            before.updated_ts,
            "kept the stored one" if spec.conflict == "last_write_wins" else "applied anyway",
        )
        if spec.conflict == "last_write_wins":
            return None
    if record.deleted:
        return "deleted"
    return "created" if before.deleted else "updated"
