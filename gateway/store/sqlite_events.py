"""Storing events in SQLite: the one INSERT of the events table, for webhooks and syncs alike.

Both run on the writer thread, inside the caller's transaction. Repeats of a stored
(integration, tenant, dedup_key) are skipped (ON CONFLICT DO NOTHING); only when some were
skipped does one more query resolve the ids they repeat.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.store.entities import Inserted, NewEvent

_INSERT_EVENTS = (
    "INSERT INTO events (id, integration, tenant, dedup_key, provider_id, type,"
    " received_at, headers, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (integration, tenant, dedup_key) DO NOTHING"
)


def insert_event_rows(db: sqlite3.Connection, events: Sequence[NewEvent]) -> int:
    """Insert what is new (repeats of a stored dedup key are skipped): how many were."""
    before = db.total_changes
    db.executemany(_INSERT_EVENTS, events)  # NewEvent is a tuple in this column order
    return db.total_changes - before


def insert_events(db: sqlite3.Connection, events: Sequence[NewEvent]) -> list[Inserted]:
    """Insert a batch and say, for each event, which stored event it is."""
    if insert_event_rows(db, events) == len(events):  # all new: the common case
        return [Inserted(e.id, duplicate=False) for e in events]
    groups: dict[tuple[str, str], set[str]] = {}
    for e in events:
        groups.setdefault((e.integration, e.tenant), set()).add(e.dedup_key)
    stored: dict[tuple[str, str, str], str] = {}
    for (integration, tenant), keys in groups.items():  # one group in practice
        marks = ",".join("?" * len(keys))
        for row in db.execute(
            "SELECT dedup_key, id FROM events"  # noqa: S608
            f" WHERE integration = ? AND tenant = ? AND dedup_key IN ({marks})",
            [integration, tenant, *keys],
        ):
            stored[(integration, tenant, row[0])] = row[1]
    results = []
    for e in events:
        first = stored[(e.integration, e.tenant, e.dedup_key)]
        results.append(Inserted(first, duplicate=first != e.id))
    return results
