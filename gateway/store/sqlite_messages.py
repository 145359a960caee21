"""SQLite's messages table: sent messages and their status timelines (MessageStore)."""

from __future__ import annotations

import sqlite3

from gateway.store.entities import Message, MessageQuery, MessageUpdate
from gateway.store.message_rows import (
    MESSAGE_COLUMNS,
    MESSAGES_TABLE,
    lookup,
    message_from_row,
    message_values,
    message_where,
    updated,
)
from gateway.store.rows import sqlite_mark
from gateway.store.sqlite_base import SQLiteBase

MESSAGES_SCHEMA = MESSAGES_TABLE.format(collate="", real="REAL")
_PLACES = ", ".join("?" for _ in MESSAGE_COLUMNS.split(","))


class MessageTables(SQLiteBase):
    """The messages table; mixed into SQLiteStore."""

    async def record_message(self, message: Message) -> bool:
        return await self.write(_record_message, message)

    async def update_message(self, update: MessageUpdate) -> Message | None:
        return await self.write(_update_message, update)

    async def get_message(self, message_id: str) -> Message | None:
        rows = await self.reader.execute_fetchall(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?",  # noqa: S608
            [message_id],
        )
        return message_from_row(next(iter(rows))) if rows else None

    async def set_opt_out(
        self, tenant: str, kind: str, address: str, reason: str, at: float
    ) -> bool:
        return await self.write(_set_opt_out, (tenant, kind, address, reason, at))

    async def clear_opt_out(self, tenant: str, kind: str, address: str) -> bool:
        return await self.write(_clear_opt_out, (tenant, kind, address))

    async def opt_out_reason(self, tenant: str, kind: str, address: str) -> str | None:
        rows = await self.reader.execute_fetchall(
            "SELECT reason FROM opt_outs WHERE tenant = ? AND kind = ? AND address = ?",
            [tenant, kind, address],
        )
        return str(next(iter(rows))[0]) if rows else None

    async def list_messages(self, query: MessageQuery) -> list[Message]:
        where, args = message_where(query, sqlite_mark)
        rows = await self.reader.execute_fetchall(
            f"SELECT {MESSAGE_COLUMNS} FROM messages {where} ORDER BY id DESC LIMIT ?",  # noqa: S608
            [*args, query.limit],
        )
        return [message_from_row(r) for r in rows]


def _record_message(db: sqlite3.Connection, message: Message) -> bool:
    cursor = db.execute(
        f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({_PLACES})"  # noqa: S608
        " ON CONFLICT (id) DO NOTHING",
        message_values(message),
    )
    return cursor.rowcount > 0


def _update_message(db: sqlite3.Connection, update: MessageUpdate) -> Message | None:
    found = lookup(update, sqlite_mark)
    if found is None:
        return None
    where, args = found
    row = db.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where} ORDER BY id DESC LIMIT 1",  # noqa: S608
        args,
    ).fetchone()
    if row is None:
        return None
    message = updated(message_from_row(row), update)
    values = message_values(message)
    db.execute(
        "UPDATE messages SET status = ?, provider_id = ?, timeline = ?, updated_at = ?"
        " WHERE id = ?",
        (message.status, message.provider_id, values[11], values[12], message.id),
    )
    return message


def _set_opt_out(db: sqlite3.Connection, row: tuple[str, str, str, str, float]) -> bool:
    cursor = db.execute(
        "INSERT INTO opt_outs (tenant, kind, address, reason, created_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (tenant, kind, address) DO NOTHING",
        row,
    )
    return cursor.rowcount > 0


def _clear_opt_out(db: sqlite3.Connection, key: tuple[str, str, str]) -> bool:
    cursor = db.execute("DELETE FROM opt_outs WHERE tenant = ? AND kind = ? AND address = ?", key)
    return cursor.rowcount > 0
