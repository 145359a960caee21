"""Workers: run due jobs from the durable queue, retry with backoff, dead-letter at the end.

A job is claimed with a lease; a worker that dies mid-job leaves it `running` with an expired
lease and the next claim takes it again. Its idempotency key goes with every outbound call
(as the endpoint's `idempotency_header`), so a provider that honours it acts once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

from gateway.config.api import RetryPolicy
from gateway.config.flows import RECORD_ACTIONS
from gateway.config.model import Config
from gateway.counters import Counters
from gateway.errors import Permanent
from gateway.expr.expressions import RENDER_ERRORS, render_value
from gateway.jsontext import loads
from gateway.logs import log_context
from gateway.outbound.caller import Caller
from gateway.outbound.classify import retry_delay
from gateway.outbound.failures import RetryableError
from gateway.processing.dispatcher import evaluate
from gateway.processing.follow_ups import fallbacks, follow_ups
from gateway.processing.message_log import MessageLog, message_id
from gateway.processing.messaging import Messenger
from gateway.processing.pacing import Pacer, unpaced
from gateway.store.entities import Job, JobOutcome
from gateway.store.interfaces import JobsAndMessages

log = logging.getLogger("gateway.processing.worker")
RESULT_LIMIT = 2000
# Every call a job makes carries the job's id: a provider's request log (or the demo's
# sandbox) leads back to the job, and `gateway jobs show ID` to its event, flow and action.
JOB_HEADER = "X-Gateway-Job"
LOG_LIMIT = 300  # characters of a dead job's reason in the log
BUSY_CONCURRENCY = 8  # jobs a pass claims while webhooks arrive (role all)
JOB_CPU_GUESS = 0.001  # seconds of CPU per job until passes have measured it


class _Answer(NamedTuple):
    """What an attempt that did not fail came to: the job's result, and for its history the
    provider's HTTP status and (redacted) answer, or that nothing was sent."""

    result: str
    http_status: int | None = None
    answer: str | None = None
    skipped: bool = False


def _answer(result: Any) -> _Answer:
    status = getattr(result, "status", None)
    text = getattr(result, "text", "")
    body = str(text() if callable(text) else text)
    redact = getattr(result, "redact", None)
    if callable(redact):  # the call's secrets, should the provider echo one
        body = str(redact(body))
    excerpt = body[:RESULT_LIMIT]
    return _Answer(
        json.dumps({"status": status, "body": excerpt}),
        status if isinstance(status, int) else None,
        excerpt,
    )


def _no_call(result: str, *, skipped: bool = False) -> _Answer:
    """An attempt that called no provider (a record, a skip): its result is its answer."""
    return _Answer(result, None, result, skipped)


_OUTCOMES = {"succeeded": "succeeded", "queued": "retried", "dead": "dead"}


