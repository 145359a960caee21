"""Tolerant, isolated mappings on every shipped example: each source field the mapping reads
is removed in turn. An optional field missing is null and every flow that does not need it
still runs; a required one missing fails only its rule, with a reason naming the field."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from jinja2 import nodes

from gateway.config.contracts import Contract
from gateway.config.examples import example_request
from gateway.config.model import Config, Integration, load_config
from gateway.config.pipeline import Rule, mapping_variables, request_variables
from gateway.expr.expressions import ENV, data_reads
from gateway.processing.dispatcher import Dispatcher
from gateway.store.entities import StoredEvent
from tests.helpers import REPO

CONFIG: Config = load_config(
    REPO / "integrations.d",
    {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
    templates_dir=REPO / "templates",
)
Path = tuple[str, ...]


def _body_paths(source: str) -> set[Path]:
    """The `body.a.b` chains an expression reads (dict keys only)."""
    found: set[Path] = set()

    def chain(node: nodes.Node) -> Path | None:
        if isinstance(node, nodes.Name):
            return () if node.name == "body" else None
        if isinstance(node, nodes.Getattr):
            inner = chain(node.node)
            return None if inner is None else (*inner, node.attr)
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            inner = chain(node.node)
            key = node.arg.value
            return None if inner is None or not isinstance(key, str) else (*inner, key)
        return None

    for node in ENV.parse(source).find_all((nodes.Getattr, nodes.Getitem)):
        path = chain(node)
        if path:
            found.add(path)
    return found


def _field_sources(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _field_sources(item)
    elif isinstance(value, list):
        for item in value:
            yield from _field_sources(item)


def _present(payload: Any, path: Path) -> bool:
    for key in path:
        if not isinstance(payload, dict) or key not in payload:
            return False
        payload = payload[key]
    return True


def _without(payload: Any, path: Path) -> Any:
    changed = copy.deepcopy(payload)
    inner = changed
    for key in path[:-1]:
        inner = inner[key]
    del inner[path[-1]]
    return changed


def _declared_rules() -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(integration, event type) -> the rules as written (for the expressions' sources)."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for file in sorted((REPO / "integrations.d").glob("*.yaml")):
        for doc in yaml.safe_load_all(file.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "integration":
                continue
            for event_type, rules in ((doc.get("webhook") or {}).get("map") or {}).items():
                listed = rules if isinstance(rules, list) else [rules]
                found[(doc["name"], event_type)] = listed
    return found


def _flow_reads() -> dict[tuple[str, str], set[str]]:
    """(flow, action) -> every event.data field it reads, its templates and conditions included."""
    found: dict[tuple[str, str], set[str]] = {}
    for file in sorted((REPO / "integrations.d").glob("flow-*.yaml")):
        doc = yaml.safe_load(file.read_text())
        flow_fields = {r.field for s in _field_sources(doc.get("condition")) for r in data_reads(s)}
        for index, action in enumerate(doc["actions"]):
            fields = set(flow_fields)
            for source in _field_sources(action):
                fields |= {read.field for read in data_reads(source)}
                if source.endswith((".txt", ".html")) and "{" not in source:
                    template = (REPO / "templates" / source).read_text()
                    fields |= {read.field for read in data_reads(template)}
            found[(doc["name"], action.get("name", f"#{index}"))] = fields
    return found


RULES = _declared_rules()
FLOW_READS = _flow_reads()


def _cases() -> Iterator[tuple[str, str, str, int, Path]]:
    for name, integration in sorted(CONFIG.integrations.items()):
        if integration.webhook is None:
            continue
        for example, declared in sorted(integration.examples.items()):
            if declared.get("handshake") or "body" not in declared:
                continue
            payload = declared["body"]
            for item in _items(integration, example):
                variables = mapping_variables(payload, {}, name, "default")
                for index, rule in enumerate(integration.webhook.pipeline.rules.get(item[1], ())):
                    if rule.contract is None or not _applies(rule, variables):
                        continue  # the example does not take this rule: nothing to remove
                    written = RULES[(name, str(item[1]))][index]
                    paths = {p for s in _field_sources(written.get("data")) for p in _body_paths(s)}
                    for path in sorted(paths):
                        if item[0] is payload and _present(payload, path):
                            yield name, example, str(item[1]), index, path


def _applies(rule: Rule, variables: dict[str, Any]) -> bool:
    return rule.condition is None or bool(rule.condition.evaluate(variables, []))


def _items(integration: Integration, example: str) -> list[tuple[Any, str | None]]:
    assert integration.webhook is not None
    declared = integration.example(example)
    assert declared is not None
    request = example_request(declared, "http://gateway.invalid/")
    headers = {k.lower(): v for k, v in request.headers.items()}
    payload = integration.webhook.pipeline.parse(request.body)
    if integration.webhook.pipeline.split is not None:
        return []  # batches: each item is covered by the single-event examples' providers
    variables = request_variables(payload, headers, {}, integration.name, "default")
    item = integration.webhook.pipeline.receive(payload, variables, [])[0]
    return [(declared["body"], item.type)]


CASES = list(_cases())


def _dispatch(integration: Integration, event_type: str, payload: Any) -> set[tuple[str, str]]:
    event = StoredEvent(
        "evt_x", integration.name, "default", None, event_type, 0.0, "pending",
        {"content-type": "application/json"}, json.dumps(payload).encode(),
    )  # fmt: skip
    dispatch = Dispatcher(CONFIG, store=None).dispatch(event)  # type: ignore[arg-type]
    return {(job.flow, job.action) for job in dispatch.jobs} | {
        ("cancel", key) for _, key in dispatch.cancels
    }


def _readers(rule: Rule, written: dict[str, Any], path: Path) -> set[str]:
    """The rule's data fields whose expression reads `path`."""
    return {
        field
        for field, value in (written.get("data") or {}).items()
        if any(path in _body_paths(s) for s in _field_sources(value))
    }


