"""The errors an outbound call ends with: retryable (the job queue reschedules) or permanent.

Messages name the integration, the endpoint and what went wrong, never a secret's value: the
engine passes every message and provider body through `Redactor.redact` before raising.
"""

from __future__ import annotations

from gateway.errors import Permanent


class OutboundError(Exception):
    """Base of every error an outbound call raises. `reason` is the human message."""

    retryable = False

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, status={self.status!r})"


class RetryableError(OutboundError):
    """Try again later: after `retry_after` seconds when the provider or a limit said so,
    otherwise after the integration's backoff (see `classify.retry_delay`).

    `kind` says what failed: "status" (a retryable HTTP status), "network", "timeout",
    "rate_limited" (our own limiter) or "circuit_open" (our own breaker).
    """

    retryable = True

    def __init__(
        self,
        reason: str,
        retry_after: float | None = None,
        status: int | None = None,
        *,
        kind: str = "status",
        body: str | None = None,
    ) -> None:
        super().__init__(reason, status)
        self.retry_after = retry_after
        self.kind = kind
        self.body = body

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(reason={self.reason!r}, retry_after={self.retry_after!r},"
            f" status={self.status!r}, kind={self.kind!r})"
        )


class CircuitOpenError(RetryableError):
    """The integration's circuit breaker is open: no request was sent."""

    def __init__(self, retry_after: float, reason: str = "circuit breaker is open") -> None:
        super().__init__(reason, retry_after, None, kind="circuit_open")


class RateLimitedError(RetryableError):
    """The integration's rate limit did not allow a call within max_wait: none was sent."""

    def __init__(self, retry_after: float, reason: str = "rate limit reached") -> None:
        super().__init__(reason, retry_after, None, kind="rate_limited")


class PermanentError(OutboundError, Permanent):
    """Do not retry: dead-letter with `reason` and the provider's (truncated) error `body`."""

    def __init__(self, reason: str, status: int | None = None, body: str | None = None) -> None:
        super().__init__(reason, status)  # OutboundError's, then Permanent's
        self.body = body


class MissingSecretError(PermanentError):
    """A secret the integration needs is set neither for the tenant nor in the environment."""


class RequestBuildError(PermanentError):
    """The call cannot be made as asked: unknown endpoint, missing path parameter, a template
    that fails, a body that cannot be encoded."""
