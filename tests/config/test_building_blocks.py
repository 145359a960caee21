"""Durations, sizes, env references, expressions, filters and the YAML loader."""

from __future__ import annotations

import os
import re
import warnings

import pytest
from jinja2 import TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from gateway.config.envsubst import Secret, SecretRef, find_refs, substitute
from gateway.config.yamlsource import load_text
from gateway.durations import parse_duration, parse_signed_duration, parse_size
from gateway.expr.expressions import (
    ENV,
    analyse,
    compile_expression,
    compile_value,
    context_for,
    render_value,
)
from gateway.expr.filters import e164, localtime, strftime
from gateway.ids import new_id
from tests.helpers import REPO


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800), ("1.5s", 1.5), (7, 7)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_signed_durations_and_rejections() -> None:
    assert parse_signed_duration("-24h") == -86400
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("10 seconds")
    with pytest.raises(ValueError, match="negative"):
        parse_duration("-1s")


def test_sizes() -> None:
    assert parse_size("1MiB") == 1048576
    assert parse_size("512KiB") == 524288
    assert parse_size(100) == 100
    with pytest.raises(ValueError, match="not a size"):
        parse_size("1 gig")


def test_env_substitution() -> None:
    env = {"HOST": "example.test", "EMPTY": ""}
    assert substitute("https://${HOST}/x", env) == "https://example.test/x"
    assert substitute("${MISSING:-fallback}", env) == "fallback"
    assert substitute("${EMPTY:-fallback}", env) == "fallback"
    assert substitute("$${HOST}", env) == "${HOST}"
    assert substitute({"a": ["${secret:KEY}"]}, env) == {"a": [SecretRef("KEY")]}
    refs = list(find_refs("${A} ${secret:B} ${C:-d} $${E}"))
    assert [(r.name, r.secret, r.default) for r in refs] == [
        ("A", False, None),
        ("B", True, None),
        ("C", False, "d"),
    ]


def test_secret_never_prints_its_value() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)
    assert f"{secret}" == str(secret)
    assert secret.reveal() == "hunter2"


def test_single_expression_keeps_its_type() -> None:
    variables = {"body": {"n": 5, "items": [1, 2], "phone": "+14155550123"}}
    assert compile_expression("{{ body.n }}").render(variables) == 5
    assert compile_expression("{{ body.items }}").render(variables) == [1, 2]
    assert compile_expression("{{ body.phone }}").render(variables) == "+14155550123"
    assert compile_expression("n={{ body.n }}").render(variables) == "n=5"
    assert render_value({"a": ["{{ body.n }}", "x"]}, variables) == {"a": [5, "x"]}


def test_missing_fields_fail_unless_defaulted() -> None:
    with pytest.raises(UndefinedError, match="missing"):
        compile_expression("{{ body.missing.deeper }}").render({"body": {}})
    assert compile_expression("{{ body.a.b | default('x') }}").render({"body": {}}) == "x"


def test_expressions_are_sandboxed() -> None:
    with pytest.raises(SecurityError):
        compile_expression("{{ body.__class__.__mro__ }}").render({"body": {}})
    with pytest.raises(SecurityError):
        compile_expression("{{ body.update({'a': 1}) }}").render({"body": {}})


def test_analyse_reports_free_variables_and_unknown_filters() -> None:
    free, problems = analyse("{% set x = 1 %}{{ body.a | shout }}{{ x }}")
    assert free == {"body"}
    assert [p.rule for p in problems] == ["jinja-filter"]


def test_contexts_by_place() -> None:
    assert "body" in (context_for(("webhook", "map", "x", "data")) or ())
    assert context_for(("webhook", "handshakes", "respond")) == {
        "query",
        "headers",
        "integration",
        "tenant",
        "body",  # lint: only where the handshake is verified
        "secret",
    }
    assert "steps" in (context_for(("functions", "book", "respond")) or ())
    assert "steps" not in (context_for(("functions", "book", "fallback")) or ())
    assert "record" in (context_for(("syncs", "events", "record", "id")) or ())
    # A call's follow-ups see its answer, also when the call is scheduled (a reminder that
    # looks its booking up); the scheduled call itself does not.
    then = ("actions", "schedule", "action", "call", "then", "send", "to")
    assert "result" in (context_for(then) or ())
    assert "result" not in (context_for(("actions", "schedule", "action", "call", "body")) or ())
    assert context_for(("description",)) is None


def test_filters() -> None:
    assert e164("(415) 555-0123", "1") == "+14155550123"
    assert e164("0049 30 1234567") == "+49301234567"
    assert e164("not a phone") == ""
    start = "2026-03-01T15:00:00Z"
    assert strftime(localtime(start, "Europe/Berlin"), "%H:%M") == "16:00"
    assert strftime(localtime(1772377200, "America/New_York"), "%H:%M %Z") == "10:00 EST"


def test_yaml_positions_duplicates_and_plain_keys() -> None:
    docs, problems = load_text("a:\n  b: 1\n  on: yes\n  b: 2\n", "x.yaml")
    assert [(p.line, p.col, p.rule) for p in problems] == [(4, 3, "yaml-duplicate-key")]
    doc = docs[0]
    assert doc.data == {"a": {"b": 2, "on": True}}  # keys stay text; values follow YAML 1.1
    assert doc.where(("a", "b")) == (4, 6)
    assert doc.where(("a", "on"), key=True) == (3, 3)
    assert doc.where(("a", "nope", "deeper")) == (2, 3)


def test_yaml_dates_stay_text_and_documents_split() -> None:
    docs, problems = load_text("when: 2026-01-01\n---\nkind: flow\n", "x.yaml")
    assert problems == []
    assert [d.data for d in docs] == [{"when": "2026-01-01"}, {"kind": "flow"}]
    assert docs[1].where(("kind",)) == (3, 7)


