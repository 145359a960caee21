"""Storing events in PostgreSQL: a whole batch in one INSERT through unnest arrays.

Repeats of a stored (integration, tenant, dedup_key) are skipped (ON CONFLICT DO NOTHING); only
when some were skipped does one more query resolve the ids they repeat. A repeat racing with its
first from another replica waits on the unique index, and the look-up, a statement of its own,
sees the first once it is committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.store.entities import Inserted, NewEvent

if TYPE_CHECKING:
    import asyncpg

_INSERT_EVENTS = (
    "INSERT INTO events (id, integration, tenant, dedup_key, provider_id, type, received_at,"
    " headers, body) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
    " $5::text[], $6::text[], $7::float8[], $8::text[], $9::bytea[])"
    " ON CONFLICT (integration, tenant, dedup_key) DO NOTHING RETURNING id"
)
_STORED_IDS = (
    "SELECT e.integration, e.tenant, e.dedup_key, e.id FROM events e"
    " JOIN unnest($1::text[], $2::text[], $3::text[]) AS k (integration, tenant, dedup_key)"
    " ON e.integration = k.integration AND e.tenant = k.tenant AND e.dedup_key = k.dedup_key"
)
_ATTEMPTS = 3  # a first purged between our insert and our look-up: insert again

Key = tuple[str, str, str]


def _key(event: NewEvent) -> Key:
    return (event.integration, event.tenant, event.dedup_key)


def _columns(events: Sequence[NewEvent]) -> list[list[Any]]:
    return [
        [e.id for e in events],
        [e.integration for e in events],
        [e.tenant for e in events],
        [e.dedup_key for e in events],
        [e.provider_id for e in events],
        [e.type for e in events],
        [e.received_at for e in events],
        [e.headers for e in events],
        [e.body for e in events],
    ]


async def insert_event_rows(db: asyncpg.Connection, events: Sequence[NewEvent]) -> set[str]:
    """Insert what is new (repeats of a stored dedup key are skipped): the ids inserted."""
    if not events:
        return set()
    rows = await db.fetch(_INSERT_EVENTS, *_columns(events))
    return {str(r[0]) for r in rows}


async def insert_events(db: asyncpg.Connection, events: Sequence[NewEvent]) -> list[Inserted]:
    """Insert a batch and say, for each event, which stored event it is."""
    first: dict[Key, str] = {}
    remaining = list(events)
    for _ in range(_ATTEMPTS):
        inserted = await insert_event_rows(db, remaining)
        for event in remaining:
            if event.id in inserted:
                first[_key(event)] = event.id
        unknown = [e for e in remaining if _key(e) not in first]
        if unknown:
            keys = list(dict.fromkeys(_key(e) for e in unknown))
            found = await db.fetch(
                _STORED_IDS, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]
            )
            first.update({(r[0], r[1], r[2]): str(r[3]) for r in found})
        remaining = [e for e in remaining if _key(e) not in first]
        if not remaining:
            return [Inserted(first[_key(e)], duplicate=first[_key(e)] != e.id) for e in events]
    raise RuntimeError(f"events {[e.id for e in remaining]} could be neither stored nor found")
