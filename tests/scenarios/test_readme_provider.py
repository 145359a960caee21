"""The README's 11th provider (Square) end to end: its signed webhook runs the shipped receipt
flow, written for Stripe, because both emit the same declared `payment.succeeded`."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.config.model import Config, load_config
from gateway.config.settings import Settings
from gateway.config.signing import signed_example
from gateway.credentials.secrets import SecretLookup
from gateway.sandbox.server import SandboxHandle, running_sandbox
from gateway.store import SQLiteStore
from gateway.web.application import create_app
from tests.helpers import REPO
from tests.helpers.app import ADMIN_TOKEN, admin

SECRETS = {
    "SQUARE_SIGNATURE_KEY": "square-signature-key",
    "SQUARE_ACCESS_TOKEN": "square-token",
    "SENDGRID_API_KEY": "SG.readme",
    "SENDGRID_FROM_EMAIL": "front-desk@praxis.example",
    "SEGMENT_WRITE_KEY": "segment-write-key",
    "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
}


def _square_yaml() -> str:
    readme = (REPO / "README.md").read_text()
    match = re.search(r"<!-- readme-example.*?-->\n```\w+\n(.*?)```", readme, re.DOTALL)
    assert match, "README has no example provider"
    return match.group(1)


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, Config, SandboxHandle]]:
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "integrations.d", folder / "integrations.d")
    (folder / "integrations.d" / "square.yaml").write_text(_square_yaml())
    with running_sandbox(REPO / "sandbox" / "responses.yaml") as sandbox:
        env = {**SECRETS, **sandbox.base_urls("sendgrid", "segment", "square")}
        config = load_config(folder / "integrations.d", env, templates_dir=REPO / "templates")
        store = SQLiteStore(f"sqlite:///{folder / 'gateway.db'}")
        app = create_app(config, store, Settings.from_env(env), env)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, config, sandbox


def _jobs(client: TestClient, event_id: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    jobs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        jobs = admin(client, f"/admin/api/events/{event_id}")["jobs"]
        if len(jobs) >= count and all(j["status"] in ("succeeded", "dead") for j in jobs):
            return jobs
        time.sleep(0.05)
    raise AssertionError(f"jobs of {event_id} did not settle: {jobs}")


def test_a_square_payment_sends_the_shipped_receipt(
    gateway: tuple[TestClient, Config, SandboxHandle],
) -> None:
    client, config, sandbox = gateway
    square = config.integrations["square"]
    example = square.example("payment_completed")
    assert example is not None
    request = signed_example(
        square,
        example,
        "http://testserver/webhooks/square",
        SecretLookup("square", {}, SECRETS),
    )
    response = client.request(
        request.method, request.url, headers=request.headers, content=request.body
    )
    assert response.status_code == 200, response.text
    jobs = _jobs(client, response.json()["event_id"], 2)
    assert {j["action"]: (j["status"], j["last_error"]) for j in jobs} == {
        "email-receipt": ("succeeded", None),
        "segment-order-completed": ("succeeded", None),
    }
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert mail.json["personalizations"][0]["to"][0]["email"] == "jane@example.com"
    # 4500 minor units, as Stripe's; the default tenant has no locale: English
    assert mail.json["subject"] == "Your receipt: €45.00"
    (track,) = sandbox.requests("/segment/v1/track", "POST")
    assert track.json["messageId"] == "square-KkAkhdMsgzn59SM8A89WgKwekxLZY"
    assert "None" not in json.dumps(track.json)
