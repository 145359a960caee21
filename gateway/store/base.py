"""The storage interface the engine talks to; SQLite and (later) PostgreSQL implement it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event verified and ready to be stored."""

    id: str
    integration: str
    tenant: str
    dedup_key: str
    provider_id: str | None
    type: str | None
    received_at: float
    headers: str  # JSON object of the headers kept for audit (secrets removed)
    body: bytes  # the event's bytes: the raw body, or one item of a split batch as JSON


@dataclass(frozen=True, slots=True)
class Inserted:
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

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "integration": self.integration,
            "tenant": self.tenant,
            "provider_event_id": self.provider_id,
            "type": self.type,
            "received_at": self.received_at,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class EventQuery:
    integration: str | None = None
    tenant: str | None = None
    type: str | None = None
    limit: int = 50
    before: str | None = None  # page backwards: events with an id below this one


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
