"""Checks across documents: names that must resolve, names that must be unique."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError

from gateway.config.templates import TEMPLATE_KEYS, folder_problems, variants
from gateway.config.yamlsource import Document
from gateway.diagnostics import Diagnostic
from gateway.expr.expressions import ENV, analyse, is_template
from gateway.locales import locale_code

TEMPLATE_VARIABLES = frozenset({"event", "tenant", "now", "data", "to", "subject", "locale"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _hint(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class _Index:
    """What the integration documents declare, by name."""

    def __init__(self, integrations: Sequence[Document]) -> None:
        self.integrations: dict[str, Document] = {}
        self.emitted: set[str] = set()
        for doc in integrations:
            name = doc.data.get("name")
            if isinstance(name, str):
                self.integrations.setdefault(name, doc)
            webhook = _dict(doc.data.get("webhook"))
            for mapping in _dict(webhook.get("map")).values():
                for item in mapping if isinstance(mapping, list) else [mapping]:
                    if isinstance(item, dict) and isinstance(item.get("emit"), str):
                        self.emitted.add(item["emit"])
            for function in _dict(doc.data.get("functions")).values():
                emit = _dict(_dict(function).get("emit"))
                if isinstance(emit.get("event"), str):
                    self.emitted.add(emit["event"])
            for sync in _dict(doc.data.get("syncs")).values():
                for event in _dict(_dict(sync).get("emit")).values():
                    if isinstance(event, str):
                        self.emitted.add(event)

    def section(self, integration: str, key: str) -> dict[str, Any]:
        doc = self.integrations[integration]
        if key == "endpoints":
            return _dict(_dict(doc.data.get("api")).get("endpoints"))
        return _dict(doc.data.get(key))


def _duplicates(typed: Sequence[tuple[Document, str]]) -> Iterator[Diagnostic]:
    first: dict[tuple[str, str], Document] = {}
    for doc, kind in typed:
        name = doc.data.get("name")
        if not isinstance(name, str):
            continue
        if (kind, name) in first:
            other = first[(kind, name)]
            line = other.where(("name",))[0]
            yield doc.diagnostic(
                ("name",),
                f"{kind} name '{name}' is already used by {other.path}:{line}",
                "duplicate-name",
            )
        else:
            first[(kind, name)] = doc


def _integration_checks(doc: Document) -> Iterator[Diagnostic]:
    data = doc.data
    endpoints = _dict(_dict(data.get("api")).get("endpoints"))
    for section in ("channels", "syncs"):
        for name, spec in _dict(data.get(section)).items():
            endpoint = _dict(spec).get("endpoint")
            if isinstance(endpoint, str) and endpoint not in endpoints:
                yield doc.diagnostic(
                    (section, name, "endpoint"),
                    f"endpoint '{endpoint}' is not declared in api.endpoints"
                    f"{_hint(endpoint, list(endpoints))}",
                    "ref-endpoint",
                )
    webhook = data.get("webhook")
    keys = _dict(_dict(_dict(webhook).get("verify")).get("keys"))
    fetched_from = keys.get("endpoint")
    if isinstance(fetched_from, str) and fetched_from not in endpoints:
        yield doc.diagnostic(
            ("webhook", "verify", "keys", "endpoint"),
            f"endpoint '{fetched_from}' is not declared in api.endpoints"
            f"{_hint(fetched_from, list(endpoints))}",
            "ref-endpoint",
        )
    if isinstance(webhook, dict) and "verify" not in webhook:
        yield doc.diagnostic(
            ("webhook",),
            "webhook has no verify section: requests would be accepted unverified; declare a "
            "scheme, or `verify: {scheme: none, reason: ...}` to accept that explicitly",
            "webhook-unverified",
        )


class _FlowChecker:
    def __init__(self, index: _Index, templates_dir: Path | None) -> None:
        self.index = index
        self.templates_dir = templates_dir
        self.checked_templates: set[Path] = set()

    def flow(self, doc: Document) -> Iterator[Diagnostic]:
        event = doc.data.get("event")
        if isinstance(event, str) and event not in self.index.emitted:
            yield doc.diagnostic(
                ("event",),
                f"no integration emits '{event}', so this flow never runs"
                f"{_hint(event, sorted(self.index.emitted))}",
                "event-not-emitted",
                severity="warning",
            )
        actions = doc.data.get("actions")
        for i, action in enumerate(actions if isinstance(actions, list) else []):
            yield from self.action(doc, ("actions", i), _dict(action))

    def action(
        self, doc: Document, path: tuple[str | int, ...], action: dict[str, Any]
    ) -> Iterator[Diagnostic]:
        if "send" in action:
            yield from self.send(doc, (*path, "send"), _dict(action["send"]))
        if "call" in action:
            yield from self.call(doc, (*path, "call"), _dict(action["call"]))
        schedule = _dict(action.get("schedule"))
        if schedule:
            yield from self.action(
                doc, (*path, "schedule", "action"), _dict(schedule.get("action"))
            )
        # a call's follow-ups and a task's fallbacks are actions too
        nested = [(*path, "call", "then"), (*path, "on_failure")]
        lists = [_dict(action.get("call")).get("then"), action.get("on_failure")]
        for where, listed in zip(nested, lists, strict=True):
            for i, each in enumerate(listed if isinstance(listed, list) else []):
                yield from self.action(doc, (*where, i), _dict(each))

    def _resolve(
        self, doc: Document, path: tuple[str | int, ...], ref: Any, section: str, what: str
    ) -> dict[str, Any] | Diagnostic | None:
        """The declared item `ref` (INTEGRATION.NAME) names, or why it does not resolve."""
        if not isinstance(ref, str) or "." not in ref:
            return None  # the schema reports the shape
        integration, name = ref.split(".", 1)
        if integration not in self.index.integrations:
            known = sorted(self.index.integrations)
            return doc.diagnostic(
                path,
                f"integration '{integration}' is not declared{_hint(integration, known)}",
                "ref-integration",
            )
        declared = self.index.section(integration, section)
        if name not in declared:
            listing = ", ".join(sorted(declared)) or "none"
            return doc.diagnostic(
                path,
                f"{integration} declares no {what} '{name}'{_hint(name, sorted(declared))}"
                f" ({what}s: {listing})",
                f"ref-{what}",
            )
        return _dict(declared[name])

    def send(
        self, doc: Document, path: tuple[str | int, ...], send: dict[str, Any]
    ) -> Iterator[Diagnostic]:
        found = self._resolve(doc, (*path, "channel"), send.get("channel"), "channels", "channel")
        if isinstance(found, Diagnostic):
            yield found
        for key in TEMPLATE_KEYS:
            name = send.get(key)
            if isinstance(name, str):
                yield from self.template(doc, (*path, key), name)
        if "subject" in send and "subject_template" in send:
            yield doc.diagnostic(
                (*path, "subject_template"),
                "give subject or subject_template, not both",
                "send-subject",
            )
        locale = send.get("locale")
        if isinstance(locale, str) and not is_template(locale) and locale_code(locale) is None:
            yield doc.diagnostic(
                (*path, "locale"),
                f"locale '{locale}' is not a locale code CLDR knows (de, en, de-AT, ...)",
                "send-locale",
            )
        languages = _dict(send.get("whatsapp_template")).get("languages")
        for i, language in enumerate(languages if isinstance(languages, list) else []):
            if isinstance(language, str) and locale_code(language) != language:
                code = locale_code(language)
                yield doc.diagnostic(
                    (*path, "whatsapp_template", "languages", i),
                    f"language '{language}' is not a locale code CLDR knows (de, en, pt_BR, ...)"
                    if code is None
                    else f"write the language '{language}' as '{code}', as CLDR and WhatsApp do",
                    "send-locale",
                )

    def call(
        self, doc: Document, path: tuple[str | int, ...], call: dict[str, Any]
    ) -> Iterator[Diagnostic]:
        found = self._resolve(
            doc, (*path, "endpoint"), call.get("endpoint"), "endpoints", "endpoint"
        )
        if not isinstance(found, dict):
            if found is not None:
                yield found
            return
        given = {**_dict(found.get("params")), **_dict(call.get("params"))}
        for name in _PLACEHOLDER.findall(str(found.get("path", ""))):
            if name not in given:
                yield doc.diagnostic(
                    (*path, "endpoint"),
                    f"endpoint path {found.get('path')!r} needs params.{name}",
                    "ref-param",
                )
        if "idempotency_key" in call and not found.get("idempotency_header"):
            yield doc.diagnostic(
                (*path, "idempotency_key"),
                f"endpoint '{call.get('endpoint')}' declares no idempotency_header to carry"
                " idempotency_key",
                "call-idempotency",
            )

    def template(
        self, doc: Document, path: tuple[str | int, ...], name: str
    ) -> Iterator[Diagnostic]:
        if self.templates_dir is None:
            return
        if not (self.templates_dir / name).is_file():
            yield doc.diagnostic(
                path, f"template '{name}' not found in {self.templates_dir}", "ref-template"
            )
            return
        # the base template and each translation a send may choose (config.templates.resolve)
        for found in variants(self.templates_dir, name).values():
            file = self.templates_dir / found
            if file not in self.checked_templates:  # a file's own problems are reported once
                self.checked_templates.add(file)
                yield from _template_file(file)


def _template_file(file: Path) -> Iterator[Diagnostic]:
    source = file.read_text(encoding="utf-8")
    try:
        ENV.parse(source)
    except TemplateSyntaxError as exc:
        yield Diagnostic(
            str(file),
            exc.lineno or 1,
            1,
            "error",
            f"template does not compile: {exc.message}",
            "jinja-syntax",
        )
        return
    free, problems = analyse(source)
    for problem in problems:
        yield Diagnostic(str(file), 1, 1, "error", problem.message, problem.rule)
    for name in sorted(free - TEMPLATE_VARIABLES):
        yield Diagnostic(
            str(file),
            1,
            1,
            "error",
            f"variable '{name}' is not available in templates"
            f"{_hint(name, sorted(TEMPLATE_VARIABLES))} "
            f"(available: {', '.join(sorted(TEMPLATE_VARIABLES))})",
            "jinja-undefined-var",
        )


def _function_checks(doc: Document, flows: _FlowChecker) -> Iterator[Diagnostic]:
    """A function's steps call declared endpoints; functions are verified with the
    integration's webhook.verify, and what they emit is mapped by its webhook."""
    functions = _dict(doc.data.get("functions"))
    if functions and not isinstance(_dict(doc.data.get("webhook")).get("verify"), dict):
        yield doc.diagnostic(
            ("functions",),
            "functions are verified with webhook.verify: declare it",
            "function-unverified",
        )
    for name, function in functions.items():
        steps = _dict(function).get("steps")
        seen: set[str] = set()
        for i, step in enumerate(steps if isinstance(steps, list) else []):
            step = _dict(step)
            yield from flows.call(
                doc, ("functions", name, "steps", i, "call"), _dict(step.get("call"))
            )
            if step.get("name") in seen:
                yield doc.diagnostic(
                    ("functions", name, "steps", i, "name"),
                    f"step name {step.get('name')!r} is used twice in function {name!r}",
                    "duplicate-name",
                )
            seen.add(str(step.get("name")))


