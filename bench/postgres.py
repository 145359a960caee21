"""(c-pg) The gateway ingesting into PostgreSQL: the store several replicas share.

Measured only where a PostgreSQL answers (``GATEWAY_BENCH_POSTGRES_URL``, default the local
server); the run's tables live in a schema of their own, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from bench.targets import LABELS, Target, gateway

URL = os.environ.get("GATEWAY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


class Unavailable(Exception):
    """This measurement cannot be taken here (the reason is the message)."""


def _run(sql: str, fetch: bool = False) -> int:
    try:
        import asyncpg
    except ModuleNotFoundError as exc:
        raise Unavailable("asyncpg is not installed (pip install -e '.[postgres]')") from exc

    async def go() -> int:
        connection = await asyncpg.connect(URL, timeout=5)
        try:
            if fetch:
                return int(await connection.fetchval(sql))
            await connection.execute(sql)
            return 0
        finally:
            await connection.close()

    try:
        return asyncio.run(go())
    except (OSError, TimeoutError) as exc:
        raise Unavailable(f"no PostgreSQL at GATEWAY_BENCH_POSTGRES_URL={URL}: {exc}") from exc


def gateway_pg(workdir: Path, port: int) -> Target:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    _run(f'CREATE SCHEMA "{schema}"')
    joiner = "&" if "?" in URL else "?"
    target = gateway(workdir, port, db_url=f"{URL}{joiner}search_path={schema}")

    def rows() -> int:  # the schema's name is ours: bench_ and 12 hex digits
        return _run(f'SELECT count(*) FROM "{schema}".events', fetch=True)  # noqa: S608

    return Target(
        "gateway_pg",
        LABELS["gateway_pg"],
        target.argv,
        target.env,
        target.health_path,
        rows=rows,
        notes=[
            *target.notes,
            "PostgreSQL on this machine, not pinned: it shares the cores with wrk and the gateway",
        ],
        cleanup=lambda: _run(f'DROP SCHEMA "{schema}" CASCADE'),
    )
