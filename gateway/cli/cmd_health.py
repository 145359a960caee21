"""`gateway health`: each integration x tenant's health as a table; exit 1 when one is down.

By default the command probes every integration's ``api.health`` itself, once, now, for
every tenant with the credentials (the same probes as a running gateway makes); with
``--url`` it asks a running gateway instead (GATEWAY_ADMIN_TOKEN), which also knows its
circuit breakers and latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from gateway.cli.arguments import Subparsers, add_config_args, shown_time
from gateway.config.model import Config, load_config
from gateway.config.settings import Settings
from gateway.credentials.secrets import Cipher, SecretSource
from gateway.errors import UsageError
from gateway.health.prober import HealthChecks
from gateway.outbound.client import OutboundClient
from gateway.outbound.stored_tokens import token_store
from gateway.store import open_store

COLUMNS = ("INTEGRATION", "TENANT", "STATUS", "LATENCY", "P95", "BREAKER", "DEAD/1H", "ERROR")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}ms"


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as aligned columns, one line per integration x tenant."""
    lines = [
        [
            row["integration"],
            row["tenant"],
            row["status"],
            _ms(row["latency_ms"]["last"]),
            _ms(row["latency_ms"]["p95"]),
            row["breaker"] or "-",
            str(row["dead_jobs_last_hour"]),
            (row["last_error"] or "; ".join(row["reasons"]) or "-")[:80],
        ]
        for row in rows
    ]
    widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(COLUMNS)]
    shown = [COLUMNS, *lines]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in shown
    )


async def probe_now(
    config: Config,
    db: str,
    environ: Mapping[str, str],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[dict[str, Any]]:
    settings = Settings.from_env(environ)
    cipher = Cipher(settings.secret_keys) if settings.secret_keys else None
    store = open_store(db)
    await store.open()
    secrets = SecretSource(environ, store, cipher)
    outbound = OutboundClient(config, secrets, token_store(store, cipher), transport=transport)
    try:
        checks = HealthChecks(config, store, outbound, environ)
        await checks.probe_all()
        return await checks.report()
    finally:
        await outbound.aclose()
        await store.close()


def fetch(url: str, environ: Mapping[str, str]) -> list[dict[str, Any]]:
    token = environ.get("GATEWAY_ADMIN_TOKEN")
    if not token:
        raise UsageError("--url needs GATEWAY_ADMIN_TOKEN, the running gateway's admin token")
    try:
        response = httpx.get(
            f"{url.rstrip('/')}/admin/api/integrations",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach {url}: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise UsageError(f"{url} answered {response.status_code} to /admin/api/integrations")
    return [row for item in response.json()["integrations"] for row in item["tenants"]]


def report(rows: Sequence[Mapping[str, Any]], as_json: bool, echo: Callable[[str], None]) -> int:
    if as_json:
        echo(json.dumps(list(rows), indent=2))
    else:
        echo(table(rows))
        checked = [row["checked_at"] for row in rows if row["checked_at"]]
        if checked:
            echo(f"checked at {shown_time(max(checked))}")
    return 1 if any(row["status"] == "down" for row in rows) else 0


def cmd_health(args: argparse.Namespace) -> int:
    if args.url:
        rows = fetch(args.url, os.environ)
    else:
        config = load_config(args.integrations, os.environ)
        rows = asyncio.run(probe_now(config, args.db, os.environ))
    if args.integration:
        rows = [row for row in rows if row["integration"] == args.integration]
        if not rows:
            raise UsageError(f"no integration '{args.integration}'")
    return report(rows, args.json, print)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "health", help="probe each integration's api.health and print the table (1: one is down)"
    )
    p.add_argument("integration", nargs="?", metavar="INTEGRATION", help="default: every one")
    p.add_argument("--url", help="ask the gateway running at this URL instead of probing here")
    p.add_argument("--json", action="store_true", help="the rows as JSON")
    add_config_args(p)
    p.set_defaults(func=cmd_health)
