"""What the events and jobs tables hold, as the store takes and hands it over."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from gateway.errors import UsageError


class SchemaTooNew(UsageError):
    """The database was set up by a newer gateway than this one."""


class NewEvent(NamedTuple):
    """An event verified and ready to be stored. A tuple in the events table's column order:
    it is made on every request and bound to the INSERT as it is."""

    id: str
    integration: str
    tenant: str
    dedup_key: str
    provider_id: str | None
    type: str | None
    received_at: float
    headers: str  # JSON object of the headers kept for audit (secrets removed)
    body: bytes  # the event's bytes: the raw body, or one item of a split batch as JSON


class Inserted(NamedTuple):
    event_id: str  # the stored event's id: the new one, or the first one's for a duplicate
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: str
    integration: str
    tenant: str
    provider_id: str | None
    type: str | None
    received_at: float
    status: str
    headers: dict[str, str]
    body: bytes
    replays: int = 0
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "integration": self.integration,
            "tenant": self.tenant,
            "provider_event_id": self.provider_id,
            "type": self.type,
            "received_at": self.received_at,
            "status": self.status,
            "replays": self.replays,
            "error": self.error,
        }


# The condition of EventQuery.text: the body holds these bytes (each backend adds what its
# LIKE needs: the escape character).
BODY_CONTAINS = "body LIKE "

EVENT_STATUSES = ("pending", "dispatched", "partial", "ignored", "failed")
# The most events one bulk replay marks pending again (one transaction: it must stay short);
# call it again for the rest.
REPLAY_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class EventQuery:
    integration: str | None = None
    tenant: str | None = None
    type: str | None = None
    status: str | None = None  # one of EVENT_STATUSES
    since: float | None = None  # received at or after
    until: float | None = None  # received before
    limit: int = 50
    before: str | None = None  # page backwards: events with an id below this one
    provider_id: str | None = None  # the provider's own event id
    text: str | None = None  # a piece of the body (SQLite: ASCII letters in any case)

    def filters(self) -> list[tuple[str, Any]]:
        """The query's conditions, each a column and operator awaiting its placeholder, with
        its value (both backends add their own placeholders); `limit` is not one."""
        found: list[tuple[str, Any]] = [
            (f"{column} = ", getattr(self, column))
            for column in ("integration", "tenant", "type", "status", "provider_id")
            if getattr(self, column) is not None
        ]
        if self.text:
            escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            found.append((BODY_CONTAINS, f"%{escaped}%"))
        if self.since is not None:
            found.append(("received_at >= ", self.since))
        if self.until is not None:
            found.append(("received_at < ", self.until))
        if self.before:
            found.append(("id < ", self.before))
        return found


# ---- the durable job queue ------------------------------------------------------------------

JOB_STATUSES = ("queued", "running", "succeeded", "dead", "cancelled")


@dataclass(frozen=True, slots=True)
class NewJob:
    """An action to run, derived from an event by a flow."""

    id: str
    idempotency_key: str  # unique: the same event, flow and action never enqueue twice
    event_id: str
    flow: str
    action: str
    kind: str  # send | call
    integration: str  # the integration the action calls (limits, bulk retry)
    tenant: str
    schedule_key: str | None  # set for scheduled actions, so a cancel can find them
    spec: str  # JSON: the action as declared (rendered when it runs)
    context: str  # JSON: the normalised event it runs for
    run_at: float
    max_attempts: int
    created_at: float


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    idempotency_key: str
    event_id: str
    flow: str
    action: str
    kind: str
    integration: str
    tenant: str
    schedule_key: str | None
    spec: str
    context: str
    status: str
    attempts: int
    max_attempts: int
    run_at: float
    last_error: str | None
    result: str | None
    created_at: float
    updated_at: float

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "flow": self.flow,
            "action": self.action,
            "kind": self.kind,
            "integration": self.integration,
            "tenant": self.tenant,
            "schedule_key": self.schedule_key,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "run_at": self.run_at,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What became of one attempt at a job."""

    job_id: str
    status: str  # succeeded | queued (to retry at run_at) | dead
    run_at: float | None = None
    error: str | None = None
    result: str | None = None
    attempt: int | None = None  # the claim's attempt: a stale worker's outcome is not recorded
    # The attempt's own record, kept in the job's history with the outcome (see JobAttempt):
    # when it started (None: when recorded), how long it took, the provider's HTTP status and
    # a redacted excerpt of its answer; `skipped`: nothing was sent (a false condition, an
    # opt-out).
    started_at: float | None = None
    duration_ms: float | None = None
    http_status: int | None = None
    answer: str | None = None
    skipped: bool = False

    @property
    def attempt_outcome(self) -> str:
        """The attempt's outcome in a job's history: one of ATTEMPT_OUTCOMES."""
        if self.skipped:
            return "skipped"
        return "retry" if self.status == "queued" else self.status


