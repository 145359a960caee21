"""The shipped integrations' declared health requests, probed by a real `gateway serve` in
the background, against the provider sandbox on loopback (never the network)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.config.model import load_config
from gateway.sandbox import SandboxHandle, running_sandbox
from tests.helpers import REPO
from tests.helpers.app import ADMIN_TOKEN
from tests.helpers.servers import gateway_process

pytestmark = pytest.mark.slow

SHIPPED = REPO / "integrations.d"
PROBED = (
    "calcom",
    "google_calendar",
    "outlook",
    "retell",
    "sendgrid",
    "stripe",
    "twilio",
    "whatsapp",
)


def seed_folder(tmp_path: Path) -> Path:
    """The shipped files less the providers the sandbox does not stand in for (their health
    requests would leave loopback): the seed integrations, every flow, tenant and event."""
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    for file in SHIPPED.glob("*.yaml"):
        docs = [d for d in yaml.safe_load_all(file.read_text()) if isinstance(d, dict)]
        outside = any(
            d.get("kind") == "integration" and d.get("name") not in (*PROBED, "segment", "sentry")
            for d in docs
        )
        if not outside:
            shutil.copy(file, folder / file.name)
    return folder


def sandbox_env(sandbox: SandboxHandle, folder: Path = SHIPPED) -> dict[str, str]:
    """Every shipped integration pointed at the sandbox, with made-up credentials."""
    env = {
        **sandbox.base_urls(*PROBED, "segment"),
        "GOOGLE_OAUTH_TOKEN_URL": sandbox.url_for("google_oauth/token"),
        "OUTLOOK_LOGIN_URL": sandbox.url_for("microsoft_login"),
        "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
        "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
        "GOOGLE_CLIENT_ID": "sandbox-google-client",
        "OUTLOOK_CLIENT_ID": "sandbox-outlook-client",
        "OUTLOOK_TENANT_ID": "sandbox-directory",
        "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    config = load_config(folder, env, templates_dir=REPO / "templates")
    for integration in config.integrations.values():
        if integration.api is not None:
            for name in integration.api.secrets:
                env.setdefault(name, f"test-{name.lower()}")
    return env


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(REPO / "sandbox" / "responses.yaml") as handle:
        yield handle


def _rows(url: str) -> list[dict[str, Any]]:
    listed = httpx.get(
        f"{url}/admin/api/integrations", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert listed.status_code == 200, listed.text
    return [row for item in listed.json()["integrations"] for row in item["tenants"]]


def test_every_shipped_health_request_is_probed_and_healthy(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    folder = seed_folder(tmp_path)
    env = sandbox_env(sandbox, folder)
    with gateway_process(folder, tmp_path / "g.db", env, ["--health-checks"]) as server:
        deadline = time.monotonic() + 30
        while True:
            rows = {r["integration"]: r for r in _rows(server.url)}
            if all(rows[name]["checked_at"] for name in PROBED) or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        for name in PROBED:
            assert rows[name]["status"] == "healthy", rows[name]["last_error"]
            assert rows[name]["latency_ms"]["last"] is not None
        assert rows["segment"]["status"] == "unknown"  # it declares no api.health
        metrics = httpx.get(
            f"{server.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ).text
        assert 'gateway_integration_up{integration="stripe",tenant="default"} 1.0' in metrics
        shown = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "health", "--url", server.url],
            env={**env, "PATH": ""},
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lines = {line.split()[0]: line.split() for line in shown.stdout.splitlines()[1:] if line}
    assert lines["stripe"][:3] == ["stripe", "default", "healthy"]
    answered = {r.path: r for r in sandbox.requests() if r.method == "GET" and r.rule}
    stripe = answered["/stripe/v1/balance"]  # the declared request, with the engine's auth
    assert (stripe.rule, stripe.headers["authorization"]) == (
        "stripe-balance",
        f"Bearer {env['STRIPE_API_KEY']}",
    )
    assert {"/sendgrid/v3/scopes", "/calcom/v2/me", "/retell/list-agents"} <= set(answered)