def test_yaml_refuses_arbitrary_objects() -> None:
    _, problems = load_text("x: !!python/object/apply:os.system ['true']\n", "x.yaml")
    assert [p.rule for p in problems] == ["yaml-syntax"]


def test_fast_yaml_path_builds_what_the_positional_path_builds() -> None:
    from gateway.config.yamlsource import _load_with_positions

    for file in sorted((REPO / "integrations.d").glob("*.yaml")):
        text = file.read_text()
        fast, _ = load_text(text, str(file))
        slow, problems = _load_with_positions(text, str(file))
        assert problems == []
        assert [d.data for d in fast] == [d.data for d in slow], file.name
        assert fast[0].where(("kind",)) == slow[0].where(("kind",))


def test_fast_validators_agree_with_the_reference_ones() -> None:
    from gateway.config.schemas import fast_validators, validators

    documents = []
    for file in sorted((REPO / "integrations.d").glob("*.yaml")):
        docs, _ = load_text(file.read_text(), str(file))
        documents.extend(d.data for d in docs)
    broken = [dict(d, unknown_key=1) for d in documents]
    broken += [{**d, "name": "Not A Name!"} for d in documents]
    for data in documents + broken:
        kind = data["kind"]
        reference = not any(True for _ in validators()[kind].iter_errors(data))
        assert fast_validators()[kind].is_valid(data) == reference, (kind, data.get("name"))


def test_ids_are_time_ordered_unique_and_differ_in_a_forked_child() -> None:
    ids = [new_id("evt") for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"evt_[0-9a-f]{32}", i) for i in ids)
    assert [i[:16] for i in ids] == sorted(i[:16] for i in ids)  # milliseconds lead
    read, write = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns about fork in a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its generator must not continue the parent's sequence
        os.write(write, " ".join(new_id("evt") for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100_000).decode().split()
    os.close(read)
    mine = [new_id("evt") for _ in range(50)]
    assert len(child) == 50
    assert not {c[16:] for c in child} & {m[16:] for m in mine}


def test_explode_splits_nested_lists_carrying_the_parents_fields() -> None:
    body = {
        "entry": [
            {
                "changes": [
                    {"value": {"metadata": {"id": "n1"}, "messages": [{"id": "m1"}, {"id": "m2"}]}},
                    {"value": {"metadata": {"id": "n2"}, "statuses": [{"id": "s1"}]}},
                    {
                        "value": {
                            "metadata": {"id": "n3"},
                            "messages": [{"id": "m3", "metadata": "own"}, 7],
                        }
                    },
                ]
            }
        ]
    }
    expression = compile_expression(
        "{{ body.entry | map(attribute='changes') | sum(start=[])"
        " | explode('value.messages', metadata='value.metadata', missing='value.nope') }}"
    )
    assert expression.render({"body": body}) == [
        {"id": "m1", "metadata": {"id": "n1"}, "missing": None},
        {"id": "m2", "metadata": {"id": "n1"}, "missing": None},
        {"id": "m3", "metadata": "own", "missing": None},  # the item's own field wins
        7,  # not an object: as it is
    ]
    single = compile_expression("{{ body.entry[0].changes[1] | explode('value.statuses') }}")
    assert single.render({"body": body}) == [{"id": "s1"}]
    assert body["entry"][0]["changes"][0]["value"]["messages"][0] == {"id": "m1"}  # untouched


@pytest.mark.parametrize(
    "source",
    [
        "body.a.b + 1",
        "body.a.b / (1 if body.c in ['x', 'eur'] else 100)",
        "body.name or body.other or ''",
        "body.phone | e164",
        "body.created | isoformat",
        "range(3) | list",
        "dict(body.a, extra=1)",
        "namespace(n=2).n * 2",
        "body.missing | default('d')",
        "body.list | map(attribute='id') | list",
        "body.list | selectattr('id', 'equalto', 2) | first",
        "'x' in body",
        "[body.a.b, tenant]",
    ],
)
def test_an_expression_gives_what_jinja_compile_expression_gives(source: str) -> None:
    variables = {
        "body": {
            "a": {"b": 41},
            "c": "eur",
            "name": "",
            "other": "Ann",
            "phone": "0151 1234 5678",
            "created": 1700000000,
            "list": [{"id": 1}, {"id": 2}],
        },
        "tenant": "demo",
    }
    expected = ENV.compile_expression(source, undefined_to_none=False)(**variables)
    assert compile_expression("{{ " + source + " }}").render(variables) == expected


def test_an_expression_with_a_trailing_chunk_does_not_compile() -> None:
    with pytest.raises(TemplateSyntaxError):
        compile_expression("{{ body.a body.b }}")


def test_a_compiled_value_renders_as_render_value_does_and_never_shares_containers() -> None:
    value = {
        "id": "{{ body.id }}",
        "amount": "{{ body.total / 100 }}",
        "label": "Order {{ body.id }}",
        "fixed": 3,
        "items": ["{{ body.id }}", {"nested": "{{ body.total }}"}, "plain"],
    }
    variables = {"body": {"id": "o_1", "total": 4500}}
    render = compile_value(value)
    first = render(variables)
    assert first == render_value(value, variables)
    assert first == {
        "id": "o_1",
        "amount": 45.0,
        "label": "Order o_1",
        "fixed": 3,
        "items": ["o_1", {"nested": 4500}, "plain"],
    }
    first["items"].append("changed")
    assert render(variables)["items"] == ["o_1", {"nested": 4500}, "plain"]
