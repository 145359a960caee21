"""PostgreSQL's messages table: sent messages and their status timelines (MessageStore)."""

from __future__ import annotations

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
from gateway.store.postgres_base import PostgresBase, affected
from gateway.store.rows import postgres_mark

MESSAGES_SCHEMA = MESSAGES_TABLE.format(collate='COLLATE "C"', real="DOUBLE PRECISION")
_PLACES = ", ".join(f"${n}" for n in range(1, len(MESSAGE_COLUMNS.split(",")) + 1))


class MessageTables(PostgresBase):
    """The messages table; mixed into PostgresStore."""

    async def record_message(self, message: Message) -> bool:
        status = await self.pool.execute(
            f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({_PLACES})"  # noqa: S608
            " ON CONFLICT (id) DO NOTHING",
            *message_values(message),
        )
        return affected(status) > 0

    async def update_message(self, update: MessageUpdate) -> Message | None:
        found = lookup(update, postgres_mark)
        if found is None:
            return None
        where, args = found
        async with self.transaction() as db:
            row = await db.fetchrow(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where}"  # noqa: S608
                " ORDER BY id DESC LIMIT 1 FOR UPDATE",
                *args,
            )
            if row is None:
                return None
            message = updated(message_from_row(row), update)
            values = message_values(message)
            await db.execute(
                "UPDATE messages SET status = $1, provider_id = $2, timeline = $3,"
                " updated_at = $4 WHERE id = $5",
                message.status,
                message.provider_id,
                values[11],
                values[12],
                message.id,
            )
            return message

    async def get_message(self, message_id: str) -> Message | None:
        row = await self.pool.fetchrow(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1",  # noqa: S608
            message_id,
        )
        return message_from_row(row) if row is not None else None

    async def set_opt_out(
        self, tenant: str, kind: str, address: str, reason: str, at: float
    ) -> bool:
        status = await self.pool.execute(
            "INSERT INTO opt_outs (tenant, kind, address, reason, created_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, kind, address) DO NOTHING",
            tenant,
            kind,
            address,
            reason,
            at,
        )
        return affected(status) > 0

    async def clear_opt_out(self, tenant: str, kind: str, address: str) -> bool:
        status = await self.pool.execute(
            "DELETE FROM opt_outs WHERE tenant = $1 AND kind = $2 AND address = $3",
            tenant,
            kind,
            address,
        )
        return affected(status) > 0

    async def opt_out_reason(self, tenant: str, kind: str, address: str) -> str | None:
        found = await self.pool.fetchval(
            "SELECT reason FROM opt_outs WHERE tenant = $1 AND kind = $2 AND address = $3",
            tenant,
            kind,
            address,
        )
        return None if found is None else str(found)

    async def list_messages(self, query: MessageQuery) -> list[Message]:
        where, args = message_where(query, postgres_mark)
        rows = await self.pool.fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages {where}"  # noqa: S608
            f" ORDER BY id DESC LIMIT ${len(args) + 1}",
            *args,
            query.limit,
        )
        return [message_from_row(r) for r in rows]
