"""Sync results as events: a sync that declares ``emit`` stores one event per created, updated
or deleted record in the events table, in the same transaction as the record, so the
dispatcher feeds them to flows exactly like webhooks (and replays them the same way).

Such an event has the type ``sync.<sync>.<change>``, the header ``x-gateway-sync: <sync>``
and the body ``{"sync", "change", "id", "updated_at", "record"}``; `normalise` turns it into
the normalised event the sync's ``emit`` names, with that body as its data. Its dedup key is
made of the record id, the change and the record's content hash: the same version of a record
never makes the same event twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gateway.config.model import Integration
from gateway.ids import new_id
from gateway.store.entities import NewEvent, StoredEvent
from gateway.sync.records import Incoming

SYNC_HEADER = "x-gateway-sync"
TYPE_PREFIX = "sync."


def event_factory(
    integration: str, tenant: str, sync: str, clock: Callable[[], float]
) -> Callable[[str, Incoming], NewEvent]:
    headers = json.dumps({SYNC_HEADER: sync})

    def make(change: str, record: Incoming) -> NewEvent:
        body = (
            f'{{"sync":{json.dumps(sync)},"change":"{change}","id":{json.dumps(record.record_id)},'
            f'"updated_at":{json.dumps(record.updated_at, default=str)},"record":{record.data}}}'
        )
        return NewEvent(
            id=new_id("evt"),
            integration=integration,
            tenant=tenant,
            dedup_key=f"sync/{sync}/{record.record_id}/{change}/{record.content_hash[:32]}",
            provider_id=record.record_id,
            type=f"{TYPE_PREFIX}{sync}.{change}",
            received_at=clock(),
            headers=headers,
            body=body.encode(),
        )

    return make


def is_sync_event(event: StoredEvent) -> bool:
    return bool(
        event.type and event.type.startswith(TYPE_PREFIX) and event.headers.get(SYNC_HEADER)
    )


def normalise(integration: Integration, event: StoredEvent) -> list[dict[str, Any]]:
    """The normalised event a sync event stands for (none when its sync no longer emits it)."""
    sync = event.headers.get(SYNC_HEADER, "")
    change = (event.type or "").rpartition(".")[2]
    declared = integration.syncs.get(sync)
    name = declared.emit.get(change) if declared is not None else None
    if not name:
        return []
    return [
        {
            "name": name,
            "data": json.loads(event.body),
            "integration": integration.name,
            "tenant": event.tenant,
            "id": event.id,
            "type": event.type,
            "received_at": event.received_at,
        }
    ]
