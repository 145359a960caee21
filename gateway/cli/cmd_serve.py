"""`gateway serve`: run the gateway's HTTP server (webhooks, admin API, workers, syncs)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os

from gateway.cli.arguments import Subparsers, add_config_args, duration
from gateway.config.model import load_config
from gateway.config.settings import Settings
from gateway.store import open_store
from gateway.store.interfaces import Store

GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Garbage collection for a server that allocates for every request it holds.

    The config, compiled templates and schemas, and every module live as long as the process:
    frozen, they are left out of every later collection (a full one walked them all). And a
    young-generation collection walks every object of every request still in flight, so
    after 700 allocations (the default) it ran every few requests; reference counting frees
    nearly all of a request's objects anyway, and cycles wait a little longer instead.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.logs import configure_logging, init_sentry
    from gateway.web.application import create_app

    configure_logging(args.log_level)
    config = load_config(args.integrations, os.environ)
    settings = Settings.from_env(os.environ)
    if settings.sentry_dsn:
        init_sentry(settings.sentry_dsn)
    store = open_store(args.db)
    asyncio.run(_check_store(store))  # an unreachable database is one line here, not a trace
    app = create_app(
        config,
        store,
        settings,
        os.environ,
        role=args.role,
        job_lease=args.job_lease,
        retention=args.retention,
        leader_lease=args.leader_lease,
    )
    tune_gc()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
        proxy_headers=False,
        server_header=False,
    )
    return 0


async def _check_store(store: Store) -> None:
    try:
        await store.open()
    finally:  # a store that failed half-way must not keep the process alive
        await store.close()


def register(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="run the gateway (HTTP server)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument(
        "--role",
        choices=("all", "ingest", "worker"),
        default="all",
        help="ingest: webhooks only; worker: dispatch and run jobs; all: both (default)",
    )
    p.add_argument(
        "--job-lease",
        type=duration,
        default=120.0,
        metavar="DURATION",
        help="a job whose worker died is run again after this long (default 2m)",
    )
    p.add_argument(
        "--retention",
        type=duration,
        default=30 * 86400.0,
        metavar="DURATION",
        help="keep finished events and jobs this long; also the dedup window (default 30d)",
    )
    p.add_argument(
        "--leader-lease",
        type=duration,
        default=15.0,
        metavar="DURATION",
        help="on PostgreSQL, a dead leader (scheduled syncs, retention) is replaced after"
        " this long (default 15s)",
    )
    add_config_args(p)
    p.set_defaults(func=cmd_serve)
