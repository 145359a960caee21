"""The dispatcher: stored events -> normalised events -> matching flows -> durable jobs.

For each pending event it runs the integration's mapping, matches flows by event name and
condition, and commits the resulting jobs together with the event's new status in one
transaction. Every job has an idempotency key made of the event, its replay count, the flow
and the action, so dispatching the same event twice (a crash between commit and the next
claim, two dispatchers) enqueues nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from gateway.config.flows import Action, Flow, Later, Value
from gateway.config.model import Config, Integration
from gateway.config.pipeline import (
    Mapped,
    is_sync_event,
    mapping_variables,
    normalised,
    sync_change,
)
from gateway.counters import Counters
from gateway.errors import Permanent
from gateway.expr.expressions import RENDER_ERRORS, compile_expression, is_template
from gateway.expr.filters import to_datetime
from gateway.ids import new_id
from gateway.jsontext import loads
from gateway.processing.pacing import Pacer, unpaced
from gateway.store.entities import DISPATCH_FAILURE_REASONS, Dispatch, NewJob, StoredEvent
from gateway.store.interfaces import EventStore
from gateway.store.people import ERASED_BODY

log = logging.getLogger("gateway.processing.dispatcher")
LOG_LIMIT = 500  # characters of a partial dispatch's reasons in the log


class DispatchError(Permanent):
    """An event's mapping, a flow's condition or a schedule that fails on it: do not retry."""


ERASED_EVENT = "its data was erased (gateway erase): nothing to dispatch"


def evaluate(value: Any, variables: Mapping[str, Any], what: str) -> Any:
    """A config value with its expression rendered; failures name `what`."""
    try:
        return compile_expression(value).render(variables) if is_template(value) else value
    except RENDER_ERRORS as exc:
        raise DispatchError(f"{what}: {exc}") from exc


def event_payload(integration: Integration, event: StoredEvent) -> Any:
    """The parsed body of a stored event, as the mapping sees it (the pipeline's parse)."""
    if integration.webhook is None or is_sync_event(event.type, event.headers):
        return loads(event.body) if event.body.strip() else {}
    return integration.webhook.pipeline.parse(event.body)


def map_stored(integration: Integration, event: StoredEvent) -> Mapped:
    """The pipeline's map step over a stored event (a sync's event: its declared `emit`)."""
    if is_sync_event(event.type, event.headers):
        sync, change = sync_change(event.type, event.headers)
        name = integration.sync_event_name(sync, change)
        return Mapped([(name, loads(event.body))] if name else [], [])
    webhook = integration.webhook
    if webhook is None or event.type is None:
        return Mapped([], [])
    variables = mapping_variables(
        event_payload(integration, event), event.headers, integration.name, event.tenant
    )
    return webhook.pipeline.map(event.type, variables)


def _render(value: Value, variables: Mapping[str, Any], what: str) -> Any:
    """A compiled flow value rendered; failures name `what`."""
    try:
        return value.render(variables)
    except RENDER_ERRORS as exc:
        raise DispatchError(f"{what}: {exc}") from exc


def failure_reason(exc: Exception) -> str:
    """The category of a dispatch failure (a bounded metric label): the exception's own
    `category` when it names one, `flow` for a flow's failure, else `mapping`."""
    own = getattr(exc, "category", None)
    if own in DISPATCH_FAILURE_REASONS:
        return str(own)
    return "flow" if str(exc).startswith("flow ") else "mapping"


class _FlowRun(NamedTuple):
    """What every action of one flow run on one normalised event shares."""

    made_index: int
    event: StoredEvent
    variables: Mapping[str, Any]
    context: str  # JSON of the normalised event, stored with each job
    now: float


class Dispatcher:
    def __init__(
        self,
        config: Config,
        store: EventStore,
        *,
        clock: Callable[[], float] = time.time,
        batch: int = 200,
        on_jobs: Callable[[], None] | None = None,
        counters: Counters | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        """`pacer`: when to rest for the webhooks of this process (none: never)."""
        self.on_jobs = on_jobs
        self.pacer = pacer if pacer is not None else unpaced()
        self.counters = counters if counters is not None else Counters()
        self.config = config
        self.store = store
        self.clock = clock
        self.batch = batch
        self.flows: dict[str, list[Flow]] = defaultdict(list)
        for flow in config.flows:
            self.flows[flow.event].append(flow)
        self.wake = asyncio.Event()

    def _max_attempts(self, integration: str) -> int:
        return self.config.retry_policy(integration).max_attempts

    def dispatch(self, event: StoredEvent) -> Dispatch:
        """What one stored event makes: every rule and every flow on its own, so one that fails
        never stops another. `failed` when nothing could run, `partial` when some did, with
        the reasons of the rest."""
        integration = self.config.integrations.get(event.integration)
        if integration is None:
            log.error("event %s could not be dispatched: its integration is gone", event.id)
            error = f"integration {event.integration} is gone"
            return Dispatch(event.id, "failed", error=error, reason="integration_gone")
        if event.body == ERASED_BODY:  # a replay of an event `gateway erase` emptied
            return Dispatch(event.id, "ignored", error=ERASED_EVENT)
        try:
            return self._dispatch(integration, event)
        except Exception as exc:  # the edge: one event never holds up the ones behind it
            log.exception("event %s could not be dispatched", event.id)
            error = f"{type(exc).__name__}: {exc}"
            return Dispatch(event.id, "failed", error=error, reason="internal")

    def _dispatch(self, integration: Integration, event: StoredEvent) -> Dispatch:
        try:
            mapped = map_stored(integration, event)
        except (DispatchError, ValueError, RecursionError) as exc:  # a body that does not parse
            log.error("event %s could not be dispatched: %s", event.id, exc)
            return Dispatch(event.id, "failed", error=str(exc), reason=failure_reason(exc))
        problems = [f"{f.where()}: {f.reason}" for f in mapped.failures]
        reason = None
        if mapped.failures:
            contract = any(f.rule.startswith("contract-") for f in mapped.failures)
            reason = "contract" if contract else "mapping"
        made = normalised(
            mapped.events,
            integration=integration.name,
            tenant=event.tenant,
            event_id=event.id,
            event_type=event.type,
            received_at=event.received_at,
        )
        if not made and not problems:
            return Dispatch(event.id, "ignored")
        jobs: list[NewJob] = []
        cancels: list[tuple[str, str]] = []
        ran: list[str] = []
        for index, normal in enumerate(made):
            flows = self.flows.get(normal.name, ())
            data = normal.as_dict() if flows else {}
            context = json.dumps(data, default=str) if flows else ""  # once for every flow
            for flow in flows:
                failures = self._run_flow(flow, data, context, index, event, jobs, cancels)
                if failures:
                    problems.extend(failures)
                    reason = reason or "flow"
                else:
                    ran.append(flow.name)
        if not problems:
            return Dispatch(event.id, "dispatched", jobs, cancels)
        summary = "; ".join(problems)
        if not made or not (jobs or cancels or ran):
            log.error("event %s could not be dispatched: %s", event.id, summary[:LOG_LIMIT])
            return Dispatch(event.id, "failed", jobs, cancels, error=summary, reason=reason)
        emitted = ", ".join(sorted({normal.name for normal in made}))
        error = f"emitted {emitted}; ran {', '.join(ran) or 'no flow in full'}; failed: {summary}"
        return Dispatch(event.id, "partial", jobs, cancels, error=error, reason=reason)

    def _run_flow(
        self,
        flow: Flow,
        made: dict[str, Any],
        context: str,
        made_index: int,
        event: StoredEvent,
        jobs: list[NewJob],
        cancels: list[tuple[str, str]],
    ) -> list[str]:
        """Add the flow's jobs and cancels; each action on its own. The reasons of what could
        not be done (a failing flow condition stops the flow; a failing action, only itself)."""
        now = self.clock()
        variables = {
            "event": made,
            "tenant": self.config.tenant_variables(event.tenant),
            "now": datetime.fromtimestamp(now, UTC),
        }
        name = flow.name
        try:
            if flow.condition is not None and not _render(
                flow.condition, variables, f"flow {name} condition"
            ):
                return []
        except DispatchError as exc:
            return [str(exc)]
        run = _FlowRun(made_index, event, variables, context, now)
        failures: list[str] = []
        for action in flow.actions:
            try:
                self._run_action(flow, action, run, jobs, cancels)
            except (DispatchError, ValueError) as exc:
                failures.append(str(exc))
        return failures

    def _run_action(
        self,
        flow: Flow,
        action: Action,
        run: _FlowRun,
        jobs: list[NewJob],
        cancels: list[tuple[str, str]],
    ) -> None:
        made_index, event, variables, context, now = run
        name, label = flow.name, action.label
        where = f"flow {name} action {label}"
        if action.condition is not None and not _render(action.condition, variables, where):
            return
        if action.cancel is not None:
            key = str(_render(action.cancel, variables, f"{where} key"))
            cancels.append((event.tenant, key))
            return
        task = action.task
        if task is None:  # pragma: no cover - an action is a task or a cancel
            return
        run_at, schedule_key = now, None
        if action.later is not None:
            schedule_key = str(_render(action.later.key, variables, f"{where} key"))
            run_at = self._when(action.later, variables, now, where)
        target = task.integration or event.integration
        key = f"{event.id}/{event.replays}/{made_index}/{name}/{label}"
        jobs.append(
            NewJob(
                id=new_id("job"),
                idempotency_key=key,
                event_id=event.id,
                flow=name,
                action=label,
                kind=task.kind,
                integration=target,
                tenant=event.tenant,
                schedule_key=schedule_key,
                spec=task.spec or json.dumps(dict(task.stored)),
                context=context,
                run_at=run_at,
                max_attempts=self._max_attempts(target),
                created_at=now,
            )
        )

    def _when(self, later: Later, variables: Mapping[str, Any], now: float, where: str) -> float:
        """When a scheduled action runs: `at` plus `offset`, or now plus `delay`; a time already
        past runs at once."""
        if later.delay is not None or later.at is None:
            return now + (later.delay or 0.0)
        at = _render(later.at, variables, f"{where} at")
        try:
            moment = to_datetime(at)
        except (ValueError, TypeError) as exc:
            raise DispatchError(f"{where}: at is not a time: {at!r}") from exc
        return max(now, (moment + timedelta(seconds=later.offset)).timestamp())

    async def run_once(self) -> int:
        """Dispatch a batch of pending events. In slices: while webhooks arrive (the pacer
        says so), each slice's jobs are committed and the dispatcher rests before the next, so
        the webhooks keep the loop; otherwise the whole batch is committed at once."""
        events = await self.store.pending_events(self.batch)
        pacer = self.pacer
        done: list[tuple[StoredEvent, Dispatch]] = []
        started = pacer.now()
        for event in events:
            done.append((event, self.dispatch(event)))
            spent = pacer.now() - started
            if spent >= pacer.slice:
                if pacer.busy():
                    await self._commit(done)
                    done = []
                    spent = pacer.now() - started  # the commit's own share
                await pacer.rest(spent)
                started = pacer.now()
        if done:
            await self._commit(done)
        return len(events)

    async def _commit(self, done: list[tuple[StoredEvent, Dispatch]]) -> None:
        dispatches = [dispatch for _, dispatch in done]
        await self.store.commit_dispatches(dispatches)
        for stored, dispatch in done:
            if dispatch.status in ("failed", "partial"):
                reason = dispatch.reason
                reason = reason if reason in DISPATCH_FAILURE_REASONS else "internal"
                self.counters.dispatch_failures[(stored.integration, str(reason))] += 1
            if dispatch.status == "partial":  # a failure is logged where it is caught
                shown = (dispatch.error or "")[:LOG_LIMIT]
                log.error("event %s was dispatched in part: %s", stored.id, shown)
        if self.on_jobs is not None and any(d.jobs for d in dispatches):
            self.on_jobs()

    async def run(self, stop: asyncio.Event, *, idle: float = 1.0) -> None:
        """Dispatch until `stop` is set; wakes up on `wake` (new events) or every `idle` s."""
        while not stop.is_set():
            try:
                if await self.run_once():
                    continue
            except Exception:
                log.exception("dispatcher pass failed; retrying")  # the store may be busy
            self.wake.clear()
            waits = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waits, timeout=idle, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()