# What an attempt came to: succeeded, retry (queued again), dead, skipped (nothing sent).
ATTEMPT_OUTCOMES = ("succeeded", "retry", "dead", "skipped")
# A job's history keeps at most this many attempts, the newest: as many as the largest
# `retry.max_attempts` allows, so a run of a job never needs cutting (one row per claim);
# retrying a dead job cuts its history to leave room for the new run.
ATTEMPTS_KEPT = 100
ATTEMPT_TEXT_LIMIT = 1000  # characters of an attempt's error and answer that are kept


@dataclass(frozen=True, slots=True)
class JobAttempt:
    """One attempt at a job as its history keeps it (oldest first). `attempt` counts from 1
    again after a dead job is retried; `error` is the reason it failed and `answer` an excerpt
    of the provider's answer, both redacted and at most ATTEMPT_TEXT_LIMIT characters."""

    job_id: str
    attempt: int
    started_at: float
    duration_ms: float | None
    outcome: str
    http_status: int | None
    error: str | None
    answer: str | None

    def summary(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "outcome": self.outcome,
            "http_status": self.http_status,
            "error": self.error,
            "answer": self.answer,
        }


class Backlog(NamedTuple):
    """What processing has still to do: events not yet dispatched and jobs due but not yet
    run (scheduled ones are not due), each with when the oldest of them arrived or fell due."""

    events: int
    oldest_event_at: float | None
    jobs: int
    oldest_job_at: float | None


@dataclass(frozen=True, slots=True)
class JobQuery:
    id: str | None = None
    status: str | None = None
    integration: str | None = None
    tenant: str | None = None
    event_id: str | None = None
    since: float | None = None  # created at or after
    until: float | None = None  # created before
    limit: int = 50


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What dispatching one event decided, committed in one transaction."""

    event_id: str
    status: str  # dispatched | partial | ignored | failed
    jobs: Sequence[NewJob] = ()
    cancels: Sequence[tuple[str, str]] = ()  # (tenant, schedule key)
    error: str | None = None
    # failed or partial: why, as one of DISPATCH_FAILURE_REASONS (a bounded metric label;
    # the details are in `error`)
    reason: str | None = None


# Categories of dispatch failures, the `reason` label of gateway_dispatch_failures_total.
DISPATCH_FAILURE_REASONS = ("mapping", "contract", "flow", "integration_gone", "internal")


# ---- in-call functions ----------------------------------------------------------------------

# ok: the answer rendered from the steps; fallback: a step failed (or a breaker was open);
# timeout: the deadline passed; repeat: the stored answer of an earlier call with the same key.
FUNCTION_OUTCOMES = ("ok", "fallback", "timeout", "repeat")


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One invocation of an in-call function, as answered."""

    id: str
    integration: str
    function: str
    tenant: str
    idempotency_key: str | None
    outcome: str  # one of FUNCTION_OUTCOMES
    status: int
    content_type: str
    answer: str
    request: str  # the verified body, as JSON text
    steps: str  # JSON: [{name, outcome, status, ms, error}] in the order they ran
    started_at: float
    duration_ms: float

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "integration": self.integration,
            "function": self.function,
            "tenant": self.tenant,
            "idempotency_key": self.idempotency_key,
            "outcome": self.outcome,
            "status": self.status,
            "content_type": self.content_type,
            "answer": self.answer,
            "request": self.request,
            "steps": self.steps,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
        }


@dataclass(frozen=True, slots=True)
class FunctionCallQuery:
    integration: str | None = None
    function: str | None = None
    tenant: str | None = None
    outcome: str | None = None
    limit: int = 50
    before: str | None = None  # page backwards: calls with an id below this one

    def filters(self) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = [
            (f"{column} = ", getattr(self, column))
            for column in ("integration", "function", "tenant", "outcome")
            if getattr(self, column) is not None
        ]
        if self.before:
            found.append(("id < ", self.before))
        return found


MESSAGE_STATUSES = ("sending", "sent", "delivered", "read", "failed", "bounced", "skipped")
# A status that an earlier one does not replace when it comes late (webhooks arrive in any
# order): a `sent` after `delivered` goes on the timeline, the message stays delivered.
MESSAGE_RANK = {"sending": 0, "sent": 1, "delivered": 2, "read": 3}


@dataclass(frozen=True, slots=True)
class MessageStep:
    """One entry of a message's status timeline."""

    status: str
    at: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    """A message the gateway sent (or skipped): who to, through what, and what became of it."""

    id: str  # the gateway's own id, sent along where the provider carries it back
    tenant: str
    channel: str  # integration.channel, e.g. twilio.sms
    kind: str  # sms | email | whatsapp
    provider: str  # the integration
    recipient: str
    template: str
    status: str
    created_at: float
    provider_id: str | None = None  # the provider's message id, read from its answer
    job_id: str | None = None
    timeline: tuple[MessageStep, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageUpdate:
    """A status reported for a message, found by the gateway's id or the provider's."""

    status: str
    at: float
    id: str | None = None
    provider: str | None = None
    provider_id: str | None = None
    detail: str = ""
    provider_id_set: str | None = None  # the provider's id, learnt with this status


@dataclass(frozen=True, slots=True)
class MessageQuery:
    tenant: str | None = None
    recipient: str | None = None
    status: str | None = None
    limit: int = 100
