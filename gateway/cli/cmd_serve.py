"""`gateway serve`: run the gateway's HTTP server (webhooks, admin API, workers, syncs)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import resource

from gateway.cli.arguments import (
    DEFAULT_PORT,
    Subparsers,
    add_config_args,
    duration,
    port_default,
    port_number,
    positive,
)
from gateway.config.model import load_config
from gateway.config.settings import Settings
from gateway.logs import LOG_FORMATS
from gateway.store import open_store
from gateway.store.interfaces import Store

GC_YOUNG_THRESHOLD = 50_000
MAX_CONNECTIONS = 1000


def max_connections_default() -> int:
    """1000, or three quarters of the open-files limit when that is lower: the last quarter
    stays for the database, logs and outbound calls, so accepting never runs out of files."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, soft * 3 // 4))


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

    from gateway.logs import (
        configure_logging,
        init_sentry,
        install_access_log_redaction,
        uvicorn_log_config,
    )
    from gateway.web.application import create_app
    from gateway.web.draining import DrainingServer
    from gateway.web.http_server import listening_socket
    from gateway.web.read_timeout import read_timeout_protocol

    configure_logging(args.log_level, args.log_format)
    config = load_config(args.integrations, os.environ)  # it starts nothing: errors come first
    install_access_log_redaction(config.secret_query_parameters)  # kept by uvicorn's set-up
    # A busy port is one line here, before the store, the workers or the scheduler start.
    sock = listening_socket(args.host, args.port, args.backlog)
    try:
        settings = Settings.from_env(os.environ)
        if settings.sentry_dsn:
            init_sentry(settings.sentry_dsn)
        store = open_store(args.db)
        asyncio.run(_check_store(store))  # an unusable database is one line here, not a trace
        app = create_app(
            config,
            store,
            settings,
            os.environ,
            role=args.role,
            job_lease=args.job_lease,
            retention=args.retention,
            health_checks=args.health_checks,
            leader_lease=args.leader_lease,
        )
        tune_gc()
        server_config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=args.access_log,
            proxy_headers=False,
            server_header=False,
            http=read_timeout_protocol(args.read_timeout),
            timeout_keep_alive=math.ceil(args.keep_alive),
            limit_concurrency=args.max_connections,
            backlog=args.backlog,
            log_config=uvicorn_log_config(args.log_format) or uvicorn.config.LOGGING_CONFIG,
        )
        DrainingServer(server_config, app.state.readiness, drain=args.drain).run(sockets=[sock])
    finally:
        sock.close()
    return 0


async def _check_store(store: Store) -> None:
    try:
        await store.open()
    finally:  # a store that failed half-way must not keep the process alive
        await store.close()


def register(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="run the gateway (HTTP server)")
    p.add_argument(
        "--host",
        default=os.environ.get("GATEWAY_HOST", "127.0.0.1"),
        help="the address to listen on (default: $GATEWAY_HOST, then 127.0.0.1)",
    )
    p.add_argument(
        "--port",
        type=port_number,
        default=port_default(),
        help=f"the port to listen on (default: $GATEWAY_PORT, then $PORT, then {DEFAULT_PORT})",
    )
    p.add_argument(
        "--read-timeout",
        type=duration,
        default=os.environ.get("GATEWAY_READ_TIMEOUT", "10s"),
        metavar="DURATION",
        help="close a connection whose request (headers and body) has not arrived whole after"
        " this long (default: $GATEWAY_READ_TIMEOUT, then 10s)",
    )
    p.add_argument(
        "--keep-alive",
        type=duration,
        default=os.environ.get("GATEWAY_KEEP_ALIVE", "5s"),
        metavar="DURATION",
        help="close an idle kept-alive connection after this long, in whole seconds"
        " (default: $GATEWAY_KEEP_ALIVE, then 5s)",
    )
    p.add_argument(
        "--max-connections",
        type=positive,
        default=os.environ.get("GATEWAY_MAX_CONNECTIONS") or str(max_connections_default()),
        metavar="N",
        help="at this many open connections, a new one closes the one waiting longest for its"
        " request, and when none is waiting requests are answered 503"
        f" (default: $GATEWAY_MAX_CONNECTIONS, then {MAX_CONNECTIONS} or three quarters of"
        " the open-files limit, ulimit -n, if that is lower)",
    )
    p.add_argument(
        "--backlog",
        type=positive,
        default=os.environ.get("GATEWAY_BACKLOG", "2048"),
        metavar="N",
        help="connections the kernel queues before they are accepted"
        " (default: $GATEWAY_BACKLOG, then 2048)",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text (default), or json: one object per line with event_id, job_id,"
        " integration and tenant where known",
    )
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument(
        "--health-checks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="probe each integration's api.health in the background (default: on)",
    )
    p.add_argument(
        "--drain",
        type=duration,
        default=0.0,
        metavar="DURATION",
        help="on SIGTERM, answer /readyz 503 this long before stopping, so a load balancer"
        " stops sending first (default 0s; 5s behind one)",
    )
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
