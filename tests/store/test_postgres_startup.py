"""Many replicas starting at once on one fresh PostgreSQL schema all come up: one of them
creates the tables under an advisory lock while the others wait, and none deadlocks."""

from __future__ import annotations

import asyncio

from tests.helpers.postgres import fresh_schema


def test_three_stores_opening_one_fresh_schema_at_once_all_succeed() -> None:
    from gateway.store.postgres import PostgresStore

    async def scenario(url: str) -> None:
        stores = [PostgresStore(url) for _ in range(3)]
        await asyncio.gather(*(store.open() for store in stores))
        try:
            for store in stores:
                assert await store.count_events() == 0
            async with stores[0].transaction() as db:
                assert await db.fetchval("SELECT count(*) FROM schema_version") == 1
        finally:
            await asyncio.gather(*(store.close() for store in stores))

    for _ in range(3):
        with fresh_schema() as url:
            asyncio.run(scenario(url))
