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
from typing import Any

from gateway.config.model import Config, Integration
from gateway.config.pipeline import (
    Mapped,
    NormalisedEvent,
    is_sync_event,
    mapping_variables,
    normalised,
    sync_change,
)
from gateway.counters import Counters
from gateway.durations import parse_duration, parse_signed_duration
from gateway.errors import Permanent
from gateway.expr.expressions import RENDER_ERRORS, compile_expression, is_template
from gateway.expr.filters import to_datetime
from gateway.ids import new_id
from gateway.jsontext import loads
from gateway.store.entities import DISPATCH_FAILURE_REASONS, Dispatch, NewJob, StoredEvent
from gateway.store.interfaces import Store

log = logging.getLogger("gateway.processing.dispatcher")
DEFAULT_MAX_ATTEMPTS = 5
LOG_LIMIT = 500  # characters of a partial dispatch's reasons in the log


class DispatchError(Permanent):
    """An event's mapping, a flow's condition or a schedule that fails on it: do not retry."""


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


def normalise(integration: Integration, event: StoredEvent) -> list[NormalisedEvent]:
    """The normalised events the integration's mapping makes of a stored event; raises
    DispatchError naming the expression when a rule fails."""
    made = map_stored(integration, event)
    if made.failures:
        first = made.failures[0]
        raise DispatchError(f"{first.where()}: {first.reason}")
    return normalised(
        made.events,
        integration=integration.name,
        tenant=event.tenant,
        event_id=event.id,
        event_type=event.type,
        received_at=event.received_at,
    )


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


def failure_reason(exc: Exception) -> str:
    """The category of a dispatch failure (a bounded metric label): the exception's own
    `category` when it names one, `flow` for a flow's failure, else `mapping`."""
    own = getattr(exc, "category", None)
    if own in DISPATCH_FAILURE_REASONS:
        return str(own)
    return "flow" if str(exc).startswith("flow ") else "mapping"


def _target_integration(kind: str, spec: Mapping[str, Any]) -> str:
    ref = spec["channel"] if kind == "send" else spec["endpoint"]
    return str(ref).split(".", 1)[0]


class Dispatcher:
    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        batch: int = 200,
        on_jobs: Callable[[], None] | None = None,
        counters: Counters | None = None,
    ) -> None:
        self.on_jobs = on_jobs
        self.counters = counters if counters is not None else Counters()
        self.config = config
        self.store = store
        self.clock = clock
        self.batch = batch
        self.flows: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for flow in config.flows:
            self.flows[flow["event"]].append(flow)
        self.wake = asyncio.Event()

    def _max_attempts(self, integration: str) -> int:
        found = self.config.integrations.get(integration)
        retry = ((found.spec.get("api") or {}).get("retry") or {}) if found else {}
        return int(retry.get("max_attempts", DEFAULT_MAX_ATTEMPTS))

    def dispatch(self, event: StoredEvent) -> Dispatch:
        integration = self.config.integrations.get(event.integration)
        if integration is None:
            log.error("event %s could not be dispatched: its integration is gone", event.id)
            error = f"integration {event.integration} is gone"
            return Dispatch(event.id, "failed", error=error, reason="integration_gone")
        try:
            normalised = normalise(integration, event)
            if not normalised:
                return Dispatch(event.id, "ignored")
            jobs: list[NewJob] = []
            cancels: list[tuple[str, str]] = []
            for index, made in enumerate(normalised):
                for flow in self.flows.get(made.name, ()):
                    self._run_flow(flow, made.as_dict(), index, event, jobs, cancels)
        except (DispatchError, ValueError) as exc:
            log.error("event %s could not be dispatched: %s", event.id, exc)
            return Dispatch(event.id, "failed", error=str(exc), reason=failure_reason(exc))
        except Exception as exc:  # the edge: one event never holds up the ones behind it
            log.exception("event %s could not be dispatched", event.id)
            error = f"{type(exc).__name__}: {exc}"
            return Dispatch(event.id, "failed", error=error, reason="internal")
        return Dispatch(event.id, "dispatched", jobs, cancels)

    def _run_flow(
        self,
        flow: Mapping[str, Any],
        made: dict[str, Any],
        made_index: int,
        event: StoredEvent,
        jobs: list[NewJob],
        cancels: list[tuple[str, str]],
    ) -> None:
        now = self.clock()
        variables = {
            "event": made,
            "tenant": self.config.tenant_variables(event.tenant),
            "now": datetime.fromtimestamp(now, UTC),
        }
        name = flow["name"]
        if "condition" in flow and not evaluate(flow["condition"], variables, f"flow {name}"):
            return
        context = json.dumps(made, default=str)
        for index, action in enumerate(flow["actions"]):
            label = action.get("name", f"#{index}")  # names start with a letter: no clash
            where = f"flow {name} action {label}"
            if "condition" in action and not evaluate(action["condition"], variables, where):
                continue
            if "cancel" in action:
                key = str(evaluate(action["cancel"]["key"], variables, f"{where} key"))
                cancels.append((event.tenant, key))
                continue
            schedule = action.get("schedule")
            inner = schedule["action"] if schedule else action
            kind = "send" if "send" in inner else "call"
            spec = dict(inner[kind])
            if "condition" in inner:
                spec["condition"] = inner["condition"]  # checked again when it runs
            run_at, schedule_key = now, None
            if schedule:
                schedule_key = str(evaluate(schedule["key"], variables, f"{where} key"))
                run_at = self._when(schedule, variables, now, where)
            target = _target_integration(kind, spec)
            key = f"{event.id}/{event.replays}/{made_index}/{name}/{label}"
            jobs.append(
                NewJob(
                    id=new_id("job"),
                    idempotency_key=key,
                    event_id=event.id,
                    flow=name,
                    action=label,
                    kind=kind,
                    integration=target,
                    tenant=event.tenant,
                    schedule_key=schedule_key,
                    spec=json.dumps(spec),
                    context=context,
                    run_at=run_at,
                    max_attempts=self._max_attempts(target),
                    created_at=now,
                )
            )

    def _when(
        self, schedule: Mapping[str, Any], variables: Mapping[str, Any], now: float, where: str
    ) -> float:
        """When a scheduled action runs: `at` plus `offset`, or now plus `delay`; a time already
        past runs at once."""
        if "delay" in schedule:
            return now + parse_duration(schedule["delay"])
        at = evaluate(schedule["at"], variables, f"{where} at")
        try:
            moment = to_datetime(at)
        except (ValueError, TypeError) as exc:
            raise DispatchError(f"{where}: at is not a time: {at!r}") from exc
        offset = parse_signed_duration(schedule.get("offset", 0))
        return max(now, (moment + timedelta(seconds=offset)).timestamp())

    async def run_once(self) -> int:
        events = await self.store.pending_events(self.batch)
        if events:
            dispatches = [self.dispatch(e) for e in events]
            await self.store.commit_dispatches(dispatches)
            for stored, done in zip(events, dispatches, strict=True):
                if done.status in ("failed", "partial"):
                    reason = done.reason if done.reason in DISPATCH_FAILURE_REASONS else "internal"
                    self.counters.dispatch_failures[(stored.integration, str(reason))] += 1
                if done.status == "partial":  # a failure is logged where it is caught
                    shown = (done.error or "")[:LOG_LIMIT]
                    log.error("event %s was dispatched in part: %s", stored.id, shown)
            if self.on_jobs is not None and any(d.jobs for d in dispatches):
                self.on_jobs()
        return len(events)

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
