"""Declared examples run through their integration's webhook pipeline, the way real events are.

The example becomes the request `gateway simulate` sends (`example_request`), and that request
goes through the same `Pipeline` steps as ingress and the dispatcher: parse (the declared
format), split, id and type, map. A field a mapping reads that the example lacks is reported at
the expression that reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from gateway.config.contracts import NO_CONTRACTS, Contracts
from gateway.config.pipeline import (
    Failure,
    Pipeline,
    mapping_variables,
    request_variables,
)
from gateway.config.yamlsource import Document
from gateway.diagnostics import Diagnostic
from gateway.expr.expressions import analyse

EXAMPLE_TENANT = "default"


@dataclass
class OutgoingRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def example_request(example: Mapping[str, Any], url: str) -> OutgoingRequest:
    """The unsigned request a declared example describes."""
    method = str(example.get("method", "POST"))
    headers = {str(k): str(v) for k, v in (example.get("headers") or {}).items()}
    query = example.get("query") or {}
    if query:
        url += ("&" if "?" in url else "?") + urlencode(query)
    body = b""
    if "form" in example:
        body = urlencode(example["form"]).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif "body" in example:
        body = json.dumps(example["body"], separators=(",", ":")).encode()
        headers.setdefault("Content-Type", "application/json")
    return OutgoingRequest(method, url, headers, body)


class ExampleRun(NamedTuple):
    """What the pipeline made of an example: (emit, data) per event, and what failed."""

    events: list[tuple[str, Any]]
    failures: list[tuple[Failure, frozenset[str]]]  # each with the variables it could read


def run_example(pipeline: Pipeline, integration: str, example: Mapping[str, Any]) -> ExampleRun:
    """An example through every step ingress and the dispatcher take (no verification)."""
    request = example_request(example, "http://gateway.invalid/")
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
    payload = pipeline.parse(request.body)
    variables = request_variables(payload, headers, query, integration, EXAMPLE_TENANT)
    failures: list[tuple[Failure, frozenset[str]]] = []
    found: list[Failure] = []
    items = pipeline.receive(payload, variables, found)
    failures += [(f, frozenset(variables)) for f in found]
    events: list[tuple[str, Any]] = []
    for item in items:
        stored = mapping_variables(item.payload, headers, integration, EXAMPLE_TENANT)
        mapped = pipeline.map(item.type, stored)
        events += mapped.events
        failures += [(f, frozenset(stored)) for f in mapped.failures]
    return ExampleRun(events, failures)


def reportable(failure: Failure, available: frozenset[str]) -> bool:
    """Expressions that do not compile or read unknown variables, and mappings that leave out
    a required field, are reported by the static checks already: once is enough."""
    if failure.rule == "contract-missing-field":
        return False
    free, problems = analyse(failure.source)
    return not problems and free <= available


def webhook_pipeline(data: Mapping[str, Any], contracts: Contracts) -> Pipeline | None:
    """The webhook pipeline of an integration document, or None (no or a malformed webhook)."""
    webhook = data.get("webhook")
    if not isinstance(webhook, dict):
        return None
    try:
        return Pipeline.build(webhook, contracts)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # a malformed webhook section: the schema check reports it


def check_examples(
    integrations: Sequence[Document], contracts: Contracts = NO_CONTRACTS
) -> Iterator[Diagnostic]:
    """Each declared example through its pipeline; with `contracts`, its mapped output
    checked against them (a missing required value, a value of the wrong type)."""
    for doc in integrations:
        examples = doc.data.get("examples")
        pipeline = webhook_pipeline(doc.data, contracts)
        if not isinstance(examples, dict) or pipeline is None:
            continue
        for name, example in examples.items():
            if not isinstance(example, dict) or example.get("handshake"):
                continue
            try:
                run = run_example(pipeline, str(doc.data.get("name")), example)
            except (ValueError, RecursionError) as exc:
                yield doc.diagnostic(
                    ("examples", name),
                    f"example '{name}': the body cannot be parsed as {pipeline.format}: {exc}",
                    "example-error",
                )
                continue
            for failure, available in run.failures:
                if reportable(failure, available):
                    yield doc.diagnostic(
                        failure.path, f"example '{name}': {failure.reason}", failure.rule
                    )
