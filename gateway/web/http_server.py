"""The HTTP server `gateway serve` runs: uvicorn, with its socket bound first and every stopping
signal logged.

`listening_socket` binds the address before anything else starts (workers, schedulers, the
store), so a port in use or out of range is one line and nothing to stop. `GatewayServer`
logs the signal it stops on, and treats SIGHUP as SIGTERM (a graceful shutdown): a server that
lost its terminal, or was sent HUP to reload, says so instead of vanishing; the configuration
is read at start only, so reloading it is a restart.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Generator
from types import FrameType

import uvicorn

from gateway.errors import UsageError

log = logging.getLogger("gateway")


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A socket listening on host:port, handed to uvicorn: a UsageError when it cannot be.

    It listens at once: a socket only bound (SO_REUSEADDR) would not keep another process
    from binding the same port before uvicorn listened."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


class GatewayServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = signal.signal(signal.SIGHUP, self.handle_exit)
            try:
                yield
            finally:  # restored before uvicorn raises the captured signals again
                signal.signal(signal.SIGHUP, previous)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        name = signal.Signals(sig).name
        if sig == signal.SIGHUP:
            log.warning(
                "received SIGHUP: shutting down as for SIGTERM"
                " (the configuration is read at start: restart to reload it)"
            )
        else:
            log.warning("received %s: shutting down", name)
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and sockets:
            host, port = sockets[0].getsockname()[:2]
            log.info("listening on http://%s:%s", host, port)
