"""Matching requests: path globs and the optional ``when`` conditions of a rule."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.sandbox.recording import RecordedRequest

_GLOB = re.compile(r"(\*\*|\*)")
_MISSING = object()


def glob_pattern(path: str) -> re.Pattern[str]:
    """``*`` matches within one path segment, ``**`` across segments; each is a group."""
    parts = []
    for piece in _GLOB.split(path):
        if piece == "**":
            parts.append("(.*)")
        elif piece == "*":
            parts.append("([^/]*)")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


def lookup(value: Any, dotted: str) -> Any:
    """``attendee.email`` or ``attendees.0.email`` in a JSON value; a sentinel when absent."""
    for part in dotted.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _text_equal(actual: Any, expected: Any) -> bool:
    if actual is None:
        return False
    values = actual if isinstance(actual, list) else [actual]
    return str(expected) in [str(v) for v in values]


def conditions_hold(when: Mapping[str, Any], request: RecordedRequest) -> bool:
    """Every condition holds: body substring, JSON fields equal, form/query/header values."""
    needle = when.get("body_contains")
    if needle is not None and needle not in request.body:
        return False
    for dotted, expected in (when.get("json") or {}).items():
        if lookup(request.json, str(dotted)) != expected:
            return False
    form = request.form or {}
    for name, expected in (when.get("form") or {}).items():
        if not _text_equal(form.get(str(name)), expected):
            return False
    for name, expected in (when.get("query") or {}).items():
        if not _text_equal([v for k, v in request.query if k == name] or None, expected):
            return False
    for name, expected in (when.get("headers") or {}).items():
        if not _text_equal(request.headers.get(str(name).lower()), expected):
            return False
    return True
