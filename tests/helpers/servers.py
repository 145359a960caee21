"""Real `gateway serve` processes on loopback, for tests that need a server to die or restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.helpers import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GatewayProcess:
    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"gateway exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("gateway did not become healthy")


def _start(
    integrations: Path,
    db: Path | str,
    environ: Mapping[str, str],
    extra: Sequence[str],
    preexec_fn: Callable[[], None] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, **environ}
    command = [
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--integrations",
        str(integrations),
        "--db",
        db if isinstance(db, str) else f"sqlite:///{db}",
        "--log-level",
        "warning",
        "--no-health-checks",  # probes would leave loopback: a test turns them on itself
        "--drain",
        "0s",
        *extra,
    ]
    process = subprocess.Popen(
        command,
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=preexec_fn,
    )
    return process, f"http://127.0.0.1:{port}"


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout:
        process.stdout.close()


@contextmanager
def gateway_process(
    integrations: Path,
    db: Path | str,
    environ: Mapping[str, str],
    extra: Sequence[str] = (),
    *,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[GatewayProcess]:
    """`gateway serve` on a free port; `db`: an SQLite file, or a database URL; `preexec_fn`
    runs in the child before it starts (resource limits)."""
    with gateway_processes(1, integrations, db, environ, extra, preexec_fn=preexec_fn) as (server,):
        yield server


@contextmanager
def gateway_processes(
    count: int,
    integrations: Path,
    db: Path | str,
    environ: Mapping[str, str],
    extra: Sequence[str] = (),
    *,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[list[GatewayProcess]]:
    """`count` replicas of `gateway serve` on one database, started at the same instant;
    yields once every one of them answers /healthz."""
    started = [_start(integrations, db, environ, extra, preexec_fn) for _ in range(count)]
    try:
        for process, url in started:
            wait_healthy(url, process)
        yield [GatewayProcess(process, url) for process, url in started]
    finally:
        for process, _url in started:
            _end(process)
