"""/metrics shows what processing has still to do: events not yet dispatched and jobs due but
not yet run, with how long the oldest has waited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from gateway.config.model import load_config
from gateway.config.settings import Settings
from gateway.store import SQLiteStore
from gateway.web.application import create_app
from tests.helpers.app import ADMIN_TOKEN, LoopbackOnly
from tests.helpers.integrations import acme, api, webhook
from tests.helpers.signatures import stripe_header

SECRET = "whsec_backlog"
ENV = {"ACME_SECRET": SECRET, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}
ACME = acme(
    api(endpoints={"ping": "{method: POST, path: /ping}"}),
    webhook(map={"thing.made": "{emit: thing.made, data: {id: '{{ body.id }}'}}"}),
)
FLOW = """\
kind: flow
name: forward
event: thing.made
actions:
  - call: {endpoint: acme.ping, body: {id: "{{ event.data.id }}"}}
  - schedule:
      key: "later-{{ event.data.id }}"
      delay: 1h
      action: {call: {endpoint: acme.ping}}
"""


@pytest.fixture
def ingest_only(tmp_path: Path) -> Iterator[TestClient]:
    """An ingest node: it stores events and leaves them to processing, which the test runs."""
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "acme.yaml").write_text(ACME)
    (folder / "flow.yaml").write_text(FLOW)
    (tmp_path / "templates").mkdir()
    config = load_config(folder, ENV, templates_dir=tmp_path / "templates")
    store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
    app = create_app(
        config, store, Settings.from_env(ENV), ENV, role="ingest", transport=LoopbackOnly()
    )
    with TestClient(app) as client:
        yield client


def _post(client: TestClient, event_id: str) -> None:
    body = json.dumps({"id": event_id, "type": "thing.made"}).encode()
    headers = {"Acme-Signature": stripe_header(body, SECRET), "Content-Type": "application/json"}
    assert client.post("/webhooks/acme", content=body, headers=headers).status_code == 200


def _gauges(client: TestClient) -> dict[str, float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith("gateway_backlog_")
    }


def test_backlog_gauges_follow_events_then_jobs(ingest_only: TestClient) -> None:
    client = ingest_only
    assert _gauges(client) == {
        "gateway_backlog_events": 0,
        "gateway_backlog_oldest_event_age_seconds": 0,
        "gateway_backlog_jobs": 0,
        "gateway_backlog_oldest_job_age_seconds": 0,
    }
    _post(client, "evt_1")
    _post(client, "evt_2")
    pending = _gauges(client)
    assert pending["gateway_backlog_events"] == 2
    assert pending["gateway_backlog_oldest_event_age_seconds"] > 0
    assert pending["gateway_backlog_jobs"] == 0

    app = client.app
    assert client.portal is not None
    assert client.portal.call(app.state.dispatcher.run_once) == 2  # type: ignore[attr-defined]
    dispatched = _gauges(client)
    assert dispatched["gateway_backlog_events"] == 0
    assert dispatched["gateway_backlog_oldest_event_age_seconds"] == 0
    # each event made a call due now and one scheduled an hour ahead: only the calls wait
    assert dispatched["gateway_backlog_jobs"] == 2
    assert dispatched["gateway_backlog_oldest_job_age_seconds"] > 0
