"""A circuit breaker whose state every replica on one PostgreSQL agrees on.

The state machine is `breaker.CircuitBreaker`'s, kept in a row of the database (see
gateway/store/postgres_coordination.py): one replica's failures open it for all, the half-open
trial slots are counted across replicas (each a lease, so a dead replica's slot frees
itself), and the successes that close it may come from any replica.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from gateway.config.api import BreakerPolicy
from gateway.outbound.breaker import TRIALS_BUSY_RETRY_AFTER, Outcome, State, Ticket
from gateway.outbound.failures import CircuitOpenError
from gateway.store.interfaces import Coordination

log = logging.getLogger("gateway.outbound")


class SharedBreaker:
    def __init__(
        self, shared: Coordination, name: str, policy: BreakerPolicy, *, lease: float
    ) -> None:
        self._shared = shared
        self.name = name
        self.policy = policy
        self._lease = lease
        self._state = State.CLOSED  # as last seen by this process
        self._retry_after = 0.0
        self._times_opened = 0  # by this process's reports

    async def _ask(self, slot: str) -> tuple[str, int]:
        verdict, generation, wait = await self._shared.breaker_admit(
            self.name, self.policy.timeout, self.policy.half_open_max_attempts, slot, self._lease
        )
        if verdict == "open":
            self._state, self._retry_after = State.OPEN, wait
            raise CircuitOpenError(wait, f"circuit breaker is open: half-open in {wait:.3g}s")
        self._state = State.CLOSED if verdict == "closed" else State.HALF_OPEN
        if verdict == "busy":
            raise CircuitOpenError(
                TRIALS_BUSY_RETRY_AFTER,
                f"circuit breaker is half-open with all {self.policy.half_open_max_attempts}"
                " trial calls in flight",
            )
        return verdict, generation

    async def ensure_closed(self) -> None:
        """A read, no lock: refuse while the breaker is open (trial slots are `admit`'s)."""
        found = await self._shared.breaker_status(self.name)
        if found is None or found[0] != "open" or found[3] is None:
            return
        wait = self.policy.timeout + found[3]  # found[3]: opened_at - now, so <= 0
        if wait > 0:
            self._state, self._retry_after = State.OPEN, wait
            raise CircuitOpenError(wait, f"circuit breaker is open: half-open in {wait:.3g}s")

    async def admit(self) -> Ticket:
        slot = uuid.uuid4().hex
        verdict, generation = await self._ask(slot)
        trial = verdict == "trial"
        return Ticket(generation, trial, slot if trial else None)

    async def report(self, ticket: Ticket, outcome: Outcome) -> None:
        """Count the call's outcome; a database that fails here loses one outcome (a trial
        slot lapses with its lease), never the call's own result or error."""
        try:
            changed = await self._shared.breaker_report(
                self.name,
                ticket.generation,
                ticket.slot,
                outcome.value,
                self.policy.failure_threshold,
                self.policy.success_threshold,
            )
        except Exception:
            log.exception("could not report an outcome to circuit breaker %s", self.name)
            return
        if changed == "open":
            self._state, self._retry_after = State.OPEN, self.policy.timeout
            self._times_opened += 1
            log.warning(
                "circuit breaker %s opened (shared by every replica); half-open in %gs",
                self.name,
                self.policy.timeout,
            )
        elif changed == "closed":
            self._state = State.CLOSED
            log.info("circuit breaker %s closed", self.name)

    def snapshot(self) -> dict[str, Any]:
        """The state as this process last saw it (the database holds the truth)."""
        return {
            "state": self._state.value,
            "retry_after": self._retry_after if self._state is State.OPEN else 0.0,
            "times_opened": self._times_opened,
            "failure_threshold": self.policy.failure_threshold,
            "success_threshold": self.policy.success_threshold,
            "timeout": self.policy.timeout,
            "half_open_max_attempts": self.policy.half_open_max_attempts,
            "shared": True,
        }
