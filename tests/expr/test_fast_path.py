"""The fast path of expressions (closures for common shapes) against Jinja2 itself: for every
expression the shipped `integrations.d` holds, on the shipped examples' data and on that data
with each path the expression reads made missing, null or of another type, both give the same
value of the same type, or fail with the same error and message."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jinja2 import Undefined, nodes

from gateway.expr.expressions import (
    _SINGLE,
    ENV,
    Expression,
    MissingValue,
    _expression,
    fast_expression,
    fast_template,
    is_template,
)

SHIPPED = Path(__file__).resolve().parents[2] / "integrations.d"
_ABSENT = object()
# What a read path is set to in turn: missing, null, and values of every JSON type (and a
# datetime, what `now` is).
VARIANTS: tuple[Any, ...] = (
    _ABSENT,
    None,
    "",
    "x",
    "BOOKING_CREATED",
    "+49 30 1234567",
    "2025-06-12T08:00:00Z",
    0,
    1,
    -3,
    2.5,
    True,
    False,
    [],
    ["a", 1],
    {},
    {"value": "v", "email": "e@example.com"},
    datetime(2025, 6, 12, 8, tzinfo=UTC),
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if is_template(value):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _documents() -> list[dict[str, Any]]:
    found = []
    for path in sorted(SHIPPED.glob("*.yaml")):
        found += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    return found


DOCUMENTS = _documents()
SOURCES = sorted({s for document in DOCUMENTS for s in _strings(document)})
EXAMPLES = [
    example
    for document in DOCUMENTS
    for example in (document.get("examples") or {}).values()
    if isinstance(example, dict) and isinstance(example.get("body"), dict)
]


def _paths(tree: nodes.Node) -> set[tuple[Any, ...]]:
    """Every chain of constant lookups from a variable (`body.payload.attendees[0].email`),
    and each of its prefixes."""
    found: set[tuple[Any, ...]] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        steps: list[Any] = []
        while isinstance(node, nodes.Getattr | nodes.Getitem):
            if isinstance(node, nodes.Getattr):
                steps.append(node.attr)
            elif isinstance(node.arg, nodes.Const):
                steps.append(node.arg.value)
            else:
                break
            node = node.node
        else:
            if isinstance(node, nodes.Name):
                chain = (node.name, *reversed(steps))
                found.update(chain[: n + 1] for n in range(len(chain)))
    return found


def _set(variables: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    """`path` in `variables` made `value` (or removed), the containers on the way made."""
    node: Any = variables
    for key, following in itertools.pairwise(path):
        if isinstance(node, list) and isinstance(key, int):
            while len(node) <= key:
                node.append(None)
        elif not isinstance(node, dict):
            return
        child = node[key] if not isinstance(node, dict) else node.get(key)
        if not isinstance(child, dict | list):
            child = [] if isinstance(following, int) else {}
            node[key] = child
        node = child
    last = path[-1]
    if isinstance(node, dict):
        if value is _ABSENT:
            node.pop(last, None)
        else:
            node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and value is not _ABSENT:
        while len(node) <= last:
            node.append(None)
        node[last] = value


def _environments(tree: nodes.Node) -> Iterator[dict[str, Any]]:
    paths = sorted(_paths(tree), key=lambda p: (len(p), repr(p)))
    full: dict[str, Any] = {}
    for path in paths:
        _set(full, path, "x")
    bases: list[dict[str, Any]] = [{}, full]
    bases += [{"body": e["body"], "headers": e.get("headers") or {}} for e in EXAMPLES[:40]]
    for base in bases:
        yield base
    for base in bases[:2]:
        for path in paths:
            for variant in VARIANTS:
                changed = copy.deepcopy(base)
                _set(changed, path, variant)
                yield changed


def _outcome(fn: Callable[[Mapping[str, Any]], Any], variables: Mapping[str, Any]) -> Any:
    """The value (with its type) or the error (type and message) a rendering gives."""
    try:
        result = fn(variables)
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()
    except Exception as exc:
        return ("error", type(exc), str(exc))
    return ("value", type(result), repr(result))


def _pair(source: str) -> tuple[Any, Any, nodes.Node] | None:
    """(fast, jinja, tree) of a value template, or None when the fast path leaves it."""
    match = _SINGLE.match(source)
    if match and not any(m in match["expr"] for m in ("{{", "{%", "{#")):
        fast = fast_expression(match["expr"])
        return (fast, _expression(match["expr"]), ENV.parse(source)) if fast else None
    fast = fast_template(source)
    return (fast, ENV.from_string(source).render, ENV.parse(source)) if fast else None


def test_the_shipped_expressions_mostly_take_the_fast_path() -> None:
    compiled = [source for source in SOURCES if _pair(source) is not None]
    assert len(SOURCES) > 500
    assert len(compiled) / len(SOURCES) > 0.9, sorted(set(SOURCES) - set(compiled))[:20]


def test_every_field_of_the_calcom_booking_mapping_takes_the_fast_path() -> None:
    calcom = next(d for d in DOCUMENTS if d.get("name") == "calcom" and "webhook" in d)
    data = calcom["webhook"]["map"]["BOOKING_CREATED"]["data"]
    left = [source for source in data.values() if _pair(source) is None]
    assert not left


@pytest.mark.parametrize("source", SOURCES)
def test_fast_path_gives_what_jinja_gives(source: str) -> None:
    pair = _pair(source)
    if pair is None:
        return  # Jinja renders it: nothing to compare
    fast, jinja, tree = pair
    for variables in _environments(tree):
        assert _outcome(fast, variables) == _outcome(jinja, variables), (source, variables)


EDGE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("a.b | default('x')", {"a": {"b": None}}),
    ("a.b | default('x')", {"a": {}}),
    ("a.b | default('x', true)", {"a": {"b": ""}}),
    ("a.b.c.d | default(1)", {}),
    ("a.b | e164", {"a": {}}),
    ("a.b | e164", {"a": {"b": None}}),
    ("a.b | isoformat", {"a": {"b": "nope"}}),
    ("a == 'x'", {}),
    ("a != 'x'", {"a": None}),
    ("a < 3", {"a": "2"}),
    ("1 < a < 3", {"a": 2}),
    ("1 < a < 3", {"a": 5}),
    ("a in ['x', 'y']", {}),
    ("a in ['x', 'y']", {"a": "y"}),
    ("'x' in a", {"a": None}),
    ("'x' not in a", {"a": "xyz"}),
    ("a and b", {"a": 1}),
    ("a or b", {"b": 0}),
    ("not a", {}),
    ("not a", {"a": []}),
    ("a ~ '-' ~ b", {"a": 1, "b": None}),
    ("a ~ '-' ~ b", {"a": 1}),
    ("a + b", {"a": 1, "b": "2"}),
    ("a / b", {"a": 1, "b": 0}),
    ("a[0].b", {"a": []}),
    ("a[0].b", {"a": [{"b": 2}]}),
    ("a['k-1']", {"a": {"k-1": 3}}),
    ("a.items", {"a": {"items": [1]}}),
    ("a.items", {"a": {}}),
    ("a.__class__", {"a": {}}),
    ("a.upper", {"a": "x"}),
    ("a.mro", {"a": 1}),
    ("a is defined and a.b is none", {"a": {"b": None}}),
    ("a is matching('^B')", {"a": "BOOKING"}),
    ("x if a else y", {"a": 0, "y": 2}),
    ("range", {}),
    ("range", {"range": 3}),
    ("{'k': a, 'j': [a, (a, 1)]}", {"a": 1}),
    ("-a", {"a": "x"}),
    ("a | lower", {}),
    ("a | lower", {"a": 5}),
    ("a | int", {"a": "12"}),
    ("a | length", {}),
    ("a | first", {"a": []}),
]


@pytest.mark.parametrize(("source", "variables"), EDGE_CASES)
def test_edge_cases_agree_with_jinja(source: str, variables: dict[str, Any]) -> None:
    fast = fast_expression(source)
    assert fast is not None, source
    assert _outcome(fast, variables) == _outcome(_expression(source), variables)


@pytest.mark.parametrize(
    "source",
    [
        "secret('X')",
        "a[1:]",
        "a if b",
        "a | format_money('eur')",
        "a.get('x')",
        "a | map(attribute='x') | list",
        "a | join(', ')",
        "a | tojson",
    ],
)
def test_shapes_left_to_jinja_are_not_compiled(source: str) -> None:
    assert fast_expression(source) is None


def test_a_template_with_statements_is_left_to_jinja() -> None:
    assert fast_template("{% if a %}x{% endif %}") is None
    assert fast_template("a {{ b }} c") is not None


def test_an_expression_renders_through_the_fast_path_and_reports_what_is_missing() -> None:
    expression = Expression("{{ body.payload.location or '' }}")
    assert expression.render({"body": {"payload": {"location": None}}}) == ""
    with pytest.raises(Exception, match="'dict object' has no attribute 'payload'"):
        Expression("{{ body.payload.status | lower }}").render({"body": {}})
    assert isinstance(fast_expression("a.b")({}), MissingValue)  # type: ignore[misc]
