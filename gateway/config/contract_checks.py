"""Lint against the event contracts: each side of a normalised event is checked.

- a mapping rule that emits a declared event provides every required field and no other;
- a flow, its conditions and actions, and the templates its messages use, read only declared
  fields; reading an optional one where a value is needed, without a default, is a warning;
- the declared examples' mapped output has each field's type (`config.examples` runs them
  through the pipeline, with the contracts).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.config.contracts import Contract, Contracts
from gateway.config.templates import TEMPLATE_KEYS, variants
from gateway.config.yamlsource import Document
from gateway.diagnostics import Diagnostic
from gateway.expr.expressions import FieldRead, data_reads, is_template

YamlPath = tuple[str | int, ...]


def build_contracts(typed: Sequence[tuple[Document, str]], valid: set[int]) -> Contracts:
    """The contracts of the `kind: event` documents whose schema holds (ids in `valid`)."""
    return {
        str(doc.data["name"]): Contract.build(doc.data, doc.path)
        for doc, kind in typed
        if kind == "event" and id(doc) in valid
    }


def check_contracts(
    typed: Sequence[tuple[Document, str]], contracts: Contracts, templates_dir: Path | None
) -> Iterator[Diagnostic]:
    if not contracts:
        return  # no catalogue: nothing to check against
    for doc, kind in typed:
        if kind == "integration":
            yield from _mappings(doc, contracts)
        elif kind == "flow":
            yield from _flow(doc, contracts, templates_dir)


def _hint(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _rules(doc: Document) -> Iterator[tuple[YamlPath, Mapping[str, Any]]]:
    webhook = doc.data.get("webhook")
    declared = webhook.get("map") if isinstance(webhook, dict) else None
    if not isinstance(declared, dict):
        return
    for event_type, rules in declared.items():
        base: YamlPath = ("webhook", "map", str(event_type))
        if isinstance(rules, dict):
            yield base, rules
        elif isinstance(rules, list):
            for index, rule in enumerate(rules):
                if isinstance(rule, dict):
                    yield (*base, index), rule


def _mappings(doc: Document, contracts: Contracts) -> Iterator[Diagnostic]:
    for path, rule in _rules(doc):
        emit = rule.get("emit")
        if not isinstance(emit, str):
            continue
        contract = contracts.get(emit)
        if contract is None:
            yield doc.diagnostic(
                (*path, "emit"),
                f"event '{emit}' has no contract: declare it in a `kind: event` document"
                f"{_hint(emit, sorted(contracts))}",
                "event-undeclared",
                severity="warning",
            )
            continue
        data = rule.get("data")
        data = data if isinstance(data, dict) else {}
        fields = sorted(contract.fields)
        for key in data:
            if key not in contract.fields:
                yield doc.diagnostic(
                    (*path, "data", key),
                    f"'{key}' is not a field of {emit}{_hint(str(key), fields)}"
                    f" (its fields: {', '.join(fields)})",
                    "contract-undeclared-field",
                    key=True,
                )
        missing = sorted(contract.required - set(data))
        if missing:
            yield doc.diagnostic(
                (*path, "data") if "data" in rule else path,
                f"{emit} requires {', '.join(missing)}, which this mapping does not provide",
                "contract-missing-field",
            )


def _strings(value: Any, path: YamlPath) -> Iterator[tuple[YamlPath, str]]:
    if isinstance(value, str):
        if is_template(value):
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _tested(value: Any) -> frozenset[str]:
    """The fields a condition reads: under it, they need no default."""
    if not isinstance(value, str):
        return frozenset()
    return frozenset(read.field for read in data_reads(value))


def _flow(doc: Document, contracts: Contracts, templates_dir: Path | None) -> Iterator[Diagnostic]:
    contract = contracts.get(str(doc.data.get("event")))
    if contract is None:
        return  # an undeclared event: the event-not-emitted and event-undeclared checks say it
    flow_guards = _tested(doc.data.get("condition"))
    for path, text in _strings(doc.data.get("condition"), ("condition",)):
        yield from _reads(doc, path, data_reads(text), contract, needed=False)
    actions = doc.data.get("actions")
    for index, action in enumerate(actions if isinstance(actions, list) else []):
        if not isinstance(action, dict):
            continue
        guards = flow_guards | _tested(action.get("condition"))
        for path, text in _strings(action, ("actions", index)):
            condition = path[-1] == "condition"
            reads = data_reads(text, frozenset() if condition else guards)
            yield from _reads(doc, path, reads, contract, needed=not condition)
        yield from _templates(doc, ("actions", index), action, guards, contract, templates_dir)


def _templates(
    doc: Document,
    path: YamlPath,
    action: Mapping[str, Any],
    guards: frozenset[str],
    contract: Contract,
    templates_dir: Path | None,
) -> Iterator[Diagnostic]:
    if templates_dir is None:
        return
    for kind in ("send", "schedule"):
        inner = action.get(kind)
        if kind == "schedule" and isinstance(inner, dict):
            inner = (inner.get("action") or {}).get("send")
            where: YamlPath = (*path, "schedule", "action", "send")
        else:
            where = (*path, "send")
        if not isinstance(inner, dict):
            continue
        for key in TEMPLATE_KEYS:
            name = inner.get(key)
            if not isinstance(name, str):
                continue
            # every translation a send may choose reads what the base template may
            for found in variants(templates_dir, name).values():
                try:
                    source = (templates_dir / found).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue  # a missing template is reported by the reference checks
                reads = data_reads(source, guards)
                yield from _reads(doc, (*where, key), reads, contract, needed=True, template=found)
    # a call's follow-ups and a task's fallbacks send on the same event (under their own
    # conditions, once the action's held)
    call = action.get("call")
    nested = [((*path, "call", "then"), call.get("then") if isinstance(call, dict) else None)]
    nested.append(((*path, "on_failure"), action.get("on_failure")))
    for where, listed in nested:
        for index, each in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(each, dict):
                inner_guards = guards | _tested(each.get("condition"))
                yield from _templates(
                    doc, (*where, index), each, inner_guards, contract, templates_dir
                )


def _reads(
    doc: Document,
    path: YamlPath,
    reads: Sequence[FieldRead],
    contract: Contract,
    *,
    needed: bool,
    template: str | None = None,
) -> Iterator[Diagnostic]:
    where = f"template {template} reads" if template else "reads"
    fields = sorted(contract.fields)
    seen: set[tuple[str, bool]] = set()
    for read in reads:
        if (read.field, read.guarded) in seen:
            continue
        seen.add((read.field, read.guarded))
        declared = contract.fields.get(read.field)
        if declared is None:
            yield doc.diagnostic(
                path,
                f"{where} event.data.{read.field}, which {contract.name} does not declare"
                f"{_hint(read.field, fields)}",
                "contract-undeclared-read",
            )
        elif needed and not read.guarded and not declared.required:
            yield doc.diagnostic(
                path,
                f"{where} event.data.{read.field}, which is optional in {contract.name}: it may"
                " be null here; test it in a condition or give it a default"
                " (| default(''))",
                "contract-optional-read",
                severity="warning",
            )
