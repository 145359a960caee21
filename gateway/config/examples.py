"""Declared examples run through their integration's mapping, the way real events will be.

A field a mapping reads that the example lacks is reported at the expression that reads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from jinja2 import UndefinedError

from gateway.config.yamlsource import Document
from gateway.diagnostics import Diagnostic
from gateway.expr.expressions import RENDER_ERRORS, analyse, compile_expression, is_template

Path = tuple[str | int, ...]


_NO_ATTRIBUTE = re.compile(r"has no attribute '(?P<key>[^']*)'|'(?P<name>[^']*)' is undefined")


class _Failed(Exception):
    def __init__(self, path: Path, reason: str, rule: str = "example-error") -> None:
        self.path = path
        self.reason = reason
        self.rule = rule


def example_variables(integration: str, example: dict[str, Any]) -> dict[str, Any]:
    """The variables webhook expressions see for a declared example."""
    body: Any = example.get("body")
    if body is None and isinstance(example.get("form"), dict):
        body = dict(example["form"])
    headers = {str(k).lower(): str(v) for k, v in (example.get("headers") or {}).items()}
    return {
        "body": body if body is not None else {},
        "headers": headers,
        "query": dict(example.get("query") or {}),
        "integration": integration,
        "tenant": "default",
    }


def _evaluate(source: Any, path: Path, variables: dict[str, Any]) -> Any:
    if not is_template(source):
        return source
    free, problems = analyse(source)
    if problems or not free <= variables.keys():
        return None  # reported by the expression checks already
    try:
        return compile_expression(source).render(variables)
    except UndefinedError as exc:
        match = _NO_ATTRIBUTE.search(str(exc))
        key = (match["key"] or match["name"]) if match else str(exc)
        raise _Failed(
            path, f"it has no field '{key}', which this expression reads", "example-missing-field"
        ) from exc
    except RENDER_ERRORS as exc:
        raise _Failed(path, str(exc)) from exc


def _evaluate_tree(value: Any, path: Path, variables: dict[str, Any]) -> Iterator[_Failed]:
    """Every expression in a nested value, evaluated on its own so each failure has a place."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _evaluate_tree(item, (*path, key), variables)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _evaluate_tree(item, (*path, index), variables)
    else:
        try:
            _evaluate(value, path, variables)
        except _Failed as failed:
            yield failed


def _mappings(webhook: dict[str, Any], event_type: Any) -> list[tuple[Path, dict[str, Any]]]:
    mapping = (
        (webhook.get("map") or {}).get(str(event_type))
        if isinstance(webhook.get("map"), dict)
        else None
    )
    if isinstance(mapping, dict):
        return [(("webhook", "map", str(event_type)), mapping)]
    if isinstance(mapping, list):
        return [
            (("webhook", "map", str(event_type), i), m)
            for i, m in enumerate(mapping)
            if isinstance(m, dict)
        ]
    return []


def _check_one(doc: Document, name: str, example: dict[str, Any]) -> Iterator[_Failed]:
    data = doc.data
    webhook: dict[str, Any] = data["webhook"] if isinstance(data.get("webhook"), dict) else {}
    variables = example_variables(str(data.get("name")), example)
    items: Any = [variables["body"]]
    if "split" in webhook:
        items = _evaluate(webhook["split"], ("webhook", "split"), variables)
        if not isinstance(items, list):
            raise _Failed(("webhook", "split"), f"gives {type(items).__name__}, expected a list")
    event: dict[str, Any] = webhook["event"] if isinstance(webhook.get("event"), dict) else {}
    for item in items:
        item_vars = {**variables, "body": item}
        if "id" in event:
            yield from _evaluate_tree(event["id"], ("webhook", "event", "id"), item_vars)
        event_type = _evaluate(event.get("type"), ("webhook", "event", "type"), item_vars)
        for path, mapping in _mappings(webhook, event_type):
            if "condition" in mapping:
                try:
                    if not _evaluate(mapping["condition"], (*path, "condition"), item_vars):
                        continue  # this example does not take this mapping: data is not read
                except _Failed as failed:
                    yield failed
                    continue
            yield from _evaluate_tree(mapping.get("data"), (*path, "data"), item_vars)


def check_examples(integrations: Sequence[Document]) -> Iterator[Diagnostic]:
    for doc in integrations:
        examples = doc.data.get("examples")
        if not isinstance(examples, dict) or not isinstance(doc.data.get("webhook"), dict):
            continue
        for name, example in examples.items():
            if not isinstance(example, dict) or example.get("handshake"):
                continue
            failures: list[_Failed] = []
            try:
                failures.extend(_check_one(doc, name, example))
            except _Failed as failed:
                failures.append(failed)
            for failure in failures:
                yield doc.diagnostic(
                    failure.path, f"example '{name}': {failure.reason}", failure.rule
                )
