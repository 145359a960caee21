"""Declared answers: which request a rule matches, and what it answers.

A rule, as written in YAML or posted to ``/_sandbox/rules``::

    - name: twilio-send-sms            # optional; shown in the recorded requests
      method: POST                     # default: any method
      path: /twilio/2010-04-01/Accounts/*/Messages.json   # or path_regex: '^/twilio/.*'
      when:                            # optional; every condition must hold
        body_contains: "Hello"
        json: {attendee.email: ada@example.com}   # dotted paths, equality
        form: {To: "+14155550123"}
        query: {status: upcoming}
        headers: {cal-api-version: "2024-08-13"}
      status: 201
      json: {sid: "SM{{ uuid_hex }}", to: "{{ request.form.To }}"}   # or text: "..."
      content_type: application/json   # default: by json/text
      headers: {Retry-After: "2"}
      delay: 0.2                       # seconds, or a duration: 200ms, 2s
      times: 2                         # answer twice, then fall through to the next rule
      fault: drop                      # drop: close without an answer; truncate: cut the body

``path`` is exact unless it holds ``*`` (any text within one segment) or ``**`` (any text,
``/`` included).
"""

from __future__ import annotations

import difflib
import json as jsonlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.durations import parse_duration
from gateway.errors import UsageError
from gateway.sandbox.matching import conditions_hold, glob_pattern
from gateway.sandbox.recording import RecordedRequest
from gateway.sandbox.templating import Renderer, TemplateError, compile_text, compile_value

FAULTS = ("drop", "truncate")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
WHEN_KEYS = ("body_contains", "json", "form", "query", "headers")


