"""The storage interfaces, one per consumer; SQLite and PostgreSQL implement them all.

Each part of the engine is typed against the interface it uses (the dispatcher against
`EventStore`, the workers against `JobStore`, ...); `Store` is all of them, what a backend is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.store.entities import (
    Backlog,
    Dispatch,
    EventQuery,
    FunctionCall,
    FunctionCallQuery,
    Inserted,
    Job,
    JobAttempt,
    JobOutcome,
    JobQuery,
    Message,
    MessageQuery,
    MessageUpdate,
    NewEvent,
    NewJob,
    StoredEvent,
)
from gateway.store.people import Erased, Person, PersonFound
from gateway.store.sync_model import (
    PageCommit,
    PagePlan,
    StoredRecord,
    SyncKey,
    SyncRun,
    SyncRunQuery,
    SyncState,
)


class Coordination(Protocol):
    """What replicas sharing one database agree on (PostgreSQL; see postgres_coordination.py).
    Times are the database's: each call returns or takes durations in seconds."""

    async def take_permit(
        self,
        key: str,
        windows: Sequence[tuple[int, float]],
        concurrent: int | None,
        permit: str,
        lease: float,
    ) -> float:
        """Admit one call under `windows` ((limit, seconds) each) and the `concurrent` cap,
        holding its slot for at most `lease` seconds: 0 when admitted, else the seconds until
        a window admits one more, or -1 when the cap is full."""
        ...

    async def release_permit(self, key: str, permit: str, *, sent: bool) -> None:
        """The call is over: free its slot; `sent=False` gives back its window places too."""
        ...

    async def breaker_admit(
        self, key: str, timeout: float, max_trials: int, ticket: str | None, lease: float
    ) -> tuple[str, int, float]:
        """(verdict, generation, wait): verdict closed or trial (admitted; a `ticket` takes a
        trial slot for `lease` seconds), open (wait: seconds until half-open) or busy."""
        ...

    async def breaker_report(
        self,
        key: str,
        generation: int,
        ticket: str | None,
        outcome: str,
        failure_threshold: int,
        success_threshold: int,
    ) -> str | None:
        """Report a call's outcome (success, failure, neutral): the new state if it changed."""
        ...

    async def breaker_status(self, key: str) -> tuple[str, int, int, float | None, int] | None:
        """(state, failures, successes, seconds since opened (negative), times opened)."""
        ...

    async def claim_leadership(self, name: str, holder: str, lease: float) -> int | None:
        """Take or renew the role `name` for `lease` seconds: its term, or None (held)."""
        ...

    async def resign_leadership(self, name: str, holder: str) -> None: ...


