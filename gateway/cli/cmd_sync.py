"""`gateway sync`: run declared syncs now, or show the sync log.

    gateway sync INTEGRATION [SYNC] [--tenant T] [--full]   # one summary line per run
    gateway sync --log [INTEGRATION [SYNC]] [--tenant T] [--limit N]

A run prints ``integration=.. sync=.. tenant=.. fetched=.. created=.. updated=.. unchanged=..
deleted=.. conflicts=.. pages=.. status=..`` (then ``full=true`` when it was a full sync and
``error="..."`` when it failed); the exit code is 0 when every run succeeded, 1 otherwise.
Without --tenant a sync runs for the tenants the scheduler would run it for (``default``
when there are none). It works beside a running server: the lease keeps the two from running
the same sync at once (the second prints status=skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
from collections.abc import Callable, Mapping

import httpx

from gateway.cli.arguments import Subparsers, add_config_args, named_integration
from gateway.config.model import DEFAULT_TENANT, Config, load_config
from gateway.config.settings import Settings
from gateway.credentials.secrets import Cipher, SecretSource
from gateway.errors import UsageError
from gateway.outbound.client import OutboundClient
from gateway.outbound.stored_tokens import token_store
from gateway.store import open_store
from gateway.store.interfaces import CredentialStore
from gateway.store.sync_model import SyncCounts, SyncRun, SyncRunQuery
from gateway.sync.runner import RunSummary, SyncRunner
from gateway.sync.scheduler import eligible_tenants
from gateway.sync.spec import integration_syncs


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def summary_line(
    integration: str,
    sync: str,
    tenant: str,
    counts: SyncCounts,
    status: str,
    *,
    full: bool = False,
    error: str | None = None,
) -> str:
    parts = [f"integration={integration}", f"sync={sync}", f"tenant={tenant}"]
    parts += [f"{name}={value}" for name, value in counts.as_dict().items()]
    parts.append(f"status={status}")
    if full:
        parts.append("full=true")
    if error:
        parts.append(f"error={json.dumps(error)}")
    return " ".join(parts)


def run_line(summary: RunSummary) -> str:
    key = summary.key
    return summary_line(
        key.integration,
        key.sync,
        key.tenant,
        summary.counts,
        summary.status,
        full=summary.full,
        error=summary.error,
    )


def log_line(run: SyncRun) -> str:
    line = summary_line(
        run.integration,
        run.sync,
        run.tenant,
        run.counts,
        run.status,
        full=run.full,
        error=run.error,
    )
    return f"{run.id}  started={_when(run.started)} finished={_when(run.finished)}  {line}"


def _selected(config: Config, integration: str, sync: str | None) -> list[str]:
    syncs = sorted(integration_syncs(named_integration(config, integration)))
    if not syncs:
        raise UsageError(f"integration '{integration}' declares no syncs")
    if sync is not None and sync not in syncs:
        raise UsageError(f"{integration} has no sync '{sync}' (its syncs: {', '.join(syncs)})")
    return [sync] if sync is not None else syncs


async def _tenants(
    config: Config, store: CredentialStore, integration: str, environ: Mapping[str, str]
) -> list[str]:
    stored: dict[str, set[str]] = {}
    for tenant, name, _secret, _updated in await store.list_credentials():
        stored.setdefault(tenant, set()).add(name)
    return eligible_tenants(config, integration, environ, stored) or [DEFAULT_TENANT]


def _cipher(settings: Settings) -> Cipher | None:
    return Cipher(settings.secret_keys) if settings.secret_keys else None


async def run_syncs(
    args: argparse.Namespace,
    config: Config,
    environ: Mapping[str, str],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    echo: Callable[[str], None] = print,
) -> int:
    """Run the selected syncs now, printing one line per run; 0 when all succeeded."""
    syncs = _selected(config, args.integration, args.sync)
    cipher = _cipher(Settings.from_env(environ))
    store = open_store(args.db)
    await store.open()
    secrets = SecretSource(environ, store, cipher)
    outbound = OutboundClient(
        config,
        secrets,
        token_store(store, cipher),
        transport=transport,
        shared=store.coordination(),
    )
    try:
        runner = SyncRunner(config, store, outbound)
        tenants = (
            [args.tenant]
            if args.tenant
            else await _tenants(config, store, args.integration, environ)
        )
        ok = True
        for sync in syncs:
            for tenant in tenants:
                summary = await runner.run(args.integration, sync, tenant, full=args.full)
                echo(run_line(summary))
                ok = ok and summary.ok
        return 0 if ok else 1
    finally:
        await outbound.aclose()
        await store.close()


async def show_log(args: argparse.Namespace, *, echo: Callable[[str], None] = print) -> int:
    if args.integration:  # a name that is not declared is a usage error, not an empty log
        _selected(load_config(args.integrations, os.environ), args.integration, args.sync)
    store = open_store(args.db, create=False)
    await store.open()
    try:
        query = SyncRunQuery(
            integration=args.integration, tenant=args.tenant, sync=args.sync, limit=args.limit
        )
        for run in await store.list_sync_runs(query):
            echo(log_line(run))
        return 0
    finally:
        await store.close()


def cmd_sync(args: argparse.Namespace) -> int:
    if args.log:
        return asyncio.run(show_log(args))
    if not args.integration:
        raise UsageError("name an INTEGRATION to sync, or give --log to show the sync log")
    config = load_config(args.integrations, os.environ)
    return asyncio.run(run_syncs(args, config, os.environ))


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "sync", help="run declared syncs now (one summary line per run), or show the sync log"
    )
    p.add_argument("integration", nargs="?", metavar="INTEGRATION")
    p.add_argument("sync", nargs="?", metavar="SYNC", help="default: every sync of INTEGRATION")
    p.add_argument("--tenant", default=None, help="default: every tenant the scheduler syncs")
    p.add_argument(
        "--full", action="store_true", help="ignore the stored cursor: fetch everything again"
    )
    p.add_argument("--log", action="store_true", help="list recent runs (the sync log)")
    p.add_argument("--limit", type=_positive, default=20, help="--log: how many runs (default 20)")
    add_config_args(p)
    p.set_defaults(func=cmd_sync)