# What a flow's `tenant_vars` may require of a tenant's setting: the test, and how it is written.
_VAR_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "boolean": (lambda v: isinstance(v, bool), "true or false, unquoted"),
    "string": (lambda v: isinstance(v, str), "a text (quote it if YAML reads it otherwise)"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "number": (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "mapping": (lambda v: isinstance(v, dict), "a mapping"),
}


def _read_vars(typed: Sequence[tuple[Document, str]]) -> dict[str, list[tuple[str, str]]]:
    """Each tenant var that flows declare in `tenant_vars`: [(flow, type)] of those reading it."""
    read: dict[str, list[tuple[str, str]]] = {}
    for doc, kind in typed:
        if kind == "flow":
            for name, wanted in _dict(doc.data.get("tenant_vars")).items():
                if wanted in _VAR_TYPES:
                    read.setdefault(str(name), []).append((str(doc.data.get("name")), wanted))
    return read


def _shown(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, list | dict):
        return "a list" if isinstance(value, list) else "a mapping"
    kind = {bool: "the boolean", str: "the string"}.get(type(value), "the number")
    return f"{kind} {json.dumps(value)}"


def _tenant_vars_checks(
    doc: Document, read: Mapping[str, list[tuple[str, str]]]
) -> Iterator[Diagnostic]:
    for name, value in _dict(doc.data.get("vars")).items():
        for flow, wanted in read.get(str(name), []):
            test, written = _VAR_TYPES[wanted]
            if not test(value):
                yield doc.diagnostic(
                    ("vars", name),
                    f"vars.{name} is {_shown(value)}; flow {flow} reads it as"
                    f" {'an' if wanted[0] in 'aeiou' else 'a'} {wanted}"
                    f" (write {written})",
                    "tenant-var-type",
                )


def _tenant_checks(doc: Document, index: _Index) -> Iterator[Diagnostic]:
    listed = doc.data.get("integrations")
    for i, name in enumerate(listed if isinstance(listed, list) else []):
        if isinstance(name, str) and name not in index.integrations:
            yield doc.diagnostic(
                ("integrations", i),
                f"integration '{name}' is not declared{_hint(name, sorted(index.integrations))}",
                "ref-integration",
            )
    locale = doc.data.get("locale")
    if isinstance(locale, str) and locale_code(locale) is None:
        yield doc.diagnostic(
            ("locale",),
            f"locale '{locale}' is not a locale code CLDR knows (de, en, de-AT, ...)",
            "tenant-locale",
        )


def _template_folder(templates_dir: Path | None) -> Iterator[Diagnostic]:
    """Files named as translations that no send could use."""
    if templates_dir is None:
        return
    for file, message, rule in folder_problems(templates_dir):
        yield Diagnostic(str(file), 1, 1, "error", message, rule)


def check_references(
    typed: Sequence[tuple[Document, str]], templates_dir: Path | None
) -> Iterator[Diagnostic]:
    index = _Index([d for d, k in typed if k == "integration"])
    flows = _FlowChecker(index, templates_dir)
    read = _read_vars(typed)
    yield from _duplicates(typed)
    yield from _template_folder(templates_dir)
    for doc, kind in typed:
        if kind == "integration":
            yield from _integration_checks(doc)
            yield from _function_checks(doc, flows)
        elif kind == "flow":
            yield from flows.flow(doc)
        elif kind == "tenant":
            yield from _tenant_checks(doc, index)
            yield from _tenant_vars_checks(doc, read)
