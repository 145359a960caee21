"""The circuit breaker: closed -> open -> half-open -> closed (or open again)."""

from __future__ import annotations

import logging

import pytest

from gateway.config.api import BreakerPolicy
from gateway.outbound import CircuitBreaker, CircuitOpenError
from gateway.outbound.breaker import Outcome, State, Ticket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(breaker: CircuitBreaker) -> None:
    breaker.record(breaker.allow(), Outcome.FAILURE)


def succeed(breaker: CircuitBreaker) -> None:
    breaker.record(breaker.allow(), Outcome.SUCCESS)


def make(clock: Clock) -> CircuitBreaker:
    spec = {
        "failure_threshold": 5,
        "success_threshold": 2,
        "timeout": "60s",
        "half_open_max_attempts": 3,
    }
    return CircuitBreaker.from_policy(BreakerPolicy.from_spec(spec), name="calcom", clock=clock)


def test_full_cycle(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    breaker = make(clock)
    for _ in range(4):
        fail(breaker)
    assert breaker.state is State.CLOSED
    with caplog.at_level(logging.WARNING, logger="gateway.outbound"):
        fail(breaker)  # the fifth consecutive failure
    assert breaker.state is State.OPEN
    assert "circuit breaker calcom opened" in caplog.text

    # open: fail fast, saying when to come back
    clock.now += 20
    with pytest.raises(CircuitOpenError) as caught:
        breaker.allow()
    assert caught.value.retry_after == pytest.approx(40.0)
    assert caught.value.retryable and caught.value.kind == "circuit_open"
    assert breaker.snapshot()["retry_after"] == pytest.approx(40.0)

    # half-open after the timeout: at most 3 trial calls at a time
    clock.now += 40
    trials = [breaker.allow() for _ in range(3)]
    assert breaker.state is State.HALF_OPEN
    with pytest.raises(CircuitOpenError, match="3 trial calls in flight"):
        breaker.allow()
    breaker.record(trials[0], Outcome.NEUTRAL)  # a 429: no verdict, but the slot is free
    trials[0] = breaker.allow()
    breaker.record(trials[1], Outcome.SUCCESS)
    assert breaker.state is State.HALF_OPEN
    breaker.record(trials[2], Outcome.SUCCESS)  # the second success closes it
    assert breaker.state is State.CLOSED
    snap = breaker.snapshot()
    assert snap["consecutive_failures"] == 0 and snap["opened_at"] is None
    breaker.record(trials[0], Outcome.FAILURE)  # a trial that ends after closing is stale
    assert breaker.snapshot()["consecutive_failures"] == 0
    succeed(breaker)


def test_a_failure_in_half_open_reopens_and_restarts_the_timer() -> None:
    clock = Clock()
    breaker = make(clock)
    for _ in range(5):
        fail(breaker)
    clock.now += 60
    succeed(breaker)
    assert breaker.state is State.HALF_OPEN
    clock.now += 5
    fail(breaker)
    assert breaker.state is State.OPEN
    assert breaker.snapshot()["opened_at"] == clock.now
    clock.now += 59
    with pytest.raises(CircuitOpenError):
        breaker.check()
    clock.now += 1
    breaker.check()
    assert breaker.state is State.HALF_OPEN
    assert breaker.snapshot()["half_open_successes"] == 0  # the earlier success is forgotten
    assert breaker.snapshot()["times_opened"] == 2


def test_success_resets_the_consecutive_count_and_neutral_does_not() -> None:
    breaker = make(Clock())
    for _ in range(4):
        fail(breaker)
    succeed(breaker)
    for _ in range(4):
        fail(breaker)
    breaker.record(breaker.allow(), Outcome.NEUTRAL)
    assert breaker.state is State.CLOSED
    assert breaker.snapshot()["consecutive_failures"] == 4
    fail(breaker)
    assert breaker.state is State.OPEN


def test_outcomes_of_calls_started_before_opening_are_ignored() -> None:
    clock = Clock()
    breaker = make(clock)
    slow = breaker.allow()
    for _ in range(5):
        fail(breaker)
    clock.now += 60
    breaker.check()  # half-open now
    breaker.record(slow, Outcome.FAILURE)  # started while closed: says nothing about now
    assert breaker.state is State.HALF_OPEN
    breaker.record(Ticket(-1, True), Outcome.SUCCESS)  # unknown generation: ignored
    assert breaker.snapshot()["trials_in_flight"] == 0


def test_snapshot_and_defaults() -> None:
    clock = Clock()
    breaker = CircuitBreaker.from_policy(BreakerPolicy.from_spec(None), clock=clock)
    assert breaker.snapshot() == {
        "state": "closed",
        "consecutive_failures": 0,
        "half_open_successes": 0,
        "trials_in_flight": 0,
        "opened_at": None,
        "retry_after": 0.0,
        "times_opened": 0,
        "failure_threshold": 5,
        "success_threshold": 2,
        "timeout": 60.0,
        "half_open_max_attempts": 1,
    }
