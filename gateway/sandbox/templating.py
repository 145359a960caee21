"""Templated answers: ``{{ request.json.start }}``, ``{{ seq }}``, ``{{ uuid }}`` in rule bodies.

One sandboxed Jinja2 environment, compiled once per rule. A string that is exactly one
``{{ expression }}`` keeps the expression's own type (an echoed object stays an object, a number
a number); any other string with markers renders to text; everything else is left as written.
Missing values are lenient (a stand-in server should not fail on an absent field): they read as
``null`` in a whole-value expression and as an empty string inside text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from gateway.expr.filters import FILTERS, to_datetime, zone_or_utc

__all__ = ["Renderer", "TemplateError", "compile_text", "compile_value", "jsonable", "utc_iso"]

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
_MARKERS = ("{{", "{%", "{#")

Renderer = Callable[[Mapping[str, Any]], Any]


class _Environment(ImmutableSandboxedEnvironment):
    """Keys of JSON objects win over dict methods: ``request.json.items`` is the key "items"."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def utc_iso(value: Any, plus_minutes: Any = 0) -> str | None:
    """``2025-03-04T10:30:00.000Z``, the way most provider APIs write a UTC moment, optionally
    moved by ``plus_minutes`` (``start | utc_iso(30)`` is the end of a 30-minute booking).
    Lenient like the rest of the sandbox: a missing value stays missing (null)."""
    if value is None or value == "" or isinstance(value, Undefined):
        return None
    minutes = 0.0 if plus_minutes is None or isinstance(plus_minutes, Undefined) else plus_minutes
    moment = to_datetime(value).astimezone(UTC) + timedelta(minutes=float(minutes))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def day_slots(
    start: Any, end: Any = None, zone: Any = None, every: Any = 30, hours: Any = (9, 17)
) -> dict[str, list[dict[str, str]]]:
    """Free slots as Cal.com's ``GET /v2/slots`` answers them: ``{"YYYY-MM-DD": [{"start":
    "<ISO 8601 in the zone's offset>"}, ...]}``, every `every` minutes within `hours` on each
    weekday from `start` to `end` (dates, or times whose date counts), at most 31 days."""
    tz = zone_or_utc(None if isinstance(zone, Undefined) else zone)
    first = date.fromisoformat(str(start)[:10])
    last = date.fromisoformat(str(end)[:10]) if end and not isinstance(end, Undefined) else first
    found: dict[str, list[dict[str, str]]] = {}
    day = first
    while day <= last and (day - first).days < 31:
        if day.weekday() < 5:
            moment = datetime.combine(day, time(int(hours[0])), tz)
            stop = datetime.combine(day, time(int(hours[1])), tz)
            slots = []
            while moment < stop:
                slots.append({"start": moment.isoformat(timespec="milliseconds")})
                moment += timedelta(minutes=int(every))
            found[day.isoformat()] = slots
        day += timedelta(days=1)
    return found


_ENV = _Environment(undefined=ChainableUndefined, autoescape=False, keep_trailing_newline=True)
_ENV.filters.update(FILTERS)
_ENV.filters["utc_iso"] = utc_iso
_ENV.filters["day_slots"] = day_slots


def jsonable(value: Any) -> Any:
    """Values a template produced, made JSON-serialisable (datetimes become ISO 8601 text)."""
    if isinstance(value, Undefined):
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


class _Constant:
    """A value without templates: rendered as written, and recognisable as such."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, _context: Mapping[str, Any]) -> Any:
        return self.value


def compile_text(text: str) -> Renderer:
    """Compile a template that always renders to text (a text body, a header value)."""
    if not any(marker in text for marker in _MARKERS):
        return _Constant(text)
    template = _ENV.from_string(text)
    return lambda context: template.render(**context)


def _compile_string(text: str) -> Renderer:
    if not any(marker in text for marker in _MARKERS):
        return _Constant(text)
    single = _SINGLE.match(text)
    if single is not None and "}}" not in single["expr"]:
        expression = _ENV.compile_expression(single["expr"].strip(), undefined_to_none=True)
        return lambda context: jsonable(expression(**context))
    return compile_text(text)


def compile_value(value: Any) -> Renderer:
    """Compile the templates in a JSON-like value; raises ``TemplateError`` on bad syntax."""
    if isinstance(value, str):
        return _compile_string(value)
    if isinstance(value, Mapping):
        items = [(str(key), compile_value(item)) for key, item in value.items()]
        if all(isinstance(render, _Constant) for _, render in items):
            return _Constant(dict(value))
        return lambda context: {key: render(context) for key, render in items}
    if isinstance(value, list):
        parts = [compile_value(item) for item in value]
        if all(isinstance(render, _Constant) for render in parts):
            return _Constant(list(value))
        return lambda context: [render(context) for render in parts]
    return _Constant(value)
