"""Sync results as events: a sync that declares ``emit`` stores one event per created, updated
or deleted record in the events table, in the same transaction as the record, so the
dispatcher feeds them to flows exactly like webhooks (and replays them the same way).

Such an event has the type ``sync.<sync>.<change>``, the header ``x-gateway-sync: <sync>``
and the body ``{"sync", "change", "id", "updated_at", "record"}``; the pipeline
(`gateway.config.pipeline`) turns it into the normalised event the sync's ``emit`` names,
with that body as its data. Its dedup key is made of the record id, the change and the
record's content hash: the same version of a record never makes the same event twice.

A sync that declares ``as_webhook`` stores, for each record it writes, the webhook event the
record stands for (`deliveries`): an event of the integration's own kind, mapped by its
``webhook.map``, deduplicated against webhook deliveries by the provider's event id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.config.model import Integration
from gateway.config.pipeline import SYNC_DELIVERY_HEADER, SYNC_HEADER, SYNC_TYPE_PREFIX, dedup_key
from gateway.config.syncs import SyncSpec
from gateway.ids import new_id
from gateway.store.entities import NewEvent
from gateway.sync.records import Incoming


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
            type=f"{SYNC_TYPE_PREFIX}{sync}.{change}",
            received_at=clock(),
            headers=headers,
            body=body.encode(),
        )

    return make


def deliveries(
    integration: Integration,
    spec: SyncSpec,
    tenant: str,
    tenant_vars: Mapping[str, Any],
    records: Sequence[Any],
    incoming: Sequence[Incoming],
    now: float,
) -> list[NewEvent | str | None]:
    """For each record of a page (`records`, read as `incoming`): the webhook event it stands
    for (``as_webhook``), None when it delivers nothing (its `when` is false, it is older than
    `max_age`, or webhook.map does not map its type), or why it cannot be delivered. Worked
    out before the page is committed; the plan then takes the events of the records it writes
    (and fails on a reason).

    The event is stored as its webhook would be: the body as JSON, the webhook's event id and
    type (`Pipeline.identify`, as ingress calls it), deduplicated by that id (`dedup_key`): a
    webhook of the same provider event, before or after, is the same event."""
    as_webhook = spec.as_webhook
    webhook = integration.webhook
    assert as_webhook is not None and webhook is not None  # lint: as_webhook needs a webhook
    moment = datetime.fromtimestamp(now, UTC)
    found: list[NewEvent | str | None] = []
    for index, (record, read) in enumerate(zip(records, incoming, strict=True)):
        where = f"record {index} ({read.record_id})"
        if as_webhook.max_age is not None and (
            read.updated_ts is None or read.updated_ts < now - as_webhook.max_age
        ):
            found.append(None)
            continue
        delivery = as_webhook.deliver(
            webhook.pipeline,
            record,
            integration=integration.name,
            tenant=tenant,
            tenant_vars=tenant_vars,
            now=moment,
        )
        if delivery is None:
            found.append(None)
        elif delivery.failures:
            failure = delivery.failures[0]
            source = f" ({failure.source.strip()})" if failure.source else ""
            found.append(f"{where}: {failure.where()}{source}: {failure.reason}")
        elif delivery.provider_id is None:
            found.append(
                f"{where}: as_webhook: webhook.event.id gives no id for its body, so it "
                "cannot be told apart from the webhook of the same event"
            )
        elif delivery.type not in webhook.pipeline.rules:
            found.append(None)  # its webhook would be ignored: a log of every kind stays out
        else:
            raw = delivery.body
            headers = {**delivery.headers, SYNC_DELIVERY_HEADER: spec.name}
            found.append(
                NewEvent(
                    id=new_id("evt"),
                    integration=integration.name,
                    tenant=tenant,
                    dedup_key=dedup_key(delivery.provider_id, raw),
                    provider_id=delivery.provider_id,
                    type=delivery.type,
                    received_at=now,
                    headers=json.dumps(headers),
                    body=raw,
                )
            )
    return found
