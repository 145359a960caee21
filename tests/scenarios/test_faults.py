"""Fault behaviour against the sandbox: Retry-After honoured, the breaker's whole cycle, and a
worker killed mid-job whose job runs again with the same idempotency key."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.config.model import Config, load_config
from gateway.config.settings import Settings
from gateway.config.signing import OutgoingRequest, signed_example
from gateway.credentials.secrets import SecretLookup, SecretSource
from gateway.outbound.client import OutboundClient
from gateway.outbound.failures import CircuitOpenError, RetryableError
from gateway.outbound.tokens import MemoryTokenStore
from gateway.sandbox.server import SandboxHandle, running_sandbox
from gateway.store import SQLiteStore
from gateway.web.application import create_app
from tests.helpers import REPO
from tests.helpers.app import ADMIN_TOKEN
from tests.helpers.servers import gateway_process

MESSAGES = "/twilio/2010-04-01/Accounts/*/Messages.json"
ENV = {
    "CALCOM_API_KEY": "cal_live_test",
    "CALCOM_WEBHOOK_SECRET": "cal-secret",
    "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
    "TWILIO_AUTH_TOKEN": "twilio-token",
    "TWILIO_FROM_NUMBER": "+15005550006",
    "SENDGRID_API_KEY": "SG.test",
    "SENDGRID_FROM_EMAIL": "bookings@praxis.example",
    "GOOGLE_CLIENT_SECRET": "g",
    "GOOGLE_REFRESH_TOKEN": "r",
    "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
}


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(REPO / "sandbox" / "responses.yaml") as handle:
        yield handle


def _env(sandbox: SandboxHandle) -> dict[str, str]:
    return {
        **ENV,
        **sandbox.base_urls("calcom", "twilio", "sendgrid", "google_calendar"),
        "GOOGLE_OAUTH_TOKEN_URL": sandbox.url_for("google_oauth/token"),
    }


def _booking_request(config: Config, url: str, uid: str) -> OutgoingRequest:
    declared = config.integrations["calcom"].example("booking_created")
    assert declared is not None
    body: dict[str, Any] = copy.deepcopy(declared["body"])
    start = datetime.now(UTC) + timedelta(days=3)
    body["payload"].update(uid=uid, startTime=start.isoformat(), endTime=start.isoformat())
    return signed_example(
        config.integrations["calcom"],
        {**declared, "body": body},
        url,
        SecretLookup("calcom", {}, ENV),
    )


def _sms_job(jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    found = [j for j in jobs if j["action"] == "sms-confirmation"]
    return found[0] if found else None


def _wait_sms_done(get_jobs: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        job = _sms_job(get_jobs())
        if job is not None and job["status"] in ("succeeded", "dead"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"SMS job did not finish: {job}")


def test_429_with_retry_after_is_honoured_and_the_sms_goes_out_once(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    sandbox.add_rules(
        [
            {
                "method": "POST",
                "path": MESSAGES,
                "status": 429,
                "headers": {"Retry-After": "2"},
                "times": 1,
            }
        ]
    )
    env = _env(sandbox)
    config = load_config(REPO / "integrations.d", env)
    app = create_app(
        config, SQLiteStore(f"sqlite:///{tmp_path / 'g.db'}"), Settings.from_env(env), env
    )
    with TestClient(app) as client:
        request = _booking_request(config, "http://testserver/webhooks/calcom/demo", "uid-429")
        accepted = client.post(request.url, headers=request.headers, content=request.body).json()
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

        def jobs() -> list[dict[str, Any]]:
            return client.get(f"/admin/api/events/{accepted['event_id']}", headers=auth).json()[
                "jobs"
            ]

        job = _wait_sms_done(jobs, timeout=15)
    assert (job["status"], job["attempts"]) == ("succeeded", 2)
    first, second = sandbox.requests("/twilio/", "POST")
    assert (first.status, second.status) == (429, 201)
    assert second.received_at - first.received_at >= 2.0
    token = "i-twilio-idempotency-token"
    assert first.headers[token] == second.headers[token]


def test_breaker_opens_fails_fast_half_opens_and_closes(sandbox: SandboxHandle) -> None:
    sandbox.add_rules(
        [{"method": "POST", "path": "/calcom/v2/bookings", "status": 500, "times": 5}]
    )
    env = _env(sandbox)
    config = load_config(REPO / "integrations.d", env)
    now = [1000.0]
    client = OutboundClient(config, SecretSource(env), MemoryTokenStore(), clock=lambda: now[0])
    body = {
        "start": "2030-01-01T10:00:00Z",
        "eventTypeId": 1,
        "attendee": {"name": "A", "timeZone": "UTC"},
    }

    async def book() -> Any:
        return await client.call("calcom", "create_booking", tenant="default", body=body)

    async def scenario() -> None:
        for _ in range(5):
            with pytest.raises(RetryableError) as failed:
                await book()
            assert failed.value.status == 500
        assert client.health()["calcom"]["breaker"]["state"] == "open"
        with pytest.raises(CircuitOpenError):
            await book()  # fails fast: nothing is sent while open
        assert len(sandbox.requests("/calcom/v2/bookings")) == 5
        now[0] += 61  # the breaker's 60 s timeout passes
        assert (await book()).status == 201
        assert client.health()["calcom"]["breaker"]["state"] == "half_open"
        assert (await book()).status == 201
        assert client.health()["calcom"]["breaker"]["state"] == "closed"
        await client.aclose()

    asyncio.run(scenario())
    assert len(sandbox.requests("/calcom/v2/bookings")) == 7


def test_worker_killed_mid_job_runs_it_again_with_the_same_idempotency_key(
    sandbox: SandboxHandle, tmp_path: Path
) -> None:
    sandbox.add_rules(
        [
            {
                "method": "POST",
                "path": MESSAGES,
                "status": 201,
                "json": {"sid": "SMslow"},
                "delay": 5,
                "times": 1,
            }
        ]
    )
    env = {**_env(sandbox), "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}
    config = load_config(REPO / "integrations.d", env)
    db = tmp_path / "g.db"
    folder = REPO / "integrations.d"
    with gateway_process(folder, db, env, extra=["--job-lease", "1s"]) as server:
        request = _booking_request(config, f"{server.url}/webhooks/calcom/demo", "uid-kill")
        accepted = httpx.post(request.url, headers=request.headers, content=request.body).json()
        sandbox.wait_for_requests(1, path_prefix="/twilio/", method="POST", timeout=10)
        time.sleep(1.5)  # longer than the lease: a live worker keeps it renewed
        assert len(sandbox.requests("/twilio/", "POST")) == 1
        server.kill()  # mid-job: the SMS request is in flight, its outcome never recorded
    with gateway_process(folder, db, env, extra=["--job-lease", "1s"]) as server:
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

        def jobs() -> list[dict[str, Any]]:
            url = f"{server.url}/admin/api/events/{accepted['event_id']}"
            found: list[dict[str, Any]] = httpx.get(url, headers=auth).json()["jobs"]
            return found

        job = _wait_sms_done(jobs, timeout=20)
        reminders = [j for j in jobs() if j["action"] == "schedule-reminder"]
    assert job["status"] == "succeeded"
    # the reminder due in 2 days survived the kill: still queued, exactly once
    assert [(r["status"], r["schedule_key"]) for r in reminders] == [
        ("queued", "reminder-uid-kill")
    ]
    sent = sandbox.requests("/twilio/", "POST")
    assert len(sent) == 2  # sent again after the restart ...
    tokens = {r.headers["i-twilio-idempotency-token"] for r in sent}
    assert len(tokens) == 1  # ... with the same key, so the provider acts once
