"""Every lint rule, each with a broken file: the rule fires at the exact line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.lint import lint
from gateway.diagnostics import Diagnostic
from tests.helpers.integrations import acme, api, section, webhook

# The rules' expected lines and columns count in the text this builds (print BASE to see it).
BASE = acme(
    api(endpoints={"get_thing": '{method: GET, path: "/things/{id}"}'}),
    section("channels", {"sms": '{kind: sms, endpoint: get_thing, body: {To: "{{ to }}"}}'}),
    webhook(
        verify='verify: {scheme: hmac, algorithm: sha256, secret: "${secret:ACME_SECRET}", signature: {header: X-Sig}, signed: "{body}"}\n',
        map={"thing.made": 'emit: thing.created\ndata: {name: "{{ body.name }}"}\n'},
    ),
    section("examples", {"made": '{body: {id: "1", type: thing.made, name: x}}'}),
)

FLOW = """\
kind: flow
name: notify
event: thing.created
actions:
  - send: {channel: acme.sms, to: "{{ event.data.name }}", text: hi}
"""


def run(tmp_path: Path, files: dict[str, str], **kwargs: object) -> list[Diagnostic]:
    folder = tmp_path / "integrations.d"
    folder.mkdir(exist_ok=True)
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "ok.txt").write_text("Hello {{ event.data.name }}\n")
    for name, text in files.items():
        (folder / name).write_text(text)
    return lint([str(folder)], **kwargs).diagnostics  # type: ignore[arg-type]


def only(diagnostics: list[Diagnostic], rule: str) -> list[tuple[int, int, str]]:
    return [(d.line, d.col, d.severity) for d in diagnostics if d.rule == rule]


def test_valid_files_have_no_findings(tmp_path: Path) -> None:
    assert run(tmp_path, {"acme.yaml": BASE, "flow.yaml": FLOW}) == []


CASES = [
    # (rule, files, expected [(line, col, severity)])
    ("yaml-syntax", {"a.yaml": "kind: flow\nname: [x\n"}, [(3, 1, "error")]),
    (
        "yaml-duplicate-key",
        {"a.yaml": BASE.replace("name: acme\n", "name: acme\nname: acme2\n")},
        [(3, 1, "error")],
    ),
    ("yaml-empty", {"a.yaml": "# only a comment\n"}, [(1, 1, "error")]),
    ("missing-kind", {"a.yaml": "name: x\n"}, [(1, 1, "error")]),
    ("unknown-kind", {"a.yaml": "kind: integraton\nname: x\n"}, [(1, 7, "error")]),
    (
        "schema-unknown-key",
        {"a.yaml": BASE.replace("  endpoints:", "  endpionts:")},
        [(5, 3, "error")],
    ),
    (
        "schema-type",
        {"a.yaml": BASE.replace("api:\n", "api:\n  rate_limit: {per_minute: fast}\n")},
        [(4, 28, "error")],
    ),
    (
        "schema-required",
        {"a.yaml": BASE.replace("  base_url: https://api.acme.test\n", "")},
        [(4, 3, "error")],
    ),
    ("schema-enum", {"a.yaml": BASE.replace("sha256", "sha265")}, [(10, 37, "error")]),
    (
        "schema-value",
        {
            "a.yaml": FLOW.replace("  - send:", "  - name: x\n    send:").replace(
                "text: hi}", "text: hi}\n    call: {endpoint: acme.get_thing, params: {id: '1'}}"
            )
        },
        [(5, 5, "error")],
    ),
    (
        "invalid-duration",
        {"a.yaml": BASE.replace("api:\n", "api:\n  timeout: 10 seconds\n")},
        [(4, 12, "error")],
    ),
    (
        "invalid-regex",
        {
            "a.yaml": BASE.replace(
                "      emit: thing.created",
                "      emit: thing.created\n      condition: \"{{ body.name is matching('(') }}\"",
            )
        },
        [(15, 18, "error")],
    ),
    (
        "verify-template",
        {"a.yaml": BASE.replace('signed: "{body}"', 'signed: "{bdy}"')},
        [(10, 114, "error")],
    ),
    (
        "verify-config",
        {"a.yaml": BASE.replace("{header: X-Sig}", "{header: X-Sig, format: pairs}")},
        [(10, 11, "error")],
    ),
    (
        "jinja-syntax",
        {"a.yaml": BASE.replace('"{{ body.name }}"', '"{{ body.name }"')},
        [(15, 20, "error")],
    ),
    (
        "jinja-filter",
        {"a.yaml": BASE.replace('"{{ body.name }}"', '"{{ body.name | shout }}"')},
        [(15, 20, "error")],
    ),
    (
        "jinja-undefined-var",
        {"a.yaml": BASE.replace('"{{ body.name }}"', '"{{ event.name }}"')},
        [(15, 20, "error")],
    ),
    (
        "jinja-unused",
        {"a.yaml": BASE.replace("name: acme\n", 'name: acme\ndescription: "{{ x }}"\n')},
        [(3, 14, "error")],
    ),
    (
        "env-syntax",
        {"a.yaml": BASE.replace("https://api.acme.test", "${1BAD}")},
        [(4, 13, "error")],
    ),
    (
        "secret-embedded",
        {"a.yaml": BASE.replace("https://api.acme.test", "https://${secret:HOST}")},
        [(4, 13, "error")],
    ),
    (
        "ref-endpoint",
        {"a.yaml": BASE.replace("endpoint: get_thing", "endpoint: get_thng")},
        [(8, 30, "error")],
    ),
    (
        "ref-channel",
        {"a.yaml": BASE, "f.yaml": FLOW.replace("acme.sms", "acme.email")},
        [(5, 21, "error")],
    ),
    (
        "ref-integration",
        {"a.yaml": BASE, "f.yaml": FLOW.replace("acme.sms", "acne.sms")},
        [(5, 21, "error")],
    ),
    (
        "ref-template",
        {"a.yaml": BASE, "f.yaml": FLOW.replace("text: hi", "template: missing.txt")},
        [(5, 70, "error")],
    ),
    (
        "ref-param",
        {
            "a.yaml": BASE,
            "f.yaml": FLOW.replace(
                '  - send: {channel: acme.sms, to: "{{ event.data.name }}", text: hi}',
                "  - call: {endpoint: acme.get_thing}",
            ),
        },
        [(5, 22, "error")],
    ),
    (
        "call-idempotency",  # get_thing declares no idempotency_header to carry it
        {
            "a.yaml": BASE,
            "f.yaml": FLOW.replace(
                '  - send: {channel: acme.sms, to: "{{ event.data.name }}", text: hi}',
                '  - call: {endpoint: acme.get_thing, params: {id: "1"}, idempotency_key: k}',
            ),
        },
        [(5, 74, "error")],
    ),
    (
        "tenant-var-type",  # the flow reads vars.refund as a boolean; a quoted "true" is none
        {
            "a.yaml": BASE,
            "f.yaml": FLOW.replace(
                "actions:", "tenant_vars: {refund: boolean, days: integer}\nactions:"
            ),
            "t.yaml": 'kind: tenant\nname: praxis\nvars:\n  refund: "true"\n  days: 3\n  other: x\n',
        },
        [(4, 11, "error")],
    ),
    (
        "event-not-emitted",
        {"a.yaml": BASE, "f.yaml": FLOW.replace("thing.created", "thing.craeted")},
        [(3, 8, "warning")],
    ),
    ("duplicate-name", {"a.yaml": BASE, "b.yaml": BASE}, [(2, 7, "error")]),
    (
        "webhook-unverified",
        {
            "a.yaml": BASE.replace(
                '  verify: {scheme: hmac, algorithm: sha256, secret: "${secret:ACME_SECRET}", '
                'signature: {header: X-Sig}, signed: "{body}"}\n',
                "",
            )
        },
        [(10, 3, "error")],
    ),
    (
        "example-missing-field",
        {"a.yaml": BASE.replace("type: thing.made, name: x", "type: thing.made")},
        [(15, 20, "error")],
    ),
    (
        "example-error",
        {"a.yaml": BASE.replace('"{{ body.name }}"', '"{{ body.name | e164 | int + [] }}"')},
        [(15, 20, "error")],
    ),
]


@pytest.mark.parametrize(("rule", "files", "expected"), CASES, ids=[c[0] for c in CASES])
def test_rule_fires_at_exact_place(
    tmp_path: Path, rule: str, files: dict[str, str], expected: list[tuple[int, int, str]]
) -> None:
    diagnostics = run(tmp_path, files)
    assert only(diagnostics, rule) == expected, "\n".join(d.text() for d in diagnostics)


def test_env_unset_is_a_warning_only_with_check_env(tmp_path: Path) -> None:
    assert only(run(tmp_path, {"a.yaml": BASE}), "env-unset") == []
    found = run(tmp_path, {"a.yaml": BASE}, environ={})
    assert only(found, "env-unset") == [(10, 53, "warning")]
    assert "ACME_SECRET" in next(d.message for d in found if d.rule == "env-unset")
    assert only(run(tmp_path, {"a.yaml": BASE}, environ={"ACME_SECRET": "x"}), "env-unset") == []


def test_template_file_problems_name_the_template(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "bad.txt").write_text("Hi\n{{ event.data.name }\n")
    found = run(tmp_path, {"a.yaml": BASE, "f.yaml": FLOW.replace("text: hi", "template: bad.txt")})
    bad = [d for d in found if d.rule == "jinja-syntax"]
    assert [(Path(d.path).name, d.line) for d in bad] == [("bad.txt", 2)]


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    found = run(tmp_path, {"a.yaml": BASE.replace("  endpoints:", "  endpionts:")})
    message = next(d.message for d in found if d.rule == "schema-unknown-key")
    assert "did you mean 'endpoints'?" in message


def test_env_reference_in_a_comment_is_ignored(tmp_path: Path) -> None:
    text = BASE.replace("kind: integration\n", "kind: integration\n# uses ${1BAD} and ${NOPE}\n")
    found = run(tmp_path, {"a.yaml": text}, environ={"ACME_SECRET": "x"})
    assert found == []


def test_retryable_reads_the_answer_not_the_event(tmp_path: Path) -> None:
    retry = (
        "api:\n  retry: {retryable: \"{{ body.error.code == 4 and headers['x'] == status }}\"}\n"
    )
    good = BASE.replace("api:\n", retry)
    assert only(run(tmp_path, {"a.yaml": good}), "jinja-undefined-var") == []
    bad = BASE.replace("api:\n", retry.replace("status", "event.status"))
    assert only(
        run(tmp_path, {"b.yaml": bad.replace("name: acme", "name: acme2")}), "jinja-undefined-var"
    ) == [(4, 22, "error")]


def test_fallbacks_and_follow_ups_are_checked_like_actions(tmp_path: Path) -> None:
    sms = '  - send: {channel: acme.sms, to: "{{ event.data.name }}", text: hi}\n'
    nested = (
        "  - call:\n"
        "      endpoint: acme.get_thing\n"
        "      params: {id: x}\n"
        "      then:\n"
        "        - call: {endpoint: acme.get_thng}\n"
        "    on_failure:\n"
        '      - send: {channel: acme.emil, to: "{{ result.error }}", text: hi}\n'
    )
    assert sms in FLOW
    found = run(tmp_path, {"a.yaml": BASE, "f.yaml": FLOW.replace(sms, nested)})
    assert only(found, "ref-endpoint") == [(9, 28, "error")], "\n".join(d.text() for d in found)
    assert only(found, "ref-channel") == [(11, 25, "error")]
    assert only(found, "jinja-undefined-var") == []  # both see `result`


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("true", None),
        ("false", None),
        ('"true"', 'vars.refund is the string "true"; flow notify reads it as a boolean'),
        ("1", "vars.refund is the number 1; flow notify reads it as a boolean"),
        ("", "vars.refund is empty (null); flow notify reads it as a boolean"),
        ("[x]", "vars.refund is a list; flow notify reads it as a boolean"),
    ],
)
def test_a_tenant_var_a_flow_reads_must_have_the_declared_type(
    tmp_path: Path, written: str, message: str | None
) -> None:
    flow = FLOW.replace("actions:", "tenant_vars: {refund: boolean}\nactions:")
    tenant = f"kind: tenant\nname: praxis\nvars:\n  refund: {written}\n"
    found = run(tmp_path, {"a.yaml": BASE, "f.yaml": flow, "t.yaml": tenant})
    assert [d.message for d in found] == (
        [] if message is None else [f"{message} (write true or false, unquoted)"]
    )
    # without the flow's declaration the value is the tenant's own business
    assert run(tmp_path, {"a.yaml": BASE, "f.yaml": FLOW, "t.yaml": tenant}) == []
