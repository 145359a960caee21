"""Every anticipated failure, and the one JSON shape errors are answered in.

A leaf: it imports nothing of the gateway's but `diagnostics`. Each exception says what kind of
failure it is by its base class, so the edges decide once:

- the CLI (`gateway.cli.main`) turns `UsageError` and `CredentialError` into exit code 2 and
  `ConfigError` into exit code 1 with its diagnostics printed once;
- the HTTP edges answer `error_body(...)`;
- the job worker stops retrying a `Permanent` failure (an outbound 4xx, an invalid message, a
  dispatch error) and retries the rest as declared.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.diagnostics import Diagnostic

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "unprocessable",
    500: "internal_error",
    503: "unavailable",
}


class GatewayError(Exception):
    """The root of every failure the gateway anticipates. `exit_code` is the CLI's."""

    exit_code = 1


class UsageError(GatewayError):
    """A path that cannot be read, or arguments that make no sense: exit code 2."""

    exit_code = 2


class CredentialError(GatewayError):
    """GATEWAY_SECRET_KEY missing or malformed, or a stored credential it cannot open."""

    exit_code = 2


class ConfigError(GatewayError):
    """The configuration has errors; `diagnostics` says where and what."""

    exit_code = 1

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if d.severity == "error"]
        super().__init__(f"configuration has {len(errors)} error(s)")


class Permanent(GatewayError):
    """Trying again cannot help: the worker records the job dead at once.

    `reason` is the human message; `status` and `body` are the provider's answer, when one
    came (redacted).
    """

    def __init__(self, reason: str, status: int | None = None, body: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """``{"error": {"code": ..., "message": ...}}``: the shape every error answer has."""
    return {"error": {"code": code or CODES.get(status, "error"), "message": message}}
