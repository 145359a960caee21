"""The JSON Schemas in ``schemas/``: one per document kind, and what their errors mean in words."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

from gateway import resources
from gateway.config.yamlsource import Document
from gateway.diagnostics import Diagnostic
from gateway.durations import is_duration

KINDS = ("integration", "flow", "tenant", "event")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
SIGNED_PLACEHOLDERS = ("body", "timestamp", "url", "id", "method", "path", "listed_headers")
_BODY_PATH = re.compile(r"^[A-Za-z0-9_@$.-]+(\[\*\])?(\.[A-Za-z0-9_@$-]+(\[\*\])?)*$")


def schemas_dir() -> Path:
    configured = os.environ.get("GATEWAY_SCHEMAS_DIR")
    if configured:
        return Path(configured)
    return resources.schemas_dir()


def signed_template_problem(template: str) -> str | None:
    for match in _PLACEHOLDER.finditer(template):
        name = match.group(1)
        if name in SIGNED_PLACEHOLDERS or (name.startswith("header:") and len(name) > 7):
            continue
        if name.startswith("body:") and len(name) > 5:
            continue
        known = ", ".join("{" + p + "}" for p in SIGNED_PLACEHOLDERS)
        return f"unknown placeholder {{{name}}}: expected {known}, {{header:Name}} or {{body:path}}"
    return None


def _cron_ok(value: object) -> bool:
    if not isinstance(value, str):
        return True
    fields = value.split()
    allowed = re.compile(r"^[0-9*/,\-A-Za-z?LW#]+$")
    return len(fields) == 5 and all(allowed.match(f) for f in fields)


FORMATS: dict[str, Any] = {
    "duration": lambda v: not isinstance(v, str) or is_duration(v),
    "signed-duration": lambda v: not isinstance(v, str) or is_duration(v, signed=True),
    "signed-template": lambda v: not isinstance(v, str) or signed_template_problem(v) is None,
    "body-path": lambda v: not isinstance(v, str) or bool(_BODY_PATH.match(v)),
    "cron": _cron_ok,
}
_BASE = "file:///gateway-schemas/"


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    for name, check in FORMATS.items():
        checker.checks(name)(check)
    return checker


@cache
def _schemas() -> dict[str, Any]:
    folder = schemas_dir()
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.schema.json"))}


@cache
def validators() -> dict[str, Draft202012Validator]:
    """The reference validators (Python jsonschema): they explain what is wrong, and where."""
    loaded = _schemas()
    registry: Registry[Any] = Registry().with_resources(
        (name, Resource.from_contents(schema)) for name, schema in loaded.items()
    )
    checker = _format_checker()
    return {
        kind: Draft202012Validator(
            loaded[f"{kind}.schema.json"], registry=registry, format_checker=checker
        )
        for kind in KINDS
    }


@cache
def fast_validators() -> dict[str, Any]:
    """Compiled (Rust) validators of the same schemas: they only say whether a document is
    valid, in microseconds, so valid documents (the common case) skip the slow path."""
    loaded = _schemas()
    registry = jsonschema_rs.Registry([(_BASE + name, schema) for name, schema in loaded.items()])
    return {
        kind: jsonschema_rs.validator_for(
            loaded[f"{kind}.schema.json"],
            registry=registry,
            base_uri=_BASE + f"{kind}.schema.json",
            formats=FORMATS,
            validate_formats=True,
        )
        for kind in KINDS
    }


# ---- turning jsonschema's errors into diagnostics a person can act on ----------------------

_FORMAT_TEXT = {
    "duration": ("a duration like 500ms, 30s, 5m, 1h or 2d", "invalid-duration"),
    "signed-duration": ("an offset like -24h, 30m or -1d", "invalid-duration"),
    "cron": ("a cron line of five fields, like */15 * * * *", "schema-value"),
    "body-path": (
        "a dotted path with [*] for every item, like value[*].clientState",
        "schema-value",
    ),
}


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The errors worth showing: alternatives collapsed to their best branch or a summary."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        if isinstance(error.schema, dict) and "x-expected" in error.schema:
            yield error
            return
        branch = best_match(error.context)
        yield from _leaves(branch)
        return
    yield error


def _where(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the document"


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _show(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _diagnose(doc: Document, error: ValidationError) -> Iterator[Diagnostic]:
    path = tuple(error.absolute_path)
    where = _where(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    validator = error.validator
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        for key in error.instance:
            if key in schema.get("properties", {}):
                continue
            if any(re.match(p, key) for p in schema.get("patternProperties", {})):
                continue
            listing = ", ".join(allowed)
            yield doc.diagnostic(
                (*path, key),
                f"unknown key '{key}' in {where}{_suggest(key, allowed)} (allowed: {listing})",
                "schema-unknown-key",
                key=True,
            )
        return
    if validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else str(error.validator_value)
        yield doc.diagnostic(path, f"{where}: missing required key '{name}'", "schema-required")
        return
    if validator == "enum":
        options = [str(o) for o in error.validator_value]  # type: ignore[union-attr]
        hint = _suggest(str(error.instance), options)
        yield doc.diagnostic(
            path,
            f"{where}: {_show(error.instance)} is not allowed; expected one of "
            f"{', '.join(options)}{hint}",
            "schema-enum",
        )
        return
    if validator == "const":
        expected = error.validator_value
        yield doc.diagnostic(
            path,
            f"{where}: {_show(error.instance)} is not allowed; expected {expected!r}",
            "schema-enum",
        )
        return
    if validator == "type":
        expected = error.validator_value
        kind = " or ".join(expected) if isinstance(expected, list) else expected
        yield doc.diagnostic(
            path,
            f"{where}: {_show(error.instance)} has the wrong type; expected {kind}",
            "schema-type",
        )
        return
    if validator == "format":
        fmt = str(error.validator_value)
        if fmt == "signed-template":
            detail = signed_template_problem(str(error.instance)) or "invalid"
            yield doc.diagnostic(path, f"{where}: {detail}", "verify-template")
            return
        text, rule = _FORMAT_TEXT.get(fmt, (fmt, "schema-value"))
        yield doc.diagnostic(
            path, f"{where}: {_show(error.instance)} does not parse; expected {text}", rule
        )
        return
    if "x-expected" in schema:
        yield doc.diagnostic(
            path,
            f"{where}: {_show(error.instance)} is not valid; expected {schema['x-expected']}",
            schema.get("x-rule", "schema-value"),
        )
        return
    yield doc.diagnostic(path, f"{where}: {error.message}", "schema-value")


def validate(doc: Document, kind: str) -> list[Diagnostic]:
    if fast_validators()[kind].is_valid(doc.data):
        return []
    found: list[Diagnostic] = []
    seen: set[tuple[int, int, str]] = set()
    for error in validators()[kind].iter_errors(doc.data):
        for leaf in _leaves(error):
            for diag in _diagnose(doc, leaf):
                if (diag.line, diag.col, diag.message) not in seen:
                    seen.add((diag.line, diag.col, diag.message))
                    found.append(diag)
    return found