def test_every_shipped_mapping_has_removable_fields() -> None:
    assert len(CASES) > 100  # the cases below really cover the shipped mappings


@pytest.mark.parametrize(
    ("name", "example", "event_type", "index", "path"),
    CASES,
    ids=[f"{n}-{e}-{i}-{'.'.join(p)}" for n, e, _, i, p in CASES],
)
def test_removing_a_source_field_fails_small(
    name: str, example: str, event_type: str, index: int, path: Path
) -> None:
    integration = CONFIG.integrations[name]
    assert integration.webhook is not None
    rule = integration.webhook.pipeline.rules[event_type][index]
    written = RULES[(name, event_type)][index]
    contract = rule.contract
    assert isinstance(contract, Contract)
    declared = integration.example(example)
    assert declared is not None
    payload = _without(declared["body"], path)
    headers = {"content-type": "application/json"}
    mapped = integration.webhook.pipeline.map(
        event_type, mapping_variables(payload, headers, name, "default")
    )
    readers = _readers(rule, written, path)
    condition = written.get("condition")
    if isinstance(condition, str) and path in _body_paths(condition):
        return  # the rule may no longer apply: that is the mapping's decision, not a failure
    mine = [f for f in mapped.failures if f.path[: len(rule.path)] == rule.path]
    if mine:  # the rule did not emit: only because a required field read this path
        for failure in mine:
            field = (
                str(failure.path[len(rule.path) + 1])
                if len(failure.path) > len(rule.path) + 1
                else ""
            )
            assert field in readers and contract.fields[field].required, failure
            assert f"requires {field}" in failure.reason or f".{field}:" in failure.reason
        return
    assert all(not contract.fields[f].required for f in readers if f in contract.fields) or (
        rule.emit in {emit for emit, _ in mapped.events}
    )
    # The event ran: every action that reads none of the fields that became null still runs.
    emptied = {
        f
        for f in readers
        for emit, data in mapped.events
        if emit == rule.emit and data.get(f) is None
    }
    before = _dispatch(integration, event_type, declared["body"])
    after = _dispatch(integration, event_type, payload)
    needing = {key for key, fields in FLOW_READS.items() if fields & emptied}
    this_event = {flow.name for flow in CONFIG.flows if flow.event == rule.emit}
    expected = {k for k in before - needing if k[0] in this_event}
    assert expected <= after
