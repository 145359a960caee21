"""One webhook pipeline: lint's example check, ingress and the dispatcher take the same steps.

Each of the first tests is a defect found where the three paths disagreed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.config.examples import example_request, run_example
from gateway.config.lint import lint
from gateway.config.model import Config, Integration, load_config
from gateway.config.pipeline import Pipeline, mapping_variables, request_variables
from gateway.processing.dispatcher import map_stored
from gateway.store.entities import StoredEvent
from tests.helpers import REPO
from tests.helpers.app import ADMIN_TOKEN

TOKEN = "tok_pipeline"
ENV = {"FORMY_TOKEN": TOKEN}


FORMY = """\
kind: integration
name: formy
webhook:
  format: form
  verify: {scheme: token, secret: "${secret:FORMY_TOKEN}", header: X-Token}
  respond:
    content_type: text/xml
    body: "<Response><Message>got {{ body.Sid }} for {{ tenant }}</Message></Response>"
  event: {id: "{{ body.Sid }}", type: "{{ body.Kind }}"}
  map:
    incoming:
      emit: message.received
      data: {id: "{{ body.Sid }}", text: "{{ body.Body }}"}
examples:
  hello:
    form: {Sid: SM1, Kind: incoming, Body: hi}
"""


def _lint(tmp_path: Path, text: str) -> list[tuple[str, str, str]]:
    folder = tmp_path / "lintme"
    folder.mkdir(exist_ok=True)
    (folder / "formy.yaml").write_text(text)
    result = lint([str(folder)])
    return [(d.severity, d.rule, d.message) for d in result.diagnostics]


def _stored(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/admin/api/events", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_a_mapping_that_reads_the_query_string_is_a_lint_error(tmp_path: Path) -> None:
    # Before: it linted clean, and every such event then failed at dispatch (query: {}).
    broken = FORMY.replace('text: "{{ body.Body }}"', 'text: "{{ query.lang }}"')
    findings = _lint(tmp_path, broken)
    assert any(
        severity == "error" and rule == "jinja-undefined-var" and "query" in message
        for severity, rule, message in findings
    ), findings


def test_the_event_id_and_type_may_still_read_the_query_string(tmp_path: Path) -> None:
    fine = FORMY.replace('type: "{{ body.Kind }}"', "type: \"{{ query.kind | default('x') }}\"")
    assert [f for f in _lint(tmp_path, fine) if f[0] == "error"] == []


def test_a_form_webhook_without_content_type_is_parsed_as_declared(make_client: Any) -> None:
    # Before: ingress chose "form" from the Content-Type, the dispatcher from webhook.format;
    # without the header the event was stored with no id and no type.
    client = make_client({"formy.yaml": FORMY}, ENV)
    response = client.post(
        "/webhooks/formy", content=b"Sid=SM9&Kind=incoming&Body=hey", headers={"X-Token": TOKEN}
    )
    assert response.status_code == 200, response.text
    (event,) = _stored(client)
    assert (event["provider_event_id"], event["type"]) == ("SM9", "incoming")


def test_respond_body_expressions_are_rendered_over_the_request(make_client: Any) -> None:
    # Before: `{{ ... }}` in webhook.respond.body was sent literally.
    client = make_client({"formy.yaml": FORMY}, ENV)
    response = client.post(
        "/webhooks/formy",
        content=b"Sid=SM7&Kind=incoming&Body=hey",
        headers={"X-Token": TOKEN, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    assert response.text == "<Response><Message>got SM7 for default</Message></Response>"
    assert response.headers["content-type"].startswith("text/xml")


def test_respond_body_expressions_are_checked_by_lint(tmp_path: Path) -> None:
    broken = FORMY.replace("got {{ body.Sid }}", "got {{ event.data.id }}")
    findings = _lint(tmp_path, broken)
    assert any(
        rule == "jinja-undefined-var" and "event" in message for _, rule, message in findings
    ), findings


def test_a_failing_rule_names_its_expression_and_the_missing_field() -> None:
    pipeline = Pipeline.build(
        {
            "map": {
                "incoming": [
                    {"emit": "a", "data": {"x": "{{ body.present }}"}},
                    {"emit": "b", "data": {"y": {"z": "{{ body.absent }}"}}},
                ]
            }
        }
    )
    mapped = pipeline.map("incoming", mapping_variables({"present": 1}, {}, "formy", "default"))
    assert mapped.events == [("a", {"x": 1})]
    (failure,) = mapped.failures
    assert failure.path == ("webhook", "map", "incoming", 1, "data", "y", "z")
    assert failure.missing == "absent"


# ---- every shipped example through the functions the server uses ----------------------------

SHIPPED: Config = load_config(
    REPO / "integrations.d",
    {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
    templates_dir=REPO / "templates",
)
EXAMPLES = [
    (name, example)
    for name, integration in sorted(SHIPPED.integrations.items())
    if integration.webhook is not None
    for example, declared in sorted(integration.examples.items())
    if not declared.get("handshake")
]


def _as_stored(integration: Integration, example: str) -> list[StoredEvent]:
    """The example as ingress stores it: parsed, split and identified by the pipeline."""
    webhook = integration.webhook
    assert webhook is not None
    declared = integration.example(example)
    assert declared is not None
    request = example_request(declared, "http://gateway.invalid/")
    headers = {k.lower(): v for k, v in request.headers.items()}
    payload = webhook.pipeline.parse(request.body)
    variables = request_variables(payload, headers, {}, integration.name, "default")
    failures: list[Any] = []
    items = webhook.pipeline.receive(payload, variables, failures)
    assert failures == []
    split = webhook.pipeline.split is not None
    return [
        StoredEvent(
            f"evt_{i}",
            integration.name,
            "default",
            item.provider_id,
            item.type,
            0.0,
            "pending",
            headers,
            json.dumps(item.payload).encode() if split else request.body,
        )
        for i, item in enumerate(items)
    ]


@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[f"{n}-{e}" for n, e in EXAMPLES])
def test_shipped_example_maps_alike_in_lint_and_at_dispatch(name: str, example: str) -> None:
    integration = SHIPPED.integrations[name]
    assert integration.webhook is not None
    declared = integration.example(example)
    assert declared is not None
    linted = run_example(integration.webhook.pipeline, name, declared)
    assert linted.failures == []
    dispatched = [map_stored(integration, event) for event in _as_stored(integration, example)]
    assert [f for mapped in dispatched for f in mapped.failures] == []
    assert [made for mapped in dispatched for made in mapped.events] == linted.events
