"""In-call functions, compiled: what an integration's ``functions:`` section declares.

A function is served at ``POST /functions/{integration}/{function}[/{tenant}]`` while a voice
agent's caller waits (gateway/functions/engine.py runs it): its steps call declared endpoints
in order, each result named for the later steps and the answer; `respond` renders the answer,
`fallback` is what is answered when a step fails or the deadline passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.durations import parse_duration
from gateway.expr.expressions import Expression, compile_expression, compile_value

DEFAULT_DEADLINE = 8.0  # seconds: Retell waits longer, but a caller should not
FUNCTION_TYPE_PREFIX = "function."  # the stored type of an event a function emits

Render = Callable[[Mapping[str, Any]], Any]


def _expr(value: Any) -> Expression | None:
    return compile_expression(value) if isinstance(value, str) else None


def _value(value: Any) -> Render | None:
    return compile_value(value) if value is not None else None


@dataclass(frozen=True)
class Step:
    """One call of a declared endpoint (``call.endpoint`` is INTEGRATION.ENDPOINT)."""

    name: str
    integration: str
    endpoint: str
    condition: Expression | None
    params: Render | None
    query: Render | None
    body: Render | None
    headers: Render | None
    timeout: float | None
    accept: frozenset[int]  # failed statuses answered as results, not failures

    @classmethod
    def build(cls, spec: Mapping[str, Any]) -> Step:
        call = spec["call"]
        integration, _, endpoint = str(call["endpoint"]).partition(".")
        timeout = spec.get("timeout")
        return cls(
            name=str(spec["name"]),
            integration=integration,
            endpoint=endpoint,
            condition=_expr(spec.get("condition")),
            params=_value(call.get("params")),
            query=_value(call.get("query")),
            body=_value(call.get("body")),
            headers=_value(call.get("headers")),
            timeout=parse_duration(timeout) if timeout is not None else None,
            accept=frozenset(int(s) for s in spec.get("accept") or ()),
        )


@dataclass(frozen=True)
class Emit:
    """The normalised event stored after a successful call."""

    event: str
    condition: Expression | None
    fields: tuple[str, ...]
    data: Render

    @classmethod
    def build(cls, spec: Mapping[str, Any]) -> Emit:
        data = dict(spec["data"])
        return cls(
            event=str(spec["event"]),
            condition=_expr(spec.get("condition")),
            fields=tuple(data),
            data=compile_value(data),
        )


@dataclass(frozen=True)
class Function:
    integration: str
    name: str
    description: str
    steps: tuple[Step, ...]
    respond: Render
    fallback: Render
    deadline: float
    idempotency: Expression | None
    emit: Emit | None

    @property
    def event_type(self) -> str:
        """The type of the events this function stores (its `emit`)."""
        return FUNCTION_TYPE_PREFIX + self.name

    @classmethod
    def build(cls, integration: str, name: str, spec: Mapping[str, Any]) -> Function:
        emit = spec.get("emit")
        return cls(
            integration=integration,
            name=name,
            description=str(spec.get("description", "")),
            steps=tuple(Step.build(s) for s in spec.get("steps") or ()),
            respond=compile_value(spec["respond"]),
            fallback=compile_value(spec["fallback"]),
            deadline=parse_duration(spec.get("deadline", DEFAULT_DEADLINE)),
            idempotency=_expr(spec.get("idempotency")),
            emit=Emit.build(emit) if isinstance(emit, Mapping) else None,
        )


def emit_rules(functions: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook map rules that turn a function's stored event into the normalised event
    its `emit` names: the stored body is the rendered `emit.data`, read field by field."""
    rules: dict[str, Any] = {}
    for name, spec in functions.items():
        emit = spec.get("emit") if isinstance(spec, Mapping) else None
        if not isinstance(emit, Mapping):
            continue
        rules[FUNCTION_TYPE_PREFIX + name] = {
            "emit": emit["event"],
            "data": {field: f"{{{{ body[{field!r}] }}}}" for field in emit["data"]},
        }
    return rules


def build_functions(integration: str, spec: Any) -> dict[str, Function]:
    if not isinstance(spec, Mapping):
        return {}
    return {str(name): Function.build(integration, str(name), f) for name, f in spec.items()}