class Worker:
    def __init__(
        self,
        config: Config,
        store: JobsAndMessages,
        caller: Caller,
        *,
        clock: Callable[[], float] = time.time,
        lease: float = 120.0,
        concurrency: int = 64,
        rng: random.Random | None = None,
        counters: Counters | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        """`pacer`: when to rest for the webhooks of this process (none: never)."""
        self.config = config
        self.pacer = pacer if pacer is not None else unpaced()
        self._job_cpu = JOB_CPU_GUESS  # seconds of CPU a job costs, as measured so far
        self._stop: asyncio.Event | None = None  # run()'s: a pass stops topping up once set
        self.counters = counters if counters is not None else Counters()
        self.store = store
        self.caller = caller
        self.messenger = Messenger(config)
        self.messages = MessageLog(config, store, clock)
        self.clock = clock
        self.lease = lease
        self.concurrency = concurrency
        self.rng = rng
        self.wake = asyncio.Event()

    def policy(self, integration: str) -> RetryPolicy:
        return self.config.retry_policy(integration)

    async def enqueue_fallbacks(self, jobs: list[Job], outcomes: list[JobOutcome]) -> None:
        """The `on_failure` actions of the jobs that went dead."""
        made = [
            follow_up
            for job, outcome in zip(jobs, outcomes, strict=True)
            if outcome.status == "dead"
            for follow_up in fallbacks(
                job, outcome.error or "dead", self.clock(), self._max_attempts
            )
        ]
        if made:
            await self.store.add_jobs(made)

    def _max_attempts(self, integration: str) -> int:
        return self.policy(integration).max_attempts

    async def run_once(self) -> int:
        """Claim a batch of due jobs and run them at once. Each outcome is recorded as soon as
        its job finishes (outcomes that finish while a write is in flight go in the next
        write together): a finished send never waits behind a job held by the rate limiter,
        so a crash cannot make the next claim send it again. Under `run`, without webhooks
        beside it, the pass tops itself up with more due jobs once half of its own are done,
        so a backlog never waits for a pass's slowest job; it ends when none are left
        running (or the worker stops)."""
        # beside arriving webhooks, fewer at once: a pass's jobs become ready together, and
        # the webhooks' requests wait behind every one of them in the loop's queue
        limit = min(BUSY_CONCURRENCY, self.concurrency) if self.pacer.busy() else self.concurrency
        jobs = await self.store.claim_jobs(self.clock(), limit, self.lease)
        if not jobs:
            return 0
        running = {job.id for job in jobs}
        finished: asyncio.Queue[tuple[Job, JobOutcome]] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()

        async def run_job(job: Job) -> None:
            finished.put_nowait((job, await self.execute(job)))

        def start(batch: list[Job]) -> None:
            for job in batch:
                running.add(job.id)
                task = asyncio.create_task(run_job(job))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        heartbeat = asyncio.create_task(self._heartbeat(running))
        start(jobs)
        total = len(jobs)
        try:
            while running:
                done = [await finished.get()]
                while not finished.empty():
                    done.append(finished.get_nowait())
                await self._record(done)
                running.difference_update(job.id for job, _ in done)
                if len(running) <= limit // 2 and self._topping_up():
                    more = await self.store.claim_jobs(
                        self.clock(), limit - len(running), self.lease
                    )
                    start(more)
                    total += len(more)
        finally:
            heartbeat.cancel()
            for task in list(tasks):
                task.cancel()
        return total

    def _topping_up(self) -> bool:
        """A pass may claim more: it runs under `run` (a pass called on its own is one claim),
        the worker is not stopping and no webhooks wait."""
        return self._stop is not None and not self._stop.is_set() and not self.pacer.busy()

    async def _record(self, done: list[tuple[Job, JobOutcome]]) -> None:
        try:
            await self.store.finish_jobs([outcome for _, outcome in done])
        except Exception:
            # not recorded: the jobs' leases lapse (no more heartbeat) and a claim retries them
            log.exception("could not record the outcomes of %d jobs", len(done))
            return
        for job, outcome in done:
            self.counters.job_attempts[(job.integration, _OUTCOMES[outcome.status])] += 1
        jobs, outcomes = [job for job, _ in done], [outcome for _, outcome in done]
        await self.messages.failures(jobs, outcomes)
        await self.enqueue_fallbacks(jobs, outcomes)

    async def _heartbeat(self, running: set[str]) -> None:
        """While jobs run, renew their lease: only a dead worker's jobs are taken again.
        `running` shrinks as outcomes are recorded."""
        while True:
            await asyncio.sleep(self.lease / 3)
            if not running:
                continue
            try:
                await self.store.extend_leases(sorted(running), self.clock() + self.lease)
            except Exception:
                log.exception("could not renew job leases")

    async def execute(self, job: Job) -> JobOutcome:
        """Run one job's attempt and say what became of it (the caller records it)."""
        with log_context(
            job_id=job.id, event_id=job.event_id, integration=job.integration, tenant=job.tenant
        ):
            return await self._execute(job)

    async def _execute(self, job: Job) -> JobOutcome:
        started, began = self.clock(), time.perf_counter()
        outcome = await self._try(job)
        took = round((time.perf_counter() - began) * 1000, 1)
        return replace(outcome, started_at=started, duration_ms=took)

    async def _try(self, job: Job) -> JobOutcome:
        try:
            done = await self._attempt(job)
        except RetryableError as exc:
            return self._retry_or_bury(job, exc)
        except Permanent as exc:  # an outbound 4xx, an invalid message, a failing expression
            reason = f"{exc.reason}: {exc.body}" if exc.body else exc.reason
            return self._dead(job, reason, exc.status, exc.body)
        except RENDER_ERRORS as exc:
            return self._dead(job, f"rendering failed: {exc}")
        except Exception as exc:  # the edge: anything else is retried, then dead, never lost
            log.exception("job %s (%s/%s) failed unexpectedly", job.id, job.flow, job.action)
            return self._retry_or_bury(job, RetryableError(f"{type(exc).__name__}: {exc}"))
        return JobOutcome(
            job.id,
            "succeeded",
            result=done.result,
            attempt=job.attempts,
            http_status=done.http_status,
            answer=done.answer,
            skipped=done.skipped,
        )

    def _dead(
        self, job: Job, reason: str, status: int | None = None, answer: str | None = None
    ) -> JobOutcome:
        # ERROR, so error trackers (Sentry's logging integration) report it; the reason is cut
        # short: it may quote a provider's answer
        shown = reason if len(reason) <= LOG_LIMIT else f"{reason[:LOG_LIMIT]}..."
        log.error("job %s (%s/%s) is dead: %s", job.id, job.flow, job.action, shown)
        return JobOutcome(
            job.id,
            "dead",
            error=reason[:RESULT_LIMIT],
            attempt=job.attempts,
            http_status=status,
            answer=answer,
        )

    def _retry_or_bury(self, job: Job, exc: RetryableError) -> JobOutcome:
        if job.attempts >= job.max_attempts:
            reason = f"gave up after {job.attempts} attempts: {exc.reason}"
            return self._dead(job, reason, exc.status, exc.body)
        delay = retry_delay(exc, job.attempts, self.policy(job.integration), self.rng)
        return JobOutcome(
            job.id,
            "queued",
            run_at=self.clock() + delay,
            error=exc.reason,
            attempt=job.attempts,
            http_status=exc.status,
            answer=exc.body,
        )

    async def _attempt(self, job: Job) -> _Answer:
        spec = loads(job.spec)
        variables = {
            "event": loads(job.context),
            "tenant": self.config.tenant_variables(job.tenant),
            "now": datetime.fromtimestamp(self.clock(), UTC),
        }
        if "result" in spec:  # a call's `then`: the answer it follows from
            variables["result"] = spec["result"]
        if "condition" in spec and not evaluate(spec["condition"], variables, "condition"):
            return _no_call(json.dumps({"skipped": "condition is false"}), skipped=True)
        if job.kind in RECORD_ACTIONS:
            recorded = await self.messages.record(job, spec, variables)
            return _no_call(recorded, skipped=recorded.startswith('{"skipped"'))
        if job.kind == "send":
            message = self.messenger.build(spec, variables, message_id(job))
            skipped = await self.messages.sending(job, message)
            if skipped is not None:  # the recipient opted out
                return _no_call(skipped, skipped=True)
            result = await self.caller.call(
                message.integration,
                message.endpoint,
                tenant=job.tenant,
                params=render_value(dict(message.params), variables),
                body=message.body,
                headers={JOB_HEADER: job.id},
                idempotency_key=job.idempotency_key,
            )
            await self.messages.sent(job, message, result)
        else:
            integration, endpoint = str(spec["endpoint"]).split(".", 1)
            rendered = render_value(
                {k: spec.get(k) for k in ("params", "query", "body", "headers", "idempotency_key")},
                variables,
            )
            result = await self.caller.call(
                integration,
                endpoint,
                tenant=job.tenant,
                params=rendered["params"],
                query=rendered["query"],
                body=rendered["body"],
                headers={**(rendered["headers"] or {}), JOB_HEADER: job.id},
                # the call's own key (the business object's) survives a replay; the job's not
                idempotency_key=str(rendered["idempotency_key"] or job.idempotency_key),
            )
            if spec.get("then"):
                made = follow_ups(job, spec["then"], result, self.clock(), self._max_attempts)
                await self.store.add_jobs(made)
        return _answer(result)

    async def _paced_pass(self) -> int:
        """A pass (`run_once`), then a rest for the webhooks as the pacer says. A job waits on
        its provider without costing the loop anything, so what the pass cost is counted as
        its jobs times their CPU, measured on passes that ran without webhooks beside them."""
        pacer = self.pacer
        alone = not pacer.busy()
        started, cpu = pacer.now(), time.thread_time()
        ran = await self.run_once()
        if ran:
            if alone and not pacer.busy():  # the thread's CPU was the jobs' (and the dispatcher's)
                per_job = (time.thread_time() - cpu) / ran
                self._job_cpu += (per_job - self._job_cpu) * 0.2
            await pacer.rest(min(pacer.now() - started, ran * self._job_cpu))
        return ran

    async def run(self, stop: asyncio.Event, *, idle: float = 1.0) -> None:
        """Run jobs until `stop` is set; sleeps until the next job is due (at most `idle` s)."""
        self._stop = stop
        while not stop.is_set():
            try:
                if await self._paced_pass():
                    continue
                due = await self.store.next_run_at()
            except Exception:
                log.exception("worker pass failed; retrying")
                due = None
            wait = idle if due is None else min(idle, max(0.0, due - self.clock()))
            self.wake.clear()
            waits = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()
