"""Outcome classification, Retry-After and backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import httpx
import pytest

from gateway.config.model import load_config
from gateway.outbound import RetryableError, RetryPolicy, backoff, parse_retry_after, retry_delay
from gateway.outbound.breaker import Outcome
from gateway.outbound.classify import MAX_ERROR_BODY, classify_exception, classify_response
from tests.helpers import REPO

NOW = datetime(2025, 10, 21, 7, 28, 0, tzinfo=UTC)
DEFAULT = RetryPolicy()


def response(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, content=body, headers=headers)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 2 ", 2.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Tue, 21 Oct 2025 07:28:30 GMT", 30.0),
        ("Tue, 21 Oct 2025 07:27:00 GMT", 0.0),  # in the past
        ("Tuesday, 21-Oct-25 07:29:00 GMT", 60.0),  # obsolete RFC 850, still to be read
        ("Tue Oct 21 07:28:10 2025", 10.0),  # asctime
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_retry_after_date_against_the_real_clock() -> None:
    later = datetime.now(UTC).timestamp() + 3600
    header = datetime.fromtimestamp(later, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    found = parse_retry_after(header)
    assert found is not None and 3590 < found <= 3600


def test_2xx_is_success() -> None:
    for status in (200, 201, 202, 204):
        found = classify_response(response(status), DEFAULT)
        assert (found.verdict, found.breaker) == ("success", Outcome.SUCCESS)


def test_429_is_retryable_with_retry_after_and_no_breaker_verdict() -> None:
    found = classify_response(response(429, b"slow down", {"Retry-After": "2"}), DEFAULT, NOW)
    assert found.verdict == "retryable"
    assert found.retry_after == 2.0
    assert found.breaker is Outcome.NEUTRAL
    assert found.body == "slow down"
    found = classify_response(response(429), DEFAULT)
    assert found.verdict == "retryable" and found.retry_after is None  # back off instead


def test_5xx_is_retryable_and_a_breaker_failure() -> None:
    for status in (500, 502, 503, 504):
        found = classify_response(response(status, headers={"Retry-After": "7"}), DEFAULT)
        assert (found.verdict, found.breaker, found.retry_after) == (
            "retryable",
            Outcome.FAILURE,
            7.0,
        )


def test_other_4xx_is_permanent_with_the_truncated_body() -> None:
    big = b'{"error": {"message": "' + b"x" * 10000 + b'"}}'
    found = classify_response(response(400, big), DEFAULT)
    assert found.verdict == "permanent"
    assert found.breaker is Outcome.SUCCESS  # the provider is up; the request was wrong
    assert found.status == 400
    assert found.body is not None and found.body.startswith('{"error"')
    assert len(found.body) <= MAX_ERROR_BODY + 20 and found.body.endswith("[truncated]")
    for status in (401, 403, 404, 409, 422):
        assert classify_response(response(status), DEFAULT).verdict == "permanent"


def test_retry_on_from_the_yaml_decides() -> None:
    twilio = RetryPolicy.from_spec({"retry_on": [429, 503, "network"]})
    assert classify_response(response(503), twilio).verdict == "retryable"
    found = classify_response(response(500), twilio)
    assert (found.verdict, found.breaker) == ("permanent", Outcome.FAILURE)  # still a failure
    stripe = RetryPolicy.from_spec({"retry_on": [409, 429, "5xx", "network"]})
    found = classify_response(response(409), stripe)
    assert (found.verdict, found.breaker) == ("retryable", Outcome.NEUTRAL)
    everything_4xx = RetryPolicy.from_spec({"retry_on": ["4xx"]})
    assert classify_response(response(404), everything_4xx).verdict == "retryable"
    assert classify_response(response(500), everything_4xx).verdict == "permanent"


def test_network_errors_and_timeouts() -> None:
    request = httpx.Request("GET", "https://api.example.test/x")
    connect = classify_exception(httpx.ConnectError("refused", request=request), DEFAULT)
    assert (connect.verdict, connect.kind, connect.breaker) == (
        "retryable",
        "network",
        Outcome.FAILURE,
    )
    read = classify_exception(httpx.ReadTimeout("slow", request=request), DEFAULT)
    assert (read.verdict, read.kind, read.breaker) == ("retryable", "timeout", Outcome.FAILURE)
    # a connect timeout never sent anything: a network error
    assert classify_exception(httpx.ConnectTimeout("x", request=request), DEFAULT).kind == "network"
    no_timeouts = RetryPolicy.from_spec({"retry_on": [429, "network"]})
    found = classify_exception(httpx.ReadTimeout("slow", request=request), no_timeouts)
    assert (found.verdict, found.breaker) == ("permanent", Outcome.FAILURE)
    cut = classify_exception(httpx.RemoteProtocolError("closed", request=request), no_timeouts)
    assert cut.verdict == "retryable"
    bad = classify_exception(httpx.UnsupportedProtocol("ftp", request=request), DEFAULT)
    assert (bad.verdict, bad.breaker) == ("permanent", Outcome.NEUTRAL)


def test_policy_from_spec() -> None:
    policy = RetryPolicy.from_spec(
        {"max_attempts": 7, "backoff": "linear", "base": "500ms", "max": "1m", "jitter": False}
    )
    assert policy == RetryPolicy(
        7, "linear", 0.5, 60.0, False, frozenset({429, "5xx", "network", "timeout"})
    )
    assert RetryPolicy.from_spec(None) == DEFAULT


def test_backoff_shapes_without_jitter() -> None:
    exponential = RetryPolicy(base=1.0, max=60.0, jitter=False)
    assert [backoff(n, exponential) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(1000, exponential) == 60
    linear = RetryPolicy(backoff="linear", base=2.0, max=7.0, jitter=False)
    assert [backoff(n, linear) for n in range(1, 6)] == [2, 4, 6, 7, 7]
    constant = RetryPolicy(backoff="constant", base=3.0, jitter=False)
    assert [backoff(n, constant) for n in (1, 5, 50)] == [3, 3, 3]


def test_backoff_full_jitter_stays_within_the_bound() -> None:
    policy = RetryPolicy(base=1.0, max=60.0)
    rng = random.Random(42)
    delays = [backoff(4, policy, rng) for _ in range(2000)]
    assert all(0 <= d <= 8 for d in delays)
    assert min(delays) < 0.5 and max(delays) > 7.5  # spread over the whole range
    assert backoff(4, policy, random.Random(1)) == backoff(4, policy, random.Random(1))
    assert 0 <= backoff(3, policy) <= 4  # the default source of randomness


def test_retry_delay_prefers_what_the_provider_asked() -> None:
    policy = RetryPolicy(jitter=False)
    assert retry_delay(RetryableError("429", 2.0, 429), 3, policy) == 2.0
    assert retry_delay(RetryableError("500", None, 500), 3, policy) == 4.0


def _shipped_policy(name: str) -> RetryPolicy:
    config = load_config(REPO / "integrations.d", {})
    return config.integrations[name].retry


@pytest.mark.parametrize(
    ("status", "headers", "verdict"),
    [
        (400, {"Stripe-Should-Retry": "true"}, "retryable"),  # Stripe says so: retried
        (500, {"Stripe-Should-Retry": "false"}, "permanent"),  # ... or not, whatever retry_on
        (409, {}, "retryable"),  # no header: retry_on decides
        (400, {}, "permanent"),
    ],
)
def test_stripe_should_retry_overrides_retry_on(
    status: int, headers: dict[str, str], verdict: str
) -> None:
    found = classify_response(response(status, b"{}", headers), _shipped_policy("stripe"))
    assert found.verdict == verdict


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (400, b'{"error": {"code": 130429, "message": "Rate limit hit"}}', "retryable"),
        (400, b'{"error": {"code": 131056, "message": "Pair rate limit"}}', "retryable"),
        (400, b'{"error": {"code": 131047, "message": "Re-engagement"}}', "permanent"),
        (400, b'{"error": {"message": "no code"}}', "permanent"),  # the expression fails
        (400, b"not json", "permanent"),
        (503, b"not json", "retryable"),  # retry_on still applies
        (503, b'{"error": {"code": 2, "message": "Service unavailable"}}', "retryable"),
        (429, b'{"error": {"code": 613}}', "retryable"),  # another code: retry_on decides
        (400, b"[" * 4096, "permanent"),  # nested deeper than Python parses: text
    ],
)
def test_whatsapp_throttling_codes_in_the_body_are_retried(
    status: int, body: bytes, verdict: str
) -> None:
    found = classify_response(response(status, body), _shipped_policy("whatsapp"))
    assert found.verdict == verdict
    assert found.breaker is (
        Outcome.FAILURE
        if status >= 500
        else Outcome.NEUTRAL
        if verdict == "retryable"
        else Outcome.SUCCESS
    )


def test_a_retryable_expression_that_answers_text_or_nothing() -> None:
    text = RetryPolicy.from_spec({"retryable": "{{ 'TRUE' if status == 418 else '' }}"})
    assert classify_response(response(418), text).verdict == "retryable"
    assert classify_response(response(429), text).verdict == "retryable"  # '' -> retry_on
    assert classify_response(response(400), text).verdict == "permanent"
