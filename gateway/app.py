"""The Starlette application: routes, lifespan, error handlers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway import admin
from gateway.config import Config
from gateway.credentials import Cipher, CredentialError, SecretSource
from gateway.errors import http_exception, server_error
from gateway.ingress import Ingress
from gateway.settings import Settings
from gateway.store.base import Store
from gateway.store.writer import EventWriter

log = logging.getLogger("gateway")
WEBHOOK_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def create_app(
    config: Config, store: Store, settings: Settings, environ: Mapping[str, str]
) -> Starlette:
    writer = EventWriter(store)
    cipher: Cipher | None = None
    if settings.secret_keys:
        try:
            cipher = Cipher(settings.secret_keys)
        except CredentialError as exc:
            log.error("%s; stored tenant credentials are not used", exc)
    secrets = SecretSource(environ, store, cipher)
    known_tenants: set[str] = set()
    ingress = Ingress(
        config, writer, secrets, public_url=settings.public_url, known_tenants=known_tenants
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await store.open()
        known_tenants.update(await store.tenants_with_credentials())
        writer.start()
        try:
            yield
        finally:
            await writer.stop()
            await store.close()

    async def healthz(_request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "integrations": len(config.integrations), "flows": len(config.flows)}
        )

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/webhooks/{integration}", ingress.handle, methods=WEBHOOK_METHODS),
        Route("/webhooks/{integration}/{tenant}", ingress.handle, methods=WEBHOOK_METHODS),
        *admin.routes(store, settings.admin_token),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception, Exception: server_error},
    )
    app.state.writer = writer
    app.state.config = config
    return app
