"""What the sandbox saw: one ``RecordedRequest`` per request to a provider path."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

Form = dict[str, str | list[str]]


@dataclass(frozen=True, kw_only=True)
class RecordedRequest:
    """A request as received. ``json`` and ``form`` are the parsed body when it is one."""

    seq: int
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: str
    json: Any = None
    form: Form | None = None
    received_at: float = 0.0
    rule: str | None = None  # the rule that answered, None for the default answer
    status: int | None = None  # the status answered, None when the connection was dropped
    fault: str | None = None

    @property
    def query_params(self) -> dict[str, str]:
        """The query as a mapping (the first value of a repeated name)."""
        params: dict[str, str] = {}
        for name, value in self.query:
            params.setdefault(name, value)
        return params

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "query": [list(pair) for pair in self.query],
            "headers": self.headers,
            "body": self.body,
            "json": self.json,
            "form": self.form,
            "received_at": self.received_at,
            "rule": self.rule,
            "status": self.status,
            "fault": self.fault,
        }


def decode_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def parse_form(text: str) -> Form:
    form: Form = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        previous = form.get(name)
        if previous is None:
            form[name] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            form[name] = [previous, value]
    return form


def parse_body(text: str, content_type: str) -> tuple[Any, Form | None]:
    """The body as JSON or as a form, by its content type (JSON also when it plainly is)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return None, parse_form(text)
    looks_json = text.lstrip()[:1] in ("{", "[")
    if media.endswith("json") or (looks_json and not media.startswith("multipart/")):
        try:
            return json.loads(text), None
        except ValueError:
            return None, None
    return None, None
