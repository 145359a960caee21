"""Running an in-call function: steps through the outbound engine, then one answer, in time.

The caller (a voice agent, its caller on the line) always gets an answer before the
function's deadline: the rendered `respond` when every step ran, else the `fallback`. Each
invocation is stored with its steps' outcomes, after it is answered (the caller does not wait
for the bookkeeping); with an `idempotency` key an `ok` answer is stored before it is given,
and a repeat is answered from the store (or from the first call still running in this
process) and runs no step again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from gateway.config.functions import Function, Step
from gateway.config.model import Config
from gateway.counters import Counters
from gateway.expr.expressions import RENDER_ERRORS
from gateway.ids import new_id
from gateway.outbound.client import OutboundClient
from gateway.outbound.failures import OutboundError
from gateway.store.entities import FunctionCall, NewEvent
from gateway.store.interfaces import FunctionStore
from gateway.store.writer import EventWriter

log = logging.getLogger("gateway.functions")

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
FUNCTION_HEADER = "x-gateway-function"
_ERROR_LIMIT = 300


class StepFailed(Exception):
    """A step that did not give a usable result: the function answers its fallback."""


class Request(NamedTuple):
    """A verified function call: its parsed body and where it was sent."""

    integration: str
    function: str
    tenant: str
    body: Mapping[str, Any]
    raw: bytes


def encode_answer(value: Any) -> tuple[bytes, str]:
    """An answer as sent: an object, list, number or boolean as JSON, anything else as text."""
    if isinstance(value, str):
        return value.encode(), TEXT_TYPE
    if value is None:
        return b"", TEXT_TYPE
    return json.dumps(value, separators=(",", ":"), default=str).encode(), JSON_TYPE


class FunctionEngine:
    def __init__(
        self,
        config: Config,
        outbound: OutboundClient,
        store: FunctionStore,
        writer: EventWriter | None = None,
        *,
        counters: Counters | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.outbound = outbound
        self.store = store
        self.writer = writer
        self.counters = counters if counters is not None else Counters()
        self.clock = clock
        self._running: dict[tuple[str, str, str, str], asyncio.Future[FunctionCall]] = {}
        self._pending: set[asyncio.Task[None]] = set()

    def variables(self, request: Request) -> dict[str, Any]:
        """What the function's expressions read (`steps` is added as they run)."""
        body = request.body
        args = body.get("args")
        call = body.get("call")
        return {
            "body": body,
            "args": args if isinstance(args, dict) else {},
            "call": call if isinstance(call, dict) else {},
            "tenant": self.config.tenant_variables(request.tenant),
            "integration": request.integration,
            "now": datetime.now(UTC),
        }

    async def invoke(self, function: Function, request: Request) -> FunctionCall:
        """Run `function` for `request` and store what was answered."""
        started_at = time.time()
        started = self.clock()
        variables = self.variables(request)
        key = self._key(function, variables)
        if key is None:
            call = await self._run(function, request, variables, started, started_at, None)
            return self._record(call)
        slot = (function.integration, function.name, request.tenant, key)
        running = self._running.get(slot)
        if running is not None:  # the first call is still working: answer what it answers
            return await self._repeat(function, request, running, started, started_at, key)
        stored = await self.store.function_answer(*slot)
        if stored is not None:
            return self._record(self._repeated(stored, request, started, started_at))
        future: asyncio.Future[FunctionCall] = asyncio.get_running_loop().create_future()
        self._running[slot] = future
        try:
            call = await self._run(function, request, variables, started, started_at, key)
            if call.outcome != "ok":  # nothing to remember: a retry tries again
                future.set_result(call)
                return self._record(call)
            # Durable before it is answered: a retry after a restart finds it.
            if not await self.store.record_function_call(call):
                # another replica answered the same key first: its answer is the one
                first = await self.store.function_answer(*slot)
                if first is not None:
                    call = self._repeated(first, request, started, started_at)
                    self._record(call)
                    future.set_result(call)
                    return call
            else:
                self._later(self._emit(function, request, variables, call))
            self._count(call)
            future.set_result(call)
            return call
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when none waits
            raise
        finally:
            del self._running[slot]

    def _key(self, function: Function, variables: Mapping[str, Any]) -> str | None:
        if function.idempotency is None:
            return None
        try:
            key = function.idempotency.render(variables)
        except RENDER_ERRORS as exc:
            log.warning(
                "%s.%s: idempotency key failed, answering without one: %s",
                function.integration,
                function.name,
                exc,
            )
            return None
        return str(key) if key not in (None, "") else None

    async def _repeat(
        self,
        function: Function,
        request: Request,
        running: asyncio.Future[FunctionCall],
        started: float,
        started_at: float,
        key: str,
    ) -> FunctionCall:
        left = function.deadline - (self.clock() - started)
        try:
            first = await asyncio.wait_for(asyncio.shield(running), max(left, 0.0))
        except TimeoutError:
            call = self._fallback(function, request, started, started_at, key, "timeout", [])
            return self._record(call)
        return self._record(self._repeated(first, request, started, started_at))

    def _repeated(
        self, first: FunctionCall, request: Request, started: float, started_at: float
    ) -> FunctionCall:
        return FunctionCall(
            id=new_id("fnc"),
            integration=first.integration,
            function=first.function,
            tenant=first.tenant,
            idempotency_key=first.idempotency_key,
            outcome="repeat" if first.outcome in ("ok", "repeat") else first.outcome,
            status=first.status,
            content_type=first.content_type,
            answer=first.answer,
            request=request.raw.decode("utf-8", errors="replace"),
            steps=json.dumps([{"repeat_of": first.id}]),
            started_at=started_at,
            duration_ms=(self.clock() - started) * 1000,
        )

    def _record(self, call: FunctionCall) -> FunctionCall:
        """Count `call` and store it after it is answered: the caller does not wait for the
        bookkeeping (only an `ok` answer under an idempotency key is stored first)."""
        self._count(call)
        self._later(self._store(call))
        return call

    async def _store(self, call: FunctionCall) -> None:
        try:
            await self.store.record_function_call(call)
        except Exception:
            log.exception(
                "%s.%s: the call %s was not stored", call.integration, call.function, call.id
            )

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for the bookkeeping still under way (stored calls, emitted events)."""
        while self._pending:
            await asyncio.gather(*self._pending)

    def _count(self, call: FunctionCall) -> None:
        self.counters.function_calls[(call.integration, call.function, call.outcome)] += 1
        self.counters.function_latency.observe(
            (call.integration, call.function), call.duration_ms / 1000
        )

    async def _run(
        self,
        function: Function,
        request: Request,
        variables: dict[str, Any],
        started: float,
        started_at: float,
        key: str | None,
    ) -> FunctionCall:
        outcomes: list[dict[str, Any]] = []
        results: dict[str, Any] = {}
        variables["steps"] = results
        try:
            async with asyncio.timeout(function.deadline):
                for step in function.steps:
                    results[step.name] = await self._step(
                        function, step, request.tenant, variables, outcomes, started, key
                    )
                value = function.respond(variables)
                body, content_type = encode_answer(value)
        except TimeoutError:
            return self._fallback(function, request, started, started_at, key, "timeout", outcomes)
        except StepFailed:
            return self._fallback(function, request, started, started_at, key, "fallback", outcomes)
        except RENDER_ERRORS as exc:
            log.warning("%s.%s: respond failed: %s", function.integration, function.name, exc)
            outcomes.append({"name": "respond", "outcome": "failed", "error": _short(exc)})
            return self._fallback(function, request, started, started_at, key, "fallback", outcomes)
        return self._answered(
            function, request, key, "ok", (body, content_type), outcomes, started, started_at
        )

    async def _step(
        self,
        function: Function,
        step: Step,
        tenant: str,
        variables: Mapping[str, Any],
        outcomes: list[dict[str, Any]],
        started: float,
        key: str | None,
    ) -> dict[str, Any]:
        begun = self.clock()
        record: dict[str, Any] = {
            "name": step.name,
            "endpoint": f"{step.integration}.{step.endpoint}",
        }
        outcomes.append(record)
        try:
            if step.condition is not None and not step.condition.render(variables):
                record["outcome"] = "skipped"
                return {"ok": False, "skipped": True, "status": None, "body": None}
            params = step.params(variables) if step.params else None
            query = step.query(variables) if step.query else None
            body = step.body(variables) if step.body else None
            headers = step.headers(variables) if step.headers else None
        except RENDER_ERRORS as exc:
            record.update(outcome="failed", error=_short(exc))
            raise StepFailed from exc
        left = function.deadline - (begun - started)
        timeout = min(step.timeout, left) if step.timeout is not None else left
        try:
            result = await asyncio.wait_for(
                self.outbound.call(
                    step.integration,
                    step.endpoint,
                    tenant=tenant,
                    params=params,
                    query=query,
                    body=body,
                    headers=headers,
                    idempotency_key=f"{key}:{step.name}" if key else None,
                ),
                max(timeout, 0.0),
            )
        except TimeoutError:
            record.update(outcome="timeout", ms=_ms(self.clock() - begun))
            if self.clock() - started >= function.deadline:
                raise  # the function's own deadline: answered as a timeout
            raise StepFailed from None
        except OutboundError as exc:
            record.update(ms=_ms(self.clock() - begun), status=exc.status)
            if exc.status is not None and exc.status in step.accept:
                record["outcome"] = "accepted"
                return {
                    "ok": False,
                    "skipped": False,
                    "status": exc.status,
                    "body": _parsed(getattr(exc, "body", None) or ""),
                    "error": exc.reason,
                }
            record.update(outcome="failed", error=_short(exc.reason))
            raise StepFailed from exc
        record.update(outcome="ok", status=result.status, ms=_ms(result.elapsed))
        try:
            parsed = result.json()
        except ValueError:
            parsed = result.text
        return {"ok": True, "skipped": False, "status": result.status, "body": parsed}

    def _answered(
        self,
        function: Function,
        request: Request,
        key: str | None,
        outcome: str,
        answer: tuple[bytes, str],
        outcomes: list[dict[str, Any]],
        started: float,
        started_at: float,
    ) -> FunctionCall:
        """The invocation as answered: `answer` is (body, content type)."""
        body, content_type = answer
        return FunctionCall(
            id=new_id("fnc"),
            integration=function.integration,
            function=function.name,
            tenant=request.tenant,
            idempotency_key=key,
            outcome=outcome,
            status=200,
            content_type=content_type,
            answer=body.decode("utf-8", errors="replace"),
            request=request.raw.decode("utf-8", errors="replace"),
            steps=json.dumps(outcomes),
            started_at=started_at,
            duration_ms=(self.clock() - started) * 1000,
        )

    def _fallback(
        self,
        function: Function,
        request: Request,
        started: float,
        started_at: float,
        key: str | None,
        outcome: str,
        outcomes: list[dict[str, Any]],
    ) -> FunctionCall:
        variables = self.variables(request)
        try:
            body, content_type = encode_answer(function.fallback(variables))
        except RENDER_ERRORS as exc:
            log.warning("%s.%s: fallback failed: %s", function.integration, function.name, exc)
            body, content_type = b"", TEXT_TYPE
        return self._answered(
            function, request, key, outcome, (body, content_type), outcomes, started, started_at
        )

    async def _emit(
        self,
        function: Function,
        request: Request,
        variables: Mapping[str, Any],
        call: FunctionCall,
    ) -> None:
        """Store the function's normalised event after a successful call (the usual flows
        run on it); a failure here is logged, never the caller's."""
        emit = function.emit
        if emit is None or call.outcome != "ok" or self.writer is None:
            return
        try:
            if emit.condition is not None and not emit.condition.render(variables):
                return
            data = emit.data(variables)
            raw = json.dumps(data, separators=(",", ":"), default=str).encode()
        except RENDER_ERRORS as exc:
            log.warning("%s.%s: emit failed: %s", function.integration, function.name, exc)
            return
        event = NewEvent(
            new_id("evt"),
            function.integration,
            request.tenant,
            f"function/{function.name}/{call.idempotency_key or call.id}",
            None,
            function.event_type,
            time.time(),
            json.dumps({FUNCTION_HEADER: function.name}),
            raw,
        )
        try:
            await self.writer.submit([event])
        except Exception:
            log.exception(
                "%s.%s: the emitted event was not stored", function.integration, function.name
            )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _short(reason: object) -> str:
    return str(reason)[:_ERROR_LIMIT]


def _parsed(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return text
