"""`gateway serve` under a flood of idle connections: they are timed out, webhooks get through.

uvicorn alone times a connection out only between requests: sockets that connect and send
nothing (or their headers a byte at a time) were held for ever, and at the open-files limit
the server accepted no genuine webhook any more.
"""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from gateway.cli.main import main
from tests.helpers import REPO
from tests.helpers.servers import gateway_process

OPEN_FILES = 128
READ_TIMEOUT = 2.0
MARGIN = 6.0  # the server retries accepting a second after running out of files
SECRET = "whsec_idle_flood"


def _low_open_files_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


@contextmanager
def idle_connections(url: str, count: int) -> Iterator[list[socket.socket]]:
    host, port = url.removeprefix("http://").split(":")
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection((host, int(port)), timeout=5))
            sockets.append(sock)
        half = sockets[0]
        half.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        yield sockets


def test_idle_connections_up_to_the_open_files_limit_do_not_lock_webhooks_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    env = {"STRIPE_WEBHOOK_SECRET": SECRET}
    extra = ["--read-timeout", f"{READ_TIMEOUT}s"]
    with gateway_process(
        REPO / "integrations.d", tmp_path / "g.db", env, extra, preexec_fn=_low_open_files_limit
    ) as server:
        with idle_connections(server.url, OPEN_FILES + 8):
            started = time.monotonic()
            argv = ["simulate", "stripe", "checkout_session_completed", "--url", server.url]
            assert main([*argv, "--integrations", str(REPO / "integrations.d")]) == 0
            elapsed = time.monotonic() - started
        assert "-> 200" in capsys.readouterr().out
        assert elapsed < READ_TIMEOUT + MARGIN


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (what it still sends is read past)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
    return False


def test_silent_and_half_sent_requests_are_closed_after_the_read_timeout(tmp_path: Path) -> None:
    extra = ["--read-timeout", f"{READ_TIMEOUT}s", "--keep-alive", "1s"]
    with (
        gateway_process(REPO / "integrations.d", tmp_path / "g.db", {}, extra) as server,
        idle_connections(server.url, 3) as (half, silent, kept),
    ):
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept.recv(1024).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert _closed_within(silent, READ_TIMEOUT + MARGIN)
        assert _closed_within(half, READ_TIMEOUT + MARGIN)
        assert time.monotonic() - started >= READ_TIMEOUT - 1.0
        assert _closed_within(kept, 1.0 + MARGIN)  # --keep-alive, after its response
