"""Running the sandbox: ``run_sandbox`` in the foreground, ``running_sandbox`` for tests.

``running_sandbox`` starts uvicorn in a background thread on 127.0.0.1 with a free port and
yields a ``SandboxHandle``::

    with running_sandbox(load_rules("sandbox/responses.yaml")) as sandbox:
        environ = sandbox.base_urls("twilio", "sendgrid")  # TWILIO_BASE_URL=<url>/twilio, ...
        ...  # run the gateway against it
        [sms] = sandbox.wait_for_requests(1, path_prefix="/twilio")
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from gateway.errors import UsageError
from gateway.sandbox.app import SandboxApp, create_sandbox_app
from gateway.sandbox.loading import load_rules
from gateway.sandbox.recording import RecordedRequest
from gateway.sandbox.rules import ResponseRule
from gateway.sandbox.state import RuleLike, Sandbox

log = logging.getLogger("gateway.sandbox")

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 9100


@dataclass
class SandboxHandle:
    """A running sandbox: its base URL, and direct (thread-safe) access to its state."""

    url: str
    sandbox: Sandbox = field(repr=False)

    def url_for(self, prefix: str) -> str:
        """``<url>/<prefix>``: the base URL a provider's integration should use."""
        return f"{self.url}/{prefix.strip('/')}"

    def base_urls(self, *names: str) -> dict[str, str]:
        """``{"TWILIO_BASE_URL": "<url>/twilio", ...}``: environment pointing providers here."""
        return {f"{name.upper()}_BASE_URL": self.url_for(name) for name in names}

    def requests(
        self, path_prefix: str | None = None, method: str | None = None
    ) -> list[RecordedRequest]:
        return self.sandbox.requests(path_prefix, method)

    def wait_for_requests(
        self,
        count: int = 1,
        *,
        path_prefix: str | None = None,
        method: str | None = None,
        timeout: float = 5.0,
    ) -> list[RecordedRequest]:
        return self.sandbox.wait_for_requests(
            count, path_prefix=path_prefix, method=method, timeout=timeout
        )

    def add_rules(self, rules: Iterable[RuleLike], *, first: bool = True) -> list[ResponseRule]:
        return self.sandbox.add_rules(rules, first=first)

    def clear_requests(self) -> int:
        return self.sandbox.clear_requests()

    def reset_rules(self) -> None:
        self.sandbox.reset_rules()

    def reset(self) -> None:
        """Forget recorded requests and added rules (the loaded rules stay)."""
        self.sandbox.reset()


class NotLoopback(UsageError, ValueError):
    """The sandbox was asked to listen on an address others can reach."""


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise NotLoopback(
            f"the sandbox binds only to loopback addresses (127.0.0.1, ::1), not {host!r}: "
            "anyone who reaches it can change its answers"
        )


def run_sandbox(
    host: str = LOOPBACK,
    port: int = DEFAULT_PORT,
    rules_file: str | os.PathLike[str] | None = None,
    *,
    default_status: int = 200,
    log_level: str = "info",
) -> None:
    """Serve the sandbox in the foreground until interrupted. Raises ``RuleError`` for a bad
    rules file and ``NotLoopback`` for a host that is not a loopback address (both are
    ``UsageError``s, and ``ValueError``s)."""
    _check_loopback(host)
    rules = load_rules(rules_file) if rules_file is not None else []
    app = create_sandbox_app(rules, default_status=default_status)
    source = f"{len(rules)} rule(s) from {rules_file}" if rules_file else "no rules"
    log.info("sandbox on http://%s:%d with %s; control API under /_sandbox", host, port, source)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        ws="none",
        proxy_headers=False,
        server_header=False,
    )


def _rules_from(rules: Iterable[RuleLike] | str | os.PathLike[str] | None) -> list[RuleLike]:
    if rules is None:
        return []
    if isinstance(rules, str | os.PathLike):
        return list(load_rules(Path(rules)))
    return list(rules)


@contextlib.contextmanager
def running_sandbox(
    rules: Iterable[RuleLike] | str | os.PathLike[str] | None = None,
    *,
    default_status: int = 200,
    startup_timeout: float = 10.0,
) -> Iterator[SandboxHandle]:
    """Run a sandbox on 127.0.0.1 (a free port) in a background thread for the ``with`` block.

    ``rules`` are ResponseRule objects or mappings, or the path of a YAML rules file.
    """
    app = create_sandbox_app(_rules_from(rules), default_status=default_status)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, 0))
    except OSError:
        sock.close()
        raise
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="none",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller's thread, never swallowed
            failure.append(exc)

    thread = threading.Thread(target=serve, name=f"sandbox-{port}", daemon=True)
    thread.start()
    url = f"http://{LOOPBACK}:{port}"
    try:
        _wait_until_up(url, server, thread, failure, startup_timeout)
        yield SandboxHandle(url, app.sandbox)
    finally:
        _stop(app, server, thread)
        sock.close()
    if failure:
        raise RuntimeError(f"the sandbox at {url} failed: {failure[0]!r}") from failure[0]


def _wait_until_up(
    url: str,
    server: uvicorn.Server,
    thread: threading.Thread,
    failure: list[BaseException],
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if failure or not thread.is_alive():
                cause = failure[0] if failure else None
                raise RuntimeError(f"the sandbox at {url} did not start: {cause!r}") from cause
            if server.started:
                try:
                    if client.get(f"{url}/_sandbox/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            time.sleep(0.01)
    raise TimeoutError(f"the sandbox at {url} did not answer within {timeout}s")


def _stop(app: SandboxApp, server: uvicorn.Server, thread: threading.Thread) -> None:
    app.sandbox.closing = True
    server.should_exit = True
    thread.join(timeout=10)
    if thread.is_alive():
        server.force_exit = True
        thread.join(timeout=5)