class RuleError(UsageError, ValueError):
    """A rule that cannot be used. Messages from loading name the file and the rule's index."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional(kind: type) -> Callable[[Any], bool]:
    return lambda value: value is None or isinstance(value, kind)


_CHECKS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    (
        "path",
        lambda v: v is None or (isinstance(v, str) and v.startswith("/")),
        "a path starting with '/'",
    ),
    ("path_regex", _optional(str), "a regular expression"),
    (
        "method",
        lambda v: isinstance(v, str) and (v == "*" or v.upper() in METHODS),
        f"one of {', '.join(METHODS)} or '*'",
    ),
    ("status", lambda v: _is_int(v) and 100 <= v <= 599, "an HTTP status between 100 and 599"),
    ("text", _optional(str), "a string"),
    ("content_type", _optional(str), "a string"),
    ("headers", _optional(Mapping), "a mapping of header names to values"),
    ("times", lambda v: v is None or (_is_int(v) and v >= 1), "a whole number of at least 1"),
    ("fault", lambda v: v is None or v in FAULTS, f"one of {', '.join(FAULTS)}"),
    ("name", _optional(str), "a string"),
)


@dataclass(frozen=True, kw_only=True, eq=False)
class ResponseRule:
    """One declared answer. Build it with keywords, or from a mapping with ``from_dict``."""

    path: str | None = None
    path_regex: str | None = None
    method: str = "*"
    when: Mapping[str, Any] | None = None
    status: int = 200
    json: Any = None
    text: str | None = None
    content_type: str | None = None
    headers: Mapping[str, Any] | None = None
    delay: float | str = 0.0
    times: int | None = None
    fault: str | None = None
    name: str | None = None

    _pattern: re.Pattern[str] | None = field(init=False, repr=False, default=None)
    _delay: float = field(init=False, repr=False, default=0.0)
    _body: Renderer | None = field(init=False, repr=False, default=None)
    _headers: list[tuple[str, Renderer]] = field(init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.path_regex is None):
            raise RuleError("give exactly one of 'path' (exact or glob) and 'path_regex'")
        for key, ok, expected in _CHECKS:
            value = getattr(self, key)
            if not ok(value):
                raise RuleError(f"{key}: expected {expected}, got {value!r}")
        if self.json is not None and self.text is not None:
            raise RuleError("give at most one of 'json' and 'text'")
        check_when(self.when)
        set_ = object.__setattr__
        set_(self, "method", self.method.upper())
        try:
            set_(self, "_delay", parse_duration(self.delay))
        except (ValueError, TypeError):
            raise RuleError(
                f"delay: expected seconds or a duration like 200ms or 2s, got {self.delay!r}"
            ) from None
        if self.path_regex is not None:
            try:
                set_(self, "_pattern", re.compile(self.path_regex))
            except re.error as exc:
                raise RuleError(f"path_regex: {self.path_regex!r} is not a regex: {exc}") from None
        elif self.path is not None and "*" in self.path:
            set_(self, "_pattern", glob_pattern(self.path))
        try:
            if self.json is not None:
                jsonlib.dumps(self.json)
                set_(self, "_body", compile_value(self.json))
            elif self.text is not None:
                set_(self, "_body", compile_text(self.text))
            headers = [(str(k), compile_text(str(v))) for k, v in (self.headers or {}).items()]
            set_(self, "_headers", headers)
        except TemplateError as exc:
            raise RuleError(f"template error: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise RuleError(f"json: not a JSON value: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any) -> ResponseRule:
        if not isinstance(data, Mapping):
            raise RuleError(f"expected a mapping (a rule), got {type(data).__name__}")
        known = [f for f in cls.__dataclass_fields__ if not f.startswith("_")]
        for key in data:
            if key not in known:
                raise RuleError(f"unknown key {key!r}{did_you_mean(str(key), known)}")
        return cls(**{str(k): v for k, v in data.items()})

    @property
    def label(self) -> str:
        return self.name or f"{self.method} {self.path or self.path_regex}"

    @property
    def delay_seconds(self) -> float:
        return self._delay

    def to_dict(self) -> dict[str, Any]:
        """The rule as it would be written (fields left at their defaults omitted)."""
        out: dict[str, Any] = {}
        for name, spec in self.__dataclass_fields__.items():
            value = getattr(self, name)
            if not name.startswith("_") and value != spec.default:
                out[name] = dict(value) if isinstance(value, Mapping) else value
        return out

    def match(self, request: RecordedRequest) -> list[str] | None:
        """The texts the path's wildcards (or regex groups) matched, or None: no match."""
        if self.method != "*" and self.method != request.method:
            return None
        if self._pattern is None:
            if request.path != self.path:
                return None
            wildcards: list[str] = []
        else:
            found = self._pattern.fullmatch(request.path)
            if found is None:
                return None
            wildcards = [g or "" for g in found.groups()]
        if self.when and not conditions_hold(self.when, request):
            return None
        return wildcards

    def groups(self, path: str) -> dict[str, str]:
        """The named groups of ``path_regex`` in ``path`` (for templates: ``groups.uid``)."""
        if self.path_regex is None or self._pattern is None:
            return {}
        found = self._pattern.fullmatch(path)
        return {k: v or "" for k, v in found.groupdict().items()} if found else {}

    def answer(self, context: Mapping[str, Any]) -> Answer:
        """Render the answer; template errors surface as jinja2 or value errors."""
        headers = [(k, str(render(context))) for k, render in self._headers]
        names = {k.lower() for k, _ in headers}
        body = b""
        content_type = self.content_type
        if self._body is not None:
            value = self._body(context)
            if self.json is not None:
                body = jsonlib.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
                content_type = content_type or "application/json"
            else:
                body = str(value).encode()
                content_type = content_type or "text/plain; charset=utf-8"
        if content_type and "content-type" not in names:
            headers.append(("content-type", content_type))
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        raw = [(k, v) for k, v in raw if k != b"content-length"]
        raw.append((b"content-length", str(len(body)).encode()))
        return Answer(self.status, raw, body)


def did_you_mean(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"


def check_when(when: Any) -> None:
    if when is None:
        return
    if not isinstance(when, Mapping):
        raise RuleError(f"when: expected a mapping with keys {', '.join(WHEN_KEYS)}, got {when!r}")
    for key, value in when.items():
        if key not in WHEN_KEYS:
            raise RuleError(f"when: unknown key {key!r}{did_you_mean(str(key), WHEN_KEYS)}")
        expected, kind = ("a string", str) if key == "body_contains" else ("a mapping", Mapping)
        if not isinstance(value, kind):
            raise RuleError(f"when.{key}: expected {expected}, got {value!r}")
