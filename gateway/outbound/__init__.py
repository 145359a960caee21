"""The outbound HTTP engine: declared endpoints called politely (auth, rate limits, circuit
breaker, classified outcomes for the job queue's retries)."""

from gateway.config.api import RetryPolicy
from gateway.outbound.breaker import CircuitBreaker
from gateway.outbound.classify import backoff, parse_retry_after, retry_delay
from gateway.outbound.client import OutboundClient, OutboundResult
from gateway.outbound.failures import (
    CircuitOpenError,
    MissingSecretError,
    OutboundError,
    PermanentError,
    RateLimitedError,
    RequestBuildError,
    RetryableError,
)
from gateway.outbound.ratelimit import RateLimiter
from gateway.outbound.tokens import MemoryTokenStore, TokenStore

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "MemoryTokenStore",
    "MissingSecretError",
    "OutboundClient",
    "OutboundError",
    "OutboundResult",
    "PermanentError",
    "RateLimitedError",
    "RateLimiter",
    "RequestBuildError",
    "RetryPolicy",
    "RetryableError",
    "TokenStore",
    "backoff",
    "parse_retry_after",
    "retry_delay",
]
