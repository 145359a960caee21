"""A request-read timeout for uvicorn, which has none of its own.

uvicorn times a connection out only between requests (`timeout_keep_alive`, armed after a
response). A connection that never sends a byte, or sends its headers or body a little at a
time, is held open for ever: enough of them use up the process's open files and lock genuine
webhooks out. `ReadTimeoutProtocol` closes a connection whose request (headers and body) has
not arrived whole within `read_timeout` seconds, counted from the connection (for its first
request) or from a request's first byte (for the next ones on a kept-alive connection).

And a connection cap that holds: over `limit_concurrency` connections (`--max-connections`),
a new connection closes the one that has waited longest for its request instead of being
refused. uvicorn answers 503 to every request over the cap, idle connections included, and at
the open-files limit uvloop (libuv) accepts and drops new connections at once: either way an
idle flood would shut genuine webhooks out, while a webhook sends its request at once and so
is never the one waiting longest.

It extends uvicorn's httptools protocol (what uvicorn[standard] picks by default) through its
parser callbacks: `on_message_begin` and `on_message_complete`, and the asyncio protocol's
`connection_made`/`connection_lost`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("gateway")


class ReadTimeoutProtocol(HttpToolsProtocol):
    read_timeout: float = 10.0
    _read_timer: asyncio.TimerHandle | None = None
    _waiting_since: float | None = None  # monotonic: when it began waiting for a request

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()
        self._evict_if_full()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_timer is None:
            self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(self.read_timeout, self._timed_out)
        self._waiting_since = time.monotonic()

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        self._waiting_since = None

    def _timed_out(self) -> None:
        self._read_timer = None
        self._close(f"its request took over {self.read_timeout}s")

    def _evict_if_full(self) -> None:
        cap = self.limit_concurrency
        if cap is None or len(self.connections) < cap:
            return
        waiting = [
            connection
            for connection in self.connections
            if isinstance(connection, ReadTimeoutProtocol)
            and connection is not self
            and connection._waiting_since is not None
        ]
        if waiting:
            oldest = min(waiting, key=lambda connection: connection._waiting_since or 0.0)
            oldest._close(f"{len(self.connections)} connections: it waited longest for a request")
            # Uncounted now, not when the loop reports it lost: uvicorn's 503 counts them.
            self.connections.discard(oldest)

    def _close(self, why: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            log.debug("closed a connection: %s", why)
            self.transport.close()


def read_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """The protocol class uvicorn builds each connection with (`http=`), timing out at `seconds`."""
    return type("ReadTimeoutProtocol", (ReadTimeoutProtocol,), {"read_timeout": seconds})
