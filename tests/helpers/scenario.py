"""The business scenario's setting: the shipped integrations wired to a running provider
sandbox, and signed webhooks posted to the gateway as the providers post them."""

from __future__ import annotations

import copy
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

PROVIDERS = (
    "retell",
    "calcom",
    "stripe",
    "twilio",
    "sendgrid",
    "google_calendar",
    "segment",
    "whatsapp",
)
SECRETS = {
    "RETELL_API_KEY": "key_retell",
    "CALCOM_API_KEY": "cal_live_test",
    "CALCOM_WEBHOOK_SECRET": "cal-secret",
    "STRIPE_WEBHOOK_SECRET": "whsec_scenario",
    "STRIPE_API_KEY": "sk_test_scenario",
    "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
    "TWILIO_AUTH_TOKEN": "twilio-token",
    "TWILIO_FROM_NUMBER": "+15005550006",
    "SENDGRID_API_KEY": "SG.scenario",
    "SENDGRID_FROM_EMAIL": "bookings@praxis.example",
    "SEGMENT_WRITE_KEY": "segment-write-key",
    "GOOGLE_CLIENT_ID": "google-client",
    "GOOGLE_CLIENT_SECRET": "google-secret",
    "GOOGLE_REFRESH_TOKEN": "google-refresh",
    "WHATSAPP_ACCESS_TOKEN": "wa-token",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
}


def scenario_sandbox() -> Iterator[SandboxHandle]:
    """The provider sandbox with the shipped answers (a module fixture's body)."""
    with running_sandbox(REPO / "sandbox" / "responses.yaml") as handle:
        yield handle


def scenario_gateway(
    sandbox: SandboxHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Config]]:
    """The gateway on the shipped integrations, every provider pointed at `sandbox`."""
    env = {
        **SECRETS,
        **sandbox.base_urls(*PROVIDERS),
        "GOOGLE_OAUTH_TOKEN_URL": sandbox.url_for("google_oauth/token"),
    }
    config = load_config(REPO / "integrations.d", env)
    db = tmp_path_factory.mktemp("scenario") / "gateway.db"
    app = create_app(config, SQLiteStore(f"sqlite:///{db}"), Settings.from_env(env), env)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, config


def post_example(
    client: TestClient,
    config: Config,
    integration: str,
    example: str,
    body: dict[str, Any],
    tenant: str | None = "demo",
) -> Any:
    """Sign a declared example with its body replaced, as the provider would, and post it
    (to the tenant's URL; the default tenant's when `tenant` is None)."""
    declared = config.integrations[integration].example(example)
    assert declared is not None
    changed = {**declared, "body": body}
    suffix = f"/{tenant}" if tenant else ""
    request = signed_example(
        config.integrations[integration],
        changed,
        f"http://testserver/webhooks/{integration}{suffix}",
        SecretLookup(integration, {}, SECRETS),
    )
    response = client.request(
        request.method, request.url, headers=request.headers, content=request.body
    )
    assert response.status_code == 200, response.text
    return response.json()


def body_of(config: Config, integration: str, example: str) -> dict[str, Any]:
    declared = config.integrations[integration].example(example)
    assert declared is not None
    found: dict[str, Any] = copy.deepcopy(declared["body"])
    return found


def wait_for_jobs(
    client: TestClient, event_id: str, count: int, timeout: float = 10
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs: list[dict[str, Any]] = admin(client, f"/admin/api/events/{event_id}")["jobs"]
        if len(jobs) >= count and all(j["status"] not in ("running",) for j in jobs):
            settled = [
                j for j in jobs if j["status"] in ("succeeded", "dead", "queued", "cancelled")
            ]
            if len(settled) == len(jobs) and all(
                j["status"] != "queued" or j["schedule_key"] for j in jobs
            ):
                return jobs
        time.sleep(0.05)
    raise AssertionError(f"jobs of {event_id} did not settle: {jobs}")
