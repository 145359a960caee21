"""Lint holds both sides of an event to its contract: mappings, examples, flows, templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.lint import lint
from gateway.diagnostics import Diagnostic
from tests.config.test_lint_rules import BASE

EVENTS = """\
kind: event
name: thing.created
fields:
  name: {type: string, required: true}
  count: {type: integer}
  note: {type: string}
"""
FLOW = """\
kind: flow
name: notify
event: thing.created
actions:
  - send: {channel: acme.sms, to: "{{ event.data.name }}", text: hi, template: t.txt}
"""
TEMPLATE = "Hello {{ event.data.name }}\n"


def run(
    tmp_path: Path,
    *,
    base: str = BASE,
    flow: str = FLOW,
    template: str = TEMPLATE,
    events: str = EVENTS,
) -> list[Diagnostic]:
    folder = tmp_path / "integrations.d"
    folder.mkdir(exist_ok=True)
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "t.txt").write_text(template)
    for name, text in {"acme.yaml": base, "flow.yaml": flow, "events.yaml": events}.items():
        (folder / name).write_text(text)
    return lint([str(folder)]).diagnostics


def rules(diagnostics: list[Diagnostic]) -> list[tuple[str, str, str]]:
    return [(d.path.rsplit("/", 1)[-1], d.severity, d.rule) for d in diagnostics]


def test_files_that_keep_the_contract_have_no_findings(tmp_path: Path) -> None:
    assert run(tmp_path) == []


def test_a_mapping_without_a_required_field_is_an_error(tmp_path: Path) -> None:
    base = BASE.replace('data: {name: "{{ body.name }}"}', 'data: {note: "{{ body.name }}"}')
    found = run(tmp_path, base=base)
    assert rules(found) == [("acme.yaml", "error", "contract-missing-field")]
    assert "thing.created requires name" in found[0].message


def test_a_mapping_with_an_undeclared_field_is_an_error_with_a_hint(tmp_path: Path) -> None:
    base = BASE.replace(
        'data: {name: "{{ body.name }}"}', 'data: {name: "{{ body.name }}", nmae: x}'
    )
    found = run(tmp_path, base=base)
    assert rules(found) == [("acme.yaml", "error", "contract-undeclared-field")]
    assert "did you mean 'name'?" in found[0].message


def test_an_example_whose_value_has_the_wrong_type_is_an_error(tmp_path: Path) -> None:
    base = BASE.replace(
        'data: {name: "{{ body.name }}"}',
        'data: {name: "{{ body.name }}", count: "{{ body.name }}"}',
    )
    found = run(tmp_path, base=base)
    assert rules(found) == [("acme.yaml", "error", "contract-type")]
    assert "thing.created.count: expected an integer, got 'x'" in found[0].message


def test_a_flow_reading_an_undeclared_field_is_an_error(tmp_path: Path) -> None:
    flow = FLOW.replace('to: "{{ event.data.name }}"', 'to: "{{ event.data.phone }}"')
    found = run(tmp_path, flow=flow)
    assert rules(found) == [("flow.yaml", "error", "contract-undeclared-read")]
    assert "event.data.phone" in found[0].message


def test_a_template_reading_an_undeclared_field_is_an_error(tmp_path: Path) -> None:
    found = run(tmp_path, template="Hello {{ event.data.nmae }}\n")
    assert rules(found) == [("flow.yaml", "error", "contract-undeclared-read")]
    assert "template t.txt reads event.data.nmae" in found[0].message
    assert "did you mean 'name'?" in found[0].message


@pytest.mark.parametrize(
    ("template", "warned"),
    [
        ("Note: {{ event.data.note }}\n", True),
        ("Note: {{ event.data.note | default('none') }}\n", False),
        ("{% if event.data.note %}Note: {{ event.data.note }}{% endif %}\n", False),
        ("{{ 'Note: ' ~ event.data.note if event.data.note else '' }}\n", False),
        ("Name: {{ event.data.name }}\n", False),  # required: always there
    ],
)
def test_reading_an_optional_field_where_a_value_is_needed_is_a_warning(
    tmp_path: Path, template: str, warned: bool
) -> None:
    found = run(tmp_path, template=template)
    assert rules(found) == ([("flow.yaml", "warning", "contract-optional-read")] if warned else [])


def test_an_action_condition_on_an_optional_field_guards_its_reads(tmp_path: Path) -> None:
    flow = FLOW.replace(
        '  - send: {channel: acme.sms, to: "{{ event.data.name }}"',
        '  - condition: "{{ event.data.note }}"\n    send: {channel: acme.sms, to: "{{ event.data.note }}"',
    )
    assert run(tmp_path, flow=flow) == []
    unguarded = FLOW.replace('to: "{{ event.data.name }}"', 'to: "{{ event.data.note }}"')
    assert rules(run(tmp_path, flow=unguarded)) == [
        ("flow.yaml", "warning", "contract-optional-read")
    ]


def test_an_event_without_a_contract_is_a_warning_once_a_catalogue_exists(
    tmp_path: Path,
) -> None:
    events = EVENTS.replace("name: thing.created", "name: thing.deleted")
    found = run(tmp_path, events=events)
    assert ("acme.yaml", "warning", "event-undeclared") in rules(found)
