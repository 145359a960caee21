"""A circuit breaker per integration: stop calling a provider that keeps failing.

closed --(failure_threshold consecutive failures)--> open --(timeout)--> half-open
half-open --(success_threshold successes)--> closed;  half-open --(any failure)--> open

While open, calls fail fast with `CircuitOpenError`; half-open admits at most
half_open_max_attempts trial calls at a time. Each admitted call gets a `Ticket`; an outcome
reported for a ticket from an earlier state (a slow call that started before the breaker
opened) changes nothing.

`Breaker` is the seam the outbound client uses: `CircuitBreaker` keeps the state in this
process (SQLite, one process); `shared_breaker.SharedBreaker` in the database, so that every
replica agrees on opening, half-open trial slots and closing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from gateway.config.api import BreakerPolicy
from gateway.outbound.failures import CircuitOpenError

log = logging.getLogger("gateway.outbound")

Clock = Callable[[], float]

# What a call turned away because every half-open trial slot is taken should wait: about one
# trial call's time, which no clock can predict.
TRIALS_BUSY_RETRY_AFTER = 1.0


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Outcome(StrEnum):
    SUCCESS = "success"  # the provider answered (2xx, or a 4xx that is the caller's fault)
    FAILURE = "failure"  # 5xx, network error, timeout
    NEUTRAL = "neutral"  # no verdict on the provider's health (429, our own errors)


@dataclass(frozen=True, slots=True)
class Ticket:
    generation: int
    trial: bool
    slot: str | None = None  # a shared breaker's trial slot


class Breaker(Protocol):
    async def ensure_closed(self) -> None:
        """Raise `CircuitOpenError` if a call would be refused now."""
        ...

    async def admit(self) -> Ticket:
        """Admit one call (raise `CircuitOpenError` if refused)."""
        ...

    async def report(self, ticket: Ticket, outcome: Outcome) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


_DEFAULT = BreakerPolicy()


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = _DEFAULT.failure_threshold,
        success_threshold: int = _DEFAULT.success_threshold,
        timeout: float = _DEFAULT.timeout,
        half_open_max_attempts: int = _DEFAULT.half_open_max_attempts,
        name: str = "",
        clock: Clock = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.success_threshold = success_threshold
        self.timeout = timeout
        self.half_open_max_attempts = half_open_max_attempts
        self.name = name
        self._clock = clock
        self._state = State.CLOSED
        self._generation = 0
        self._failures = 0
        self._successes = 0
        self._trials = 0
        self._opened_at: float | None = None
        self._times_opened = 0

    @classmethod
    def from_policy(
        cls, policy: BreakerPolicy, *, name: str = "", clock: Clock = time.monotonic
    ) -> CircuitBreaker:
        """A breaker for an integration's compiled ``api.circuit_breaker``."""
        return cls(
            failure_threshold=policy.failure_threshold,
            success_threshold=policy.success_threshold,
            timeout=policy.timeout,
            half_open_max_attempts=policy.half_open_max_attempts,
            name=name,
            clock=clock,
        )

    @property
    def state(self) -> State:
        self._half_open_if_due()
        return self._state

    def _half_open_if_due(self) -> None:
        if self._state is State.OPEN and self._until_half_open() <= 0:
            self._enter(State.HALF_OPEN)

    def _until_half_open(self) -> float:
        assert self._opened_at is not None
        return self._opened_at + self.timeout - self._clock()

    def _enter(self, state: State) -> None:
        previous, self._state = self._state, state
        self._generation += 1
        self._successes = 0
        self._trials = 0
        if state is State.OPEN:
            self._opened_at = self._clock()
            self._times_opened += 1
            log.warning(
                "circuit breaker %s opened (%s -> open) after %d consecutive failures;"
                " half-open in %gs",
                self.name,
                previous.value,
                self._failures,
                self.timeout,
            )
        elif state is State.CLOSED:
            self._failures = 0
            self._opened_at = None
            log.info("circuit breaker %s closed", self.name)

    def check(self) -> None:
        """Raise `CircuitOpenError` if a call would be refused now; change nothing else."""
        state = self.state
        if state is State.OPEN:
            wait = self._until_half_open()
            raise CircuitOpenError(wait, f"circuit breaker is open: half-open in {wait:.3g}s")
        if state is State.HALF_OPEN and self._trials >= self.half_open_max_attempts:
            raise CircuitOpenError(
                TRIALS_BUSY_RETRY_AFTER,
                f"circuit breaker is half-open with all {self.half_open_max_attempts}"
                " trial calls in flight",
            )

    def allow(self) -> Ticket:
        """Admit one call (raise `CircuitOpenError` if refused); report its outcome with
        `record(ticket, outcome)`."""
        self.check()
        trial = self._state is State.HALF_OPEN
        if trial:
            self._trials += 1
        return Ticket(self._generation, trial)

    async def ensure_closed(self) -> None:
        self.check()

    async def admit(self) -> Ticket:
        return self.allow()

    async def report(self, ticket: Ticket, outcome: Outcome) -> None:
        self.record(ticket, outcome)

    def record(self, ticket: Ticket, outcome: Outcome) -> None:
        if ticket.generation != self._generation:
            return  # the call started in an earlier state: its outcome is stale
        if ticket.trial:
            self._trials -= 1
        if self._state is State.CLOSED:
            if outcome is Outcome.FAILURE:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._enter(State.OPEN)
            elif outcome is Outcome.SUCCESS:
                self._failures = 0
        elif self._state is State.HALF_OPEN:
            if outcome is Outcome.FAILURE:
                self._failures += 1
                self._enter(State.OPEN)
            elif outcome is Outcome.SUCCESS:
                self._successes += 1
                if self._successes >= self.success_threshold:
                    self._enter(State.CLOSED)

    def snapshot(self) -> dict[str, Any]:
        """State, counters and settings, for the health endpoint. `opened_at` is a reading of
        the breaker's clock (monotonic by default); `retry_after` the seconds until half-open."""
        state = self.state
        return {
            "state": state.value,
            "consecutive_failures": self._failures,
            "half_open_successes": self._successes,
            "trials_in_flight": self._trials,
            "opened_at": self._opened_at,
            "retry_after": max(0.0, self._until_half_open()) if state is State.OPEN else 0.0,
            "times_opened": self._times_opened,
            "failure_threshold": self.failure_threshold,
            "success_threshold": self.success_threshold,
            "timeout": self.timeout,
            "half_open_max_attempts": self.half_open_max_attempts,
        }
