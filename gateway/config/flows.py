"""Flows, compiled once: the event each runs on, its condition, and typed actions (send or call
now, a scheduled send or call, a cancel of scheduled ones). Expressions are compiled at load."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from gateway.durations import parse_duration, parse_signed_duration
from gateway.expr.expressions import Expression, compile_expression, is_template


@dataclass(frozen=True, slots=True)
class Value:
    """A declared value that may be an expression: `render` gives the expression's result, or
    the value as declared when it is not one."""

    source: Any
    expression: Expression | None

    @classmethod
    def build(cls, source: Any) -> Value:
        return cls(source, compile_expression(source) if is_template(source) else None)

    def render(self, variables: Mapping[str, Any]) -> Any:
        return self.expression.render(variables) if self.expression is not None else self.source


def _value(spec: Mapping[str, Any], key: str) -> Value | None:
    return Value.build(spec[key]) if key in spec else None


# Actions the worker applies to the store rather than send or call: a status added to a
# message, an address put on or taken off the tenant's opt-out list.
RECORD_ACTIONS = ("update_message", "opt_out", "opt_in")
TaskKind = Literal["send", "call", "update_message", "opt_out", "opt_in"]


def _json(stored: Mapping[str, Any]) -> str:
    """The JSON a task's jobs store; "" when a value is not JSON (the dispatcher then fails
    the action with the reason, as for any action it cannot enqueue)."""
    try:
        return json.dumps(dict(stored))
    except (TypeError, ValueError):
        return ""


@dataclass(frozen=True, slots=True)
class Task:
    """A send or a call, the job an action enqueues. `stored` is what the job stores and the
    worker runs: the send or call mapping, with the task's own condition (checked again when
    it runs)."""

    kind: TaskKind
    stored: Mapping[str, Any]
    integration: str  # the integration called: the channel's or the endpoint's ("" for an
    # action of RECORD_ACTIONS: the event's integration)
    spec: str = ""  # `stored` as the JSON each of its jobs stores, written once at load

    @classmethod
    def build(cls, spec: Mapping[str, Any]) -> Task:
        for record in RECORD_ACTIONS:
            if record in spec:
                stored = {record: dict(spec[record])}
                if "condition" in spec:
                    stored["condition"] = spec["condition"]
                return cls(record, MappingProxyType(stored), "", _json(stored))  # type: ignore[arg-type]
        kind: Literal["send", "call"] = "send" if "send" in spec else "call"
        stored = dict(spec[kind])
        if "condition" in spec:
            stored["condition"] = spec["condition"]
        if "on_failure" in spec:  # run by the worker when the task fails (follow_ups.py)
            stored["on_failure"] = spec["on_failure"]
        ref = stored["channel"] if kind == "send" else stored["endpoint"]
        return cls(kind, MappingProxyType(stored), str(ref).split(".", 1)[0], _json(stored))


@dataclass(frozen=True, slots=True)
class Later:
    """When a scheduled task runs: `at` plus `offset` seconds, or `delay` seconds from now."""

    key: Value
    at: Value | None
    offset: float
    delay: float | None

    @classmethod
    def build(cls, spec: Mapping[str, Any]) -> Later:
        return cls(
            key=Value.build(spec["key"]),
            at=_value(spec, "at"),
            offset=parse_signed_duration(spec.get("offset", 0)),
            delay=parse_duration(spec["delay"]) if "delay" in spec else None,
        )


@dataclass(frozen=True, slots=True)
class Action:
    """One step of a flow: a `task` (now, or `later`), or a `cancel` of scheduled ones by key.
    An `update_message` is a task too: the worker adds the status it declares to a message."""

    label: str  # its name, or #index (names start with a letter: no clash)
    condition: Value | None
    task: Task | None
    later: Later | None
    cancel: Value | None

    @classmethod
    def build(cls, index: int, spec: Mapping[str, Any]) -> Action:
        schedule = spec.get("schedule")
        cancel = spec.get("cancel")
        return cls(
            label=str(spec.get("name", f"#{index}")),
            condition=_value(spec, "condition"),
            task=None if cancel else Task.build(schedule["action"] if schedule else spec),
            later=Later.build(schedule) if schedule else None,
            cancel=Value.build(cancel["key"]) if cancel else None,
        )


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    event: str  # the normalised event it runs on
    condition: Value | None
    actions: tuple[Action, ...]
    source: str = ""

    @classmethod
    def build(cls, spec: Mapping[str, Any], source: str = "") -> Flow:
        return cls(
            name=str(spec["name"]),
            event=str(spec["event"]),
            condition=_value(spec, "condition"),
            actions=tuple(Action.build(i, a) for i, a in enumerate(spec["actions"])),
            source=source,
        )
