"""The uvicorn server `gateway serve` runs (a `GatewayServer` that drains): SIGTERM (or
SIGHUP) first turns readiness off (``/readyz`` answers 503), then, `drain` seconds later,
stops the server as uvicorn does (no new connections, requests in flight answered, the
lifespan's shutdown commits what is queued)."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn

from gateway.web.http_server import GatewayServer
from gateway.web.readiness import Readiness

log = logging.getLogger("gateway")


class DrainingServer(GatewayServer):
    def __init__(self, config: uvicorn.Config, readiness: Readiness, *, drain: float) -> None:
        super().__init__(config)
        self.readiness = readiness
        self.drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        graceful = sig in (signal.SIGTERM, signal.SIGHUP)
        if not graceful or self.readiness.draining or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self.readiness.drain()
        name = signal.Signals(sig).name
        log.info("%s: not ready any more; stopping in %gs", name, self.drain)
        self._loop.call_soon_threadsafe(
            self._loop.call_later, self.drain, super().handle_exit, sig, frame
        )
