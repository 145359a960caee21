"""Many replicas starting at once on one fresh PostgreSQL schema all come up: one of them
creates the tables under an advisory lock while the others wait, and none deadlocks. A schema
an older gateway made is brought up to date."""

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


def test_a_version_1_schema_gains_the_attempt_history() -> None:
    from gateway.store.postgres import PostgresStore
    from gateway.store.postgres_schema import SCHEMA_VERSION

    async def scenario(url: str) -> tuple[int, bool]:
        store = PostgresStore(url)
        await store.open()
        async with store.transaction() as db:  # as a version 1 gateway left it
            await db.execute("DROP TABLE job_attempts; UPDATE schema_version SET version = 1")
        await store.close()
        store = PostgresStore(url)
        await store.open()
        try:
            async with store.transaction() as db:
                version = await db.fetchval("SELECT max(version) FROM schema_version")
            return int(version), await store.job_attempts(["job_1"]) == {}
        finally:
            await store.close()

    with fresh_schema() as url:
        assert asyncio.run(scenario(url)) == (SCHEMA_VERSION, True)
