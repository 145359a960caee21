"""The Starlette application: routes, lifespan (storage, writer, dispatcher, workers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.config.model import Config
from gateway.config.settings import Settings
from gateway.counters import Counters
from gateway.credentials.secrets import Cipher, SecretSource
from gateway.errors import CredentialError, error_body
from gateway.functions.engine import FunctionEngine
from gateway.functions.route import PREFIX as FUNCTIONS_PREFIX
from gateway.functions.route import FunctionRoute
from gateway.health.prober import HealthChecks
from gateway.ingress.webhooks import PREFIX, Ingress
from gateway.outbound.client import OutboundClient
from gateway.outbound.stored_tokens import token_store
from gateway.outbound.verification_keys import VerificationKeys
from gateway.processing.dispatcher import Dispatcher
from gateway.processing.pacing import Pacer, unpaced
from gateway.processing.worker import Worker
from gateway.replies import route_path
from gateway.store.interfaces import EventStore, Store
from gateway.store.leadership import DEFAULT_LEASE, Leadership
from gateway.store.writer import EventWriter
from gateway.sync.runner import SyncRunner
from gateway.sync.scheduler import SyncScheduler
from gateway.web import admin_api as admin
from gateway.web import admin_ui, health_admin, people_admin, sync_admin
from gateway.web.error_handlers import http_exception, server_error
from gateway.web.readiness import Readiness

log = logging.getLogger("gateway")
ROLES = ("all", "ingest", "worker")


class GatewayApp(Starlette):
    """Starlette, with ``/webhooks/...`` answered by the ingress and ``/functions/...`` by the
    in-call functions before any middleware or routing runs: the hot paths pay for none of it
    (see gateway/replies.py)."""

    webhooks: ASGIApp
    functions: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope) if scope["type"] == "http" else ""
        if path.startswith(PREFIX):
            await self.webhooks(scope, receive, send)
        elif path.startswith(FUNCTIONS_PREFIX):
            await self.functions(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


async def _purge_periodically(
    store: EventStore,
    retention: float,
    stop: asyncio.Event,
    leadership: Leadership,
    every: float = 3600.0,
) -> None:
    """Purge what is past `retention` every `every` seconds: on the leader only."""
    while not stop.is_set():
        if leadership.is_leader:
            try:
                events, jobs = await store.purge(time.time() - retention)
                if events or jobs:
                    log.info("retention: purged %d events and %d jobs", events, jobs)
            except Exception:
                log.exception("retention purge failed; trying again later")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


def create_app(
    config: Config,
    store: Store,
    settings: Settings,
    environ: Mapping[str, str],
    *,
    role: str = "all",
    transport: httpx.AsyncBaseTransport | None = None,
    job_lease: float = 120.0,
    retention: float = 30 * 86400.0,
    health_checks: bool = False,
    leader_lease: float = DEFAULT_LEASE,
) -> GatewayApp:
    """The gateway. `role` ingest: webhooks only; worker: dispatch and run jobs; all: both.
    `transport` replaces the network for outbound calls (tests). A job whose worker died is
    taken again `job_lease` seconds after it was claimed. Finished events and jobs are kept
    `retention` seconds, which is also how long a repeated event is recognised.
    `health_checks`: probe each integration's ``api.health`` in the background (`gateway
    serve` turns it on; an app built in-process only reports what it was told). Replicas on
    one PostgreSQL share rate limits and breakers; one of them, the leader (a lease of
    `leader_lease` seconds), runs scheduled syncs and retention."""
    cipher: Cipher | None = None
    if settings.secret_keys:
        try:
            cipher = Cipher(settings.secret_keys)
        except CredentialError as exc:
            log.error("%s; stored tenant credentials are not used", exc)
    secrets = SecretSource(environ, store, cipher, ttl=settings.credentials_ttl)
    outbound = OutboundClient(
        config,
        secrets,
        token_store(store, cipher),
        transport=transport,
        shared=store.coordination(),  # PostgreSQL: limits and breakers across replicas
    )
    counters = Counters()  # read by /metrics
    processing = role in ("all", "worker")
    # Ingest first: beside the webhooks (role all), processing keeps to a share of the loop
    # while they arrive; a worker-only process has nothing to yield to.
    pacer = Pacer(counters.requests_answered) if role == "all" else unpaced()
    worker = Worker(config, store, outbound, lease=job_lease, counters=counters, pacer=pacer)
    dispatcher = Dispatcher(config, store, on_jobs=worker.wake.set, counters=counters, pacer=pacer)
    writer = EventWriter(
        store, on_commit=dispatcher.wake.set if processing else None, counters=counters
    )
    syncs = SyncRunner(config, store, outbound, on_events=dispatcher.wake.set)
    leadership = Leadership(store.coordination(), lease=leader_lease)
    sync_scheduler = SyncScheduler(config, store, syncs, environ, leadership=leadership)
    health = HealthChecks(config, store, outbound, environ)
    keys = VerificationKeys(outbound)  # keys fetched by key id (Plaid), for both doors
    ingress = Ingress(
        config,
        writer,
        secrets,
        public_url=settings.public_url,
        counters=counters,
        keys=keys,
    )
    engine = FunctionEngine(config, outbound, store, writer, counters=counters)
    functions = FunctionRoute(
        config,
        engine,
        secrets,
        public_url=settings.public_url,
        counters=counters,
        keys=keys,
    )

    readiness = Readiness(config, store, role)

    def scheduler_running() -> bool:
        return sync_scheduler.scheduler is not None and bool(sync_scheduler.scheduler.running)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await store.open()
        writer.start()
        if writer.task is not None:
            readiness.tasks["writer"] = writer.task
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if processing:
            named = {
                "dispatcher": dispatcher.run(stop),
                "workers": worker.run(stop),
                "retention": _purge_periodically(store, retention, stop, leadership),
            }
            if health_checks:
                named["health checks"] = health.run(stop, leading=lambda: leadership.is_leader)
            for name, work in named.items():
                task = asyncio.create_task(work, name=name)
                readiness.tasks[name] = task
                tasks.append(task)
        if processing:
            await leadership.start()
            await sync_scheduler.start()
            readiness.scheduler_running = scheduler_running
        readiness.started = True
        try:
            yield
        finally:
            readiness.drain()
            await sync_scheduler.stop()
            await leadership.stop()
            stop.set()
            await asyncio.gather(*tasks)
            await engine.drain()  # calls answered but not yet stored, events still emitting
            await writer.stop()
            await outbound.aclose()
            await store.close()

    async def livez(_request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "integrations": len(config.integrations), "flows": len(config.flows)}
        )

    async def readyz(_request: Request) -> Response:
        checks = await readiness.checks()
        failing = [name for name, result in checks.items() if result != "ok"]
        if failing:
            message = "not ready: " + "; ".join(f"{n}: {checks[n]}" for n in failing)
            body = {
                **error_body(503, message, "not_ready"),
                "status": "unavailable",
                "failing": failing,
                "checks": checks,
                "role": role,
            }
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok", "checks": checks, "role": role})

    routes = [
        Route("/livez", livez, methods=["GET"]),
        Route("/healthz", livez, methods=["GET"]),  # the older name of /livez
        Route("/readyz", readyz, methods=["GET"]),
        *admin.routes(
            store,
            settings.admin_token,
            outbound=outbound,
            wake=dispatcher.wake,
            counters=counters,
            probes=health,
            functions=store,
        ),
        *health_admin.routes(health, settings.admin_token),
        *people_admin.routes(store, settings.admin_token),
        *sync_admin.routes(store, settings.admin_token, syncs, sync_scheduler.spawn),
        *admin_ui.routes(
            admin_ui.UiContext(
                config=config,
                store=store,
                token=settings.admin_token,
                health=health,
                runner=syncs,
                spawn=sync_scheduler.spawn,
                cipher=cipher,
                wake=dispatcher.wake,
            )
        ),
    ]
    app = GatewayApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception, Exception: server_error},
    )
    app.webhooks = ingress
    app.functions = functions
    app.state.functions = engine
    app.state.writer = writer
    app.state.config = config
    app.state.dispatcher = dispatcher
    app.state.worker = worker
    app.state.outbound = outbound
    app.state.sync_scheduler = sync_scheduler
    app.state.readiness = readiness
    app.state.health = health
    app.state.leadership = leadership
    return app