class Lifecycle(Protocol):
    """Opening and closing: every backend."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def check_writable(self) -> None:
        """Raise when the database cannot be written now (the readiness probe)."""

    def coordination(self) -> Coordination | None:
        """The shared state replicas agree on, or None: a single process (SQLite)."""
        ...


class EventStore(Protocol):
    """Received events: the ingress writer, the dispatcher, replay, retention and the admin API."""

    async def insert_events(self, events: Sequence[NewEvent]) -> list[Inserted]:
        """Store events in one transaction, durably, before returning. A repeat of
        (integration, tenant, dedup_key) is not stored again: its result names the first."""
        ...

    async def list_events(self, query: EventQuery) -> list[StoredEvent]: ...

    async def get_event(self, event_id: str) -> StoredEvent | None: ...

    async def count_events(self, query: EventQuery | None = None) -> int:
        """Events stored: all, or those `query` matches (its limit does not apply)."""
        ...

    async def pending_events(self, limit: int) -> list[StoredEvent]: ...

    async def commit_dispatches(self, dispatches: Sequence[Dispatch]) -> None: ...

    async def replay_event(self, event_id: str) -> bool: ...

    async def replay_events(self, query: EventQuery) -> int:
        """Mark the events `query` matches pending again (replays + 1), the oldest first, at
        most `query.limit` and REPLAY_LIMIT, in one transaction: how many."""
        ...

    async def purge(self, cutoff: float) -> tuple[int, int]: ...


class JobStore(Protocol):
    """The durable job queue: the workers, `gateway jobs` and the admin API."""

    async def claim_jobs(self, now: float, limit: int, lease: float) -> list[Job]: ...

    async def finish_jobs(self, outcomes: Sequence[JobOutcome]) -> None:
        """Record the outcomes of a batch of jobs, and each one's attempt in the jobs'
        histories, in one transaction. An outcome naming the claim's `attempt` is applied only
        while that claim holds the job (a stale worker's outcome is dropped, its attempt too)."""
        ...

    async def add_jobs(self, jobs: Sequence[NewJob]) -> None:
        """Enqueue jobs a job made (a call's `then`); a repeat of an idempotency key is not
        enqueued again."""
        ...

    async def extend_leases(self, job_ids: Sequence[str], until: float) -> None: ...

    async def next_run_at(self) -> float | None: ...

    async def list_jobs(self, query: JobQuery) -> list[Job]: ...

    async def count_jobs(self, query: JobQuery) -> int:
        """Jobs `query` matches (its limit does not apply): what a bulk retry would take."""
        ...

    async def get_job(self, job_id: str) -> Job | None: ...

    async def job_attempts(self, job_ids: Sequence[str]) -> dict[str, list[JobAttempt]]:
        """The recorded attempts of these jobs, oldest first (a job without any is absent);
        `finish_jobs` records one per outcome it applies, in the same write."""
        ...

    async def retry_jobs(self, query: JobQuery) -> int: ...

    async def job_counts(self) -> dict[str, int]: ...

    async def backlog(self, now: float) -> Backlog:
        """Pending events and jobs due at `now` (queued, or running with a lapsed lease), with
        the oldest of each: read from the indexes the dispatcher and the claim use."""
        ...


class CredentialStore(Protocol):
    """Tenants' encrypted credentials and OAuth tokens: secrets, `gateway credentials`."""

    async def set_credential(
        self, tenant: str, integration: str, name: str, token: bytes
    ) -> None: ...

    async def delete_credential(self, tenant: str, integration: str, name: str) -> bool: ...

    async def list_credentials(
        self, tenant: str | None = None
    ) -> list[tuple[str, str, str, float]]:
        """(tenant, integration, name, updated_at) rows; never values."""
        ...

    async def credential_tokens(self, tenant: str) -> list[tuple[str, str, bytes]]:
        """(integration, name, encrypted token) rows of one tenant."""
        ...

    async def replace_credential_tokens(self, rows: Sequence[tuple[str, str, str, bytes]]) -> None:
        """Re-encrypted tokens for (tenant, integration, name) rows, in one transaction."""
        ...

    async def tenants_with_credentials(self) -> set[str]: ...

    async def all_credential_tokens(self) -> list[tuple[str, str, str, bytes]]: ...

    async def get_token(self, integration: str, tenant: str) -> bytes | None: ...

    async def put_token(self, integration: str, tenant: str, token: bytes) -> None: ...


class SyncStore(Protocol):
    """Declared syncs' state, runs (the sync log) and records: the sync engine."""

    async def acquire_sync(
        self, key: SyncKey, run_id: str, *, now: float, lease_until: float
    ) -> SyncState | None:
        """Take the sync's lease and log run `run_id` as running, atomically; None when
        another run holds the lease."""
        ...

    async def commit_sync_page(self, commit: PageCommit) -> PagePlan:
        """One page's records, events, counters and resume point in one transaction; raises
        `LeaseLost` when the run no longer holds the lease."""
        ...

    async def finish_sync_run(
        self,
        key: SyncKey,
        run_id: str,
        *,
        status: str,
        error: str | None,
        now: float,
        full: bool,
        resumed: bool,
    ) -> None: ...

    async def get_sync_state(self, key: SyncKey) -> SyncState | None: ...

    async def list_sync_runs(self, query: SyncRunQuery) -> list[SyncRun]: ...

    async def get_sync_run(self, run_id: str) -> SyncRun | None: ...

    async def last_sync_starts(self) -> dict[SyncKey, float]: ...

    async def get_sync_record(self, key: SyncKey, record_id: str) -> StoredRecord | None: ...

    async def count_sync_records(self, key: SyncKey) -> tuple[int, int]: ...


class FunctionStore(Protocol):
    """In-call functions' invocations: the function engine and the admin API."""

    async def record_function_call(self, call: FunctionCall) -> bool:
        """Store one invocation; False (nothing stored) when it is an `ok` answer and one
        with the same idempotency key was stored first."""
        ...

    async def function_answer(
        self, integration: str, function: str, tenant: str, key: str
    ) -> FunctionCall | None:
        """The `ok` answer stored under an idempotency key, if any."""
        ...

    async def list_function_calls(self, query: FunctionCallQuery) -> list[FunctionCall]: ...


class MessageStore(Protocol):
    """Sent messages and their status timelines: the workers, delivery events, the admin API."""

    async def record_message(self, message: Message) -> bool:
        """Store a new message; one already stored under its id is left as it is: whether
        it was new."""
        ...

    async def update_message(self, update: MessageUpdate) -> Message | None:
        """Add a status to the message `update` names (by id, else by provider and provider
        id) in one transaction: the message as it is now, None when there is none."""
        ...

    async def get_message(self, message_id: str) -> Message | None: ...

    async def list_messages(self, query: MessageQuery) -> list[Message]:
        """The newest first."""
        ...


class OptOutStore(Protocol):
    """Each tenant's opt-out list: who asked (or bounced) to get no more messages of a kind."""

    async def set_opt_out(
        self, tenant: str, kind: str, address: str, reason: str, at: float
    ) -> bool:
        """Put `address` on the tenant's list for `kind` (sms, whatsapp, email): whether it
        was new (the first reason is kept)."""
        ...

    async def clear_opt_out(self, tenant: str, kind: str, address: str) -> bool: ...

    async def opt_out_reason(self, tenant: str, kind: str, address: str) -> str | None:
        """Why `address` gets no messages of `kind`, or None when it may."""
        ...


class PeopleStore(Protocol):
    """What is stored about one person, found by email and phone: the people API and
    `gateway erase` (see people.py for what each table keeps and what it deletes)."""

    async def find_person(self, person: Person) -> PersonFound:
        """The person's rows in every table that may hold personal data, within
        `person.tenant` when it is set; changes nothing."""
        ...

    async def erase_person(self, person: Person) -> Erased:
        """Delete or redact what `find_person` finds, each row re-read in one transaction
        (a row no longer the person's is left as it is): how many rows of each table
        changed. Erasing again changes nothing. SQLite also rewrites the file and empties
        the WAL, so no copy of the erased data is left in its bytes."""
        ...


class JobsAndMessages(JobStore, MessageStore, OptOutStore, Protocol):
    """The job queue, the messages its sends record and the opt-outs they honour: workers."""


class EventsAndJobs(EventStore, JobStore, Protocol):
    """Events and jobs."""


class EventsJobsAndMessages(EventsAndJobs, MessageStore, Protocol):
    """Events, jobs and messages: the admin API."""


class CredentialsAndSyncs(CredentialStore, SyncStore, Protocol):
    """Who has credentials, and when each sync last ran: the sync scheduler."""


class Store(
    Lifecycle,
    EventStore,
    JobStore,
    MessageStore,
    OptOutStore,
    CredentialStore,
    SyncStore,
    FunctionStore,
    PeopleStore,
    Protocol,
):
    """A storage backend: every interface above."""
