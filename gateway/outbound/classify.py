"""What an outbound call's outcome means: success, retry (and when), or give up; and backoff.

The integration's compiled ``retry`` policy (`gateway.config.api.RetryPolicy`) decides what
is retryable (default: 429, 5xx, network errors and timeouts). Whatever it says, 5xx answers,
network errors and timeouts count as failures for the circuit breaker, and a provider that
answered otherwise is healthy.
A connect or pool timeout means the request never left, so it counts as a network error; a
read or write timeout (the provider may have acted) is a "timeout".
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from gateway.config.api import RetryPolicy
from gateway.outbound.breaker import Outcome
from gateway.outbound.failures import RetryableError

log = logging.getLogger("gateway.outbound")
MAX_ERROR_BODY = 4096
_SYSTEM_RANDOM = random.SystemRandom()

Verdict = Literal["success", "retryable", "permanent"]


@dataclass(frozen=True, slots=True)
class Classification:
    verdict: Verdict
    kind: str  # "status", "network" or "timeout"
    breaker: Outcome
    status: int | None = None
    retry_after: float | None = None
    body: str | None = None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for: delay-seconds or an HTTP date (a date in the
    past is 0). None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_body(response: httpx.Response) -> str:
    """The provider's answer, decoded leniently and cut to MAX_ERROR_BODY characters."""
    text = response.content[: MAX_ERROR_BODY * 4].decode(
        response.encoding or "utf-8", errors="replace"
    )
    return text if len(text) <= MAX_ERROR_BODY else text[:MAX_ERROR_BODY] + "...[truncated]"


def classify_response(
    response: httpx.Response,
    policy: RetryPolicy,
    now: datetime | None = None,
    ok_status: frozenset[int] = frozenset(),
) -> Classification:
    """`ok_status`: the endpoint's statuses that count as success besides 2xx (a delete of
    something already gone: 404, 410)."""
    status = response.status_code
    if 200 <= status < 300 or status in ok_status:
        return Classification("success", "status", Outcome.SUCCESS, status)
    body = error_body(response)
    headers = {k.lower(): v for k, v in response.headers.items()}
    if policy.retries(status, headers, body):
        retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        breaker = Outcome.FAILURE if status >= 500 else Outcome.NEUTRAL
        return Classification("retryable", "status", breaker, status, retry_after, body)
    breaker = Outcome.FAILURE if status >= 500 else Outcome.SUCCESS
    return Classification("permanent", "status", breaker, status, None, body)


def classify_exception(exc: httpx.TransportError, policy: RetryPolicy) -> Classification:
    """A request that got no answer: a timeout or a network error (never sent, or cut off)."""
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.ProxyError):
        return Classification("permanent", "network", Outcome.NEUTRAL)
    kind = "network"
    if isinstance(exc, httpx.TimeoutException) and not isinstance(
        exc, httpx.ConnectTimeout | httpx.PoolTimeout
    ):
        kind = "timeout"
    verdict: Verdict = "retryable" if kind in policy.retry_on else "permanent"
    return Classification(verdict, kind, Outcome.FAILURE)


def backoff(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first): exponential
    (base * 2^(attempt-1)), linear (base * attempt) or constant (base), at most `max`; with
    jitter (the default) a uniformly random delay between 0 and that ("full jitter")."""
    n = max(1, attempt)
    if policy.backoff == "exponential":
        delay = policy.base * 2.0 ** min(n - 1, 64)
    elif policy.backoff == "linear":
        delay = policy.base * n
    else:
        delay = policy.base
    delay = min(delay, policy.max)
    if policy.jitter:
        delay = (rng or _SYSTEM_RANDOM).uniform(0.0, delay)
    return delay


def retry_delay(
    error: RetryableError, attempt: int, policy: RetryPolicy, rng: random.Random | None = None
) -> float:
    """When to try again after a retryable error: what the provider or our own limiter or
    breaker asked for (Retry-After), else the policy's backoff."""
    if error.retry_after is not None:
        return error.retry_after
    return backoff(attempt, policy, rng)
