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
from gateway.errors import CredentialError
from gateway.ingress.replies import route_path
from gateway.ingress.webhooks import PREFIX, Ingress
from gateway.outbound.client import OutboundClient
from gateway.outbound.stored_tokens import token_store
from gateway.processing.dispatcher import Dispatcher
from gateway.processing.worker import Worker
from gateway.store.interfaces import CredentialStore, EventStore, Store
from gateway.store.leadership import DEFAULT_LEASE, Leadership
from gateway.store.writer import EventWriter
from gateway.sync.runner import SyncRunner
from gateway.sync.scheduler import SyncScheduler
from gateway.web import admin_api as admin
from gateway.web import sync_admin
from gateway.web.error_handlers import http_exception, server_error

log = logging.getLogger("gateway")
ROLES = ("all", "ingest", "worker")


class GatewayApp(Starlette):
    """Starlette, with ``/webhooks/...`` answered by the ingress before any middleware or
    routing runs: the hot path pays for none of it (see gateway/asgi.py)."""

    webhooks: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and route_path(scope).startswith(PREFIX):
            await self.webhooks(scope, receive, send)
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


async def refresh_tenants(
    store: CredentialStore, known: set[str], stop: asyncio.Event, every: float
) -> None:
    """Keep `known` (the tenants with stored credentials, which the ingress accepts) as the
    database has it, every `every` seconds: tenants added or removed on another replica, or
    with `gateway credentials`, are taken in (or turned away) within that time."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
        if stop.is_set():
            return
        try:
            found = await store.tenants_with_credentials()
        except Exception:
            log.exception("could not read the tenants with credentials; trying again later")
            continue
        if found != known:  # in place: the ingress holds this very set
            known.intersection_update(found)
            known.update(found)


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
    leader_lease: float = DEFAULT_LEASE,
) -> GatewayApp:
    """The gateway. `role` ingest: webhooks only; worker: dispatch and run jobs; all: both.
    `transport` replaces the network for outbound calls (tests). A job whose worker died is
    taken again `job_lease` seconds after it was claimed. Finished events and jobs are kept
    `retention` seconds, which is also how long a repeated event is recognised. Replicas on
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
    worker = Worker(config, store, outbound, lease=job_lease, counters=counters)
    dispatcher = Dispatcher(config, store, on_jobs=worker.wake.set, counters=counters)
    processing = role in ("all", "worker")
    writer = EventWriter(
        store, on_commit=dispatcher.wake.set if processing else None, counters=counters
    )
    syncs = SyncRunner(config, store, outbound, on_events=dispatcher.wake.set)
    leadership = Leadership(store.coordination(), lease=leader_lease)
    sync_scheduler = SyncScheduler(config, store, syncs, environ, leadership=leadership)
    known_tenants: set[str] = set()
    ingress = Ingress(
        config,
        writer,
        secrets,
        public_url=settings.public_url,
        known_tenants=known_tenants,
        counters=counters,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await store.open()
        known_tenants.update(await store.tenants_with_credentials())
        writer.start()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(refresh_tenants(store, known_tenants, stop, secrets.ttl))]
        tasks += (
            [
                asyncio.create_task(dispatcher.run(stop)),
                asyncio.create_task(worker.run(stop)),
                asyncio.create_task(_purge_periodically(store, retention, stop, leadership)),
            ]
            if processing
            else []
        )
        if processing:
            await leadership.start()
            await sync_scheduler.start()
        try:
            yield
        finally:
            await sync_scheduler.stop()
            await leadership.stop()
            stop.set()
            await asyncio.gather(*tasks)
            await writer.stop()
            await outbound.aclose()
            await store.close()

    async def healthz(_request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "integrations": len(config.integrations), "flows": len(config.flows)}
        )

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *admin.routes(
            store,
            settings.admin_token,
            outbound=outbound,
            wake=dispatcher.wake,
            counters=counters,
        ),
        *sync_admin.routes(store, settings.admin_token, syncs, sync_scheduler.spawn),
    ]
    app = GatewayApp(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception, Exception: server_error},
    )
    app.webhooks = ingress
    app.state.writer = writer
    app.state.config = config
    app.state.dispatcher = dispatcher
    app.state.worker = worker
    app.state.outbound = outbound
    app.state.sync_scheduler = sync_scheduler
    app.state.leadership = leadership
    return app
