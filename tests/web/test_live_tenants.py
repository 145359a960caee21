"""Tenants with stored credentials, added or removed elsewhere (another replica, the CLI),
reach a running server's ingress within the credentials' TTL."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config.settings import Settings
from gateway.errors import UsageError
from gateway.web.application import refresh_tenants


class _Tenants:
    def __init__(self, tenants: set[str]) -> None:
        self.tenants = tenants

    async def tenants_with_credentials(self) -> set[str]:
        return set(self.tenants)


def test_the_known_tenants_follow_the_database_in_place() -> None:
    async def scenario() -> None:
        store = _Tenants({"old", "kept"})
        known = {"old", "kept"}
        held = known  # the ingress holds this very set
        stop = asyncio.Event()
        task = asyncio.create_task(refresh_tenants(store, known, stop, 0.02))  # type: ignore[arg-type]
        store.tenants = {"kept", "new"}
        for _ in range(100):
            if held == {"kept", "new"}:
                break
            await asyncio.sleep(0.01)
        assert held == {"kept", "new"}
        stop.set()
        await asyncio.wait_for(task, 1)

    asyncio.run(scenario())


def test_the_ttl_is_a_setting() -> None:
    assert Settings.from_env({}).credentials_ttl == 10.0
    assert Settings.from_env({"GATEWAY_CREDENTIALS_TTL": "2s"}).credentials_ttl == 2.0
    with pytest.raises(UsageError, match="GATEWAY_CREDENTIALS_TTL: 'soon'"):
        Settings.from_env({"GATEWAY_CREDENTIALS_TTL": "soon"})
