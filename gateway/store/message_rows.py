"""The messages table as both backends read and write it, and how a status joins a message."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from gateway.store.entities import MESSAGE_RANK, Message, MessageQuery, MessageStep, MessageUpdate
from gateway.store.rows import Mark

MESSAGE_COLUMNS = (
    "id, tenant, channel, kind, provider, recipient, template, status, created_at,"
    " provider_id, job_id, timeline, updated_at"
)
MESSAGES_TABLE = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT {collate} PRIMARY KEY,
    tenant TEXT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    provider TEXT NOT NULL,
    recipient TEXT NOT NULL,
    template TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at {real} NOT NULL,
    provider_id TEXT,
    job_id TEXT,
    timeline TEXT NOT NULL,
    updated_at {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_provider_id ON messages (provider, provider_id);
CREATE INDEX IF NOT EXISTS messages_by_recipient ON messages (tenant, recipient, id);
CREATE TABLE IF NOT EXISTS opt_outs (
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    address TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at {real} NOT NULL,
    PRIMARY KEY (tenant, kind, address)
);
"""


def timeline_text(steps: Sequence[MessageStep]) -> str:
    return json.dumps([{"status": s.status, "at": s.at, "detail": s.detail} for s in steps])


def message_values(message: Message) -> tuple[Any, ...]:
    """The row of MESSAGE_COLUMNS."""
    m = message
    return (
        m.id,
        m.tenant,
        m.channel,
        m.kind,
        m.provider,
        m.recipient,
        m.template,
        m.status,
        m.created_at,
        m.provider_id,
        m.job_id,
        timeline_text(m.timeline),
        m.timeline[-1].at if m.timeline else m.created_at,
    )


def message_from_row(row: Sequence[Any]) -> Message:
    steps = tuple(
        MessageStep(str(s["status"]), float(s["at"]), str(s.get("detail", "")))
        for s in json.loads(row[11])
    )
    return Message(
        id=row[0],
        tenant=row[1],
        channel=row[2],
        kind=row[3],
        provider=row[4],
        recipient=row[5],
        template=row[6],
        status=row[7],
        created_at=float(row[8]),
        provider_id=row[9],
        job_id=row[10],
        timeline=steps,
    )


def message_where(query: MessageQuery, mark: Mark) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for column, value in (
        ("tenant", query.tenant),
        ("recipient", query.recipient),
        ("status", query.status),
    ):
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = {mark(len(args))}")
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args


def lookup(update: MessageUpdate, mark: Mark) -> tuple[str, list[Any]] | None:
    """The WHERE clause finding the message an update names; None when it names none."""
    if update.id:
        return f"id = {mark(1)}", [update.id]
    if update.provider and update.provider_id:
        return f"provider = {mark(1)} AND provider_id = {mark(2)}", [
            update.provider,
            update.provider_id,
        ]
    return None


def updated(message: Message, update: MessageUpdate) -> Message:
    """The message with the update's status on its timeline. A status ranked below the
    current one (a late `sent` after `delivered`) is recorded and does not replace it; a
    failure replaces anything."""
    step = MessageStep(update.status, update.at, update.detail)
    current = MESSAGE_RANK.get(message.status)
    new = MESSAGE_RANK.get(update.status)
    regress = current is not None and new is not None and new < current
    return replace(
        message,
        status=message.status if regress else update.status,
        provider_id=update.provider_id_set or message.provider_id,
        timeline=(*message.timeline, step),
    )
