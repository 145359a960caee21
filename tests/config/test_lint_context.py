"""Lint's reading of header names and of a file linted alone.

Header names are case-insensitive in expressions (`headers['X-GitHub-Event']` reads the
lower-cased header ASGI delivers and examples are stored with), at run time and in lint: the
same `Headers` object. A file linted alone is read with its folder's other files as context.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config.headers import Headers
from gateway.config.lint import lint
from gateway.config.pipeline import mapping_variables, request_variables
from gateway.expr.expressions import compile_expression
from tests.helpers import REPO
from tests.helpers.integrations import acme, section, webhook

CAPITALISED = acme(
    webhook(
        verify='verify: {scheme: token, secret: "${secret:TOKEN}", header: X-Token}\n',
        map={
            "thing.made": "emit: thing.created\ndata: {kind: \"{{ headers['X-Acme-Event'] }}\"}\n"
        },
    ),
    section(
        "examples", {"made": '{headers: {X-Acme-Event: push}, body: {id: "1", type: thing.made}}'}
    ),
)


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_a_capitalised_header_name_reads_the_header_the_example_declares(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"acme.yaml": CAPITALISED})
    assert [d.message for d in lint([str(folder)]).diagnostics] == []


def test_a_header_the_example_lacks_is_still_reported(tmp_path: Path) -> None:
    folder = _folder(tmp_path, {"acme.yaml": CAPITALISED.replace("X-Acme-Event: push", "X: y")})
    [finding] = lint([str(folder)]).diagnostics
    assert finding.rule == "example-missing-field" and "x-acme-event" in finding.message.lower()


def test_the_pipeline_offers_headers_by_case_insensitive_name() -> None:
    asgi = {"x-github-event": "push", "content-type": "application/json"}
    for variables in (
        request_variables({}, asgi, {}, "github", "default"),
        mapping_variables({}, asgi, "github", "default"),
    ):
        headers = variables["headers"]
        assert isinstance(headers, Headers)
        for source in (
            "{{ headers['X-GitHub-Event'] }}",
            "{{ headers['x-github-event'] }}",
            "{{ headers.get('X-GITHUB-EVENT') }}",
            "{{ 'push' if 'X-GitHub-Event' in headers else 'none' }}",
        ):
            assert compile_expression(source).render(variables) == "push", source
    assert dict(Headers({"X-A": "1"})) == {"x-a": "1"}  # stored and serialised lower-cased


def test_a_file_linted_alone_resolves_references_to_its_siblings(tmp_path: Path) -> None:
    shipped = REPO / "integrations.d"
    folder = _folder(tmp_path, {p.name: p.read_text() for p in shipped.glob("*.yaml")})
    (tmp_path / "templates").symlink_to(REPO / "templates")
    alone = lint([str(folder / "flow-booking-reminder.yaml")])
    assert [d.text() for d in alone.diagnostics] == []
    assert alone.files == 1


def test_findings_are_for_the_named_file_only(tmp_path: Path) -> None:
    flow = "kind: flow\nname: f\nevent: thing.created\nactions: [{call: {endpoint: acme.nope}}]\n"
    broken_sibling = "kind: flow\nname: g\nevent: [not, a, name]\n"
    folder = _folder(
        tmp_path, {"acme.yaml": CAPITALISED, "flow.yaml": flow, "other.yaml": broken_sibling}
    )
    findings = lint([str(folder / "flow.yaml")]).diagnostics
    assert {d.path for d in findings} == {str(folder / "flow.yaml")}
    assert [d.rule for d in findings] == ["ref-endpoint"]  # acme declared beside it, not nope
