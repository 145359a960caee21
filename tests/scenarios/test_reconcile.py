"""Reconciliation end to end: the shipped Stripe `events` and Cal.com `bookings` syncs deliver
what webhooks missed through the very webhook mapping and flows, exactly once.

Against the provider sandbox: a payment or a booking seen only by the sync sends its receipt or
confirmation once, and its late webhook (signed as the provider signs it) is a duplicate; one a
webhook brought first is not acted on again by the sync; runs repeated deliver nothing twice.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from starlette.testclient import TestClient

from gateway.config.model import Config
from gateway.sandbox.server import SandboxHandle
from tests.helpers.app import ADMIN_TOKEN, admin
from tests.helpers.scenario import SECRETS, scenario_gateway, scenario_sandbox

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    yield from scenario_sandbox()


@pytest.fixture(scope="module")
def gateway(
    sandbox: SandboxHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Config]]:
    yield from scenario_gateway(sandbox, tmp_path_factory)


@pytest.fixture(autouse=True)
def fresh_sandbox(sandbox: SandboxHandle) -> None:
    sandbox.reset()


def run_sync(client: TestClient, integration: str, sync: str) -> dict[str, Any]:
    response = client.post(f"/admin/api/syncs/{integration}/{sync}/run?wait=true", headers=AUTH)
    assert response.status_code == 200, response.text
    summary: dict[str, Any] = response.json()
    assert summary["status"] == "succeeded", summary
    return summary


def events_of(client: TestClient, integration: str, provider_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = admin(
        client, f"/admin/api/events?integration={integration}&provider_event_id={provider_id}"
    )["events"]
    return found


def settled(client: TestClient, event_id: str, actions: int, timeout: float = 15) -> list[Any]:
    """The event's jobs once it is dispatched and every job that is not scheduled for later
    has finished."""
    deadline = time.monotonic() + timeout
    detail: dict[str, Any] = {}
    while time.monotonic() < deadline:
        detail = admin(client, f"/admin/api/events/{event_id}")
        jobs: list[dict[str, Any]] = detail["jobs"]
        due = [j for j in jobs if not j["schedule_key"]]
        if len(jobs) >= actions and all(j["status"] in ("succeeded", "dead") for j in due):
            return jobs
        time.sleep(0.05)
    raise AssertionError(f"the jobs of {event_id} did not settle: {detail}")


# ---- Stripe ---------------------------------------------------------------------------------


def checkout_event(config: Config, event_id: str, email: str) -> dict[str, Any]:
    """A paid checkout.session.completed, created now, as the event log lists it and as the
    webhook posts it (one object for both)."""
    declared = config.integrations["stripe"].example("checkout_session_completed")
    assert declared is not None
    event: dict[str, Any] = copy.deepcopy(declared["body"])
    event["id"] = event_id
    event["created"] = int(time.time())
    event["data"]["object"]["id"] = f"cs_test_{event_id}"
    event["data"]["object"]["customer_details"]["email"] = email
    return event


def serve_stripe_events(sandbox: SandboxHandle, *events: dict[str, Any]) -> None:
    sandbox.add_rules(
        [
            {
                "path": "/stripe/v1/events",
                "method": "GET",
                "json": {"object": "list", "data": list(events), "has_more": False},
            }
        ]
    )


def post_stripe(client: TestClient, event: dict[str, Any]) -> dict[str, Any]:
    """The webhook, signed by Stripe's own SDK."""
    body = json.dumps(event, separators=(",", ":"))
    header = stripe.WebhookSignature.generate_signature_header(
        body, SECRETS["STRIPE_WEBHOOK_SECRET"], int(time.time())
    )
    response = client.post(
        "/webhooks/stripe",
        content=body.encode(),
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def receipts(sandbox: SandboxHandle, email: str) -> int:
    return sum(
        1
        for r in sandbox.requests("/sendgrid/v3/mail/send", "POST")
        if r.json["personalizations"][0]["to"][0]["email"] == email
    )


def test_a_payment_only_the_sync_saw_sends_one_receipt_and_its_late_webhook_is_a_duplicate(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    email = "missed.webhook@example.com"
    event = checkout_event(config, "evt_reconcile_sync_first", email)
    serve_stripe_events(sandbox, event)

    first = run_sync(client, "stripe", "events")
    assert first["created"] == 1
    (stored,) = events_of(client, "stripe", event["id"])
    assert stored["type"] == "checkout.session.completed"  # a webhook event, not sync.*
    jobs = settled(client, stored["id"], 2)
    assert {j["action"]: j["status"] for j in jobs} == {
        "email-receipt": "succeeded",
        "segment-order-completed": "succeeded",
    }
    detail = admin(client, f"/admin/api/events/{stored['id']}")
    assert json.loads(detail["body"]) == event
    assert detail["headers"] == {"x-gateway-sync-delivery": "events"}

    again = run_sync(client, "stripe", "events")  # the sync runs again: nothing new
    assert (again["created"], again["unchanged"]) == (0, 1)

    late = post_stripe(client, event)
    assert late == {"status": "duplicate", "event_id": stored["id"]}
    assert len(events_of(client, "stripe", event["id"])) == 1
    assert receipts(sandbox, email) == 1


def test_a_payment_the_webhook_brought_is_not_delivered_again_by_the_sync(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    email = "webhook.first@example.com"
    event = checkout_event(config, "evt_reconcile_webhook_first", email)
    accepted = post_stripe(client, event)
    assert accepted["status"] == "accepted"
    settled(client, accepted["event_id"], 2)
    assert receipts(sandbox, email) == 1

    serve_stripe_events(sandbox, event)
    for _ in range(2):
        run_sync(client, "stripe", "events")
    (stored,) = events_of(client, "stripe", event["id"])
    assert stored["id"] == accepted["event_id"]
    assert receipts(sandbox, email) == 1


def test_an_old_event_in_the_log_is_recorded_without_a_receipt(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    event = checkout_event(config, "evt_reconcile_old", "long.ago@example.com")
    event["created"] = int(time.time()) - 4 * 86400  # beyond max_age: 3d
    serve_stripe_events(sandbox, event)
    summary = run_sync(client, "stripe", "events")
    assert summary["created"] == 1
    assert events_of(client, "stripe", event["id"]) == []


# ---- Cal.com --------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def booking(uid: str, phone: str, email: str) -> dict[str, Any]:
    """An accepted booking three days ahead, made a moment ago, as GET /v2/bookings lists it."""
    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    return {
        "id": 4242,
        "uid": uid,
        "title": "Consultation between Dr. Anna Weber and Jane Doe",
        "hosts": [
            {"id": 5, "name": "Dr. Anna Weber", "email": "anna.weber@praxis-weber.de",
             "timeZone": "Europe/Berlin"},
        ],
        "status": "accepted",
        "start": iso(start),
        "end": iso(start + timedelta(minutes=30)),
        "duration": 30,
        "eventTypeId": 1234567,
        "location": "Praxis Weber, Torstrasse 1, Berlin",
        "attendees": [
            {"name": "Jane Doe", "email": email, "timeZone": "Europe/Berlin",
             "phoneNumber": phone, "language": "en", "absent": False},
        ],
        "metadata": {},
        "createdAt": iso(datetime.now(UTC)),
        "updatedAt": iso(datetime.now(UTC)),
    }  # fmt: skip


def serve_bookings(sandbox: SandboxHandle, *bookings: dict[str, Any]) -> None:
    sandbox.add_rules(
        [
            {
                "path": "/calcom/v2/bookings",
                "method": "GET",
                "json": {
                    "status": "success",
                    "data": list(bookings),
                    "pagination": {"hasNextPage": False},
                },
            }
        ]
    )


def booking_webhook(config: Config, record: dict[str, Any]) -> dict[str, Any]:
    """Cal.com's BOOKING_CREATED of the same booking."""
    declared = config.integrations["calcom"].example("booking_created")
    assert declared is not None
    body: dict[str, Any] = copy.deepcopy(declared["body"])
    payload = body["payload"]
    payload.update(uid=record["uid"], startTime=record["start"], endTime=record["end"])
    payload["attendees"][0].update(
        email=record["attendees"][0]["email"], phoneNumber=record["attendees"][0]["phoneNumber"]
    )
    return body


def post_calcom(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    """Signed as Cal.com signs: hex HMAC-SHA256 of the raw body, X-Cal-Signature-256."""
    raw = json.dumps(body).encode()
    signature = hmac.new(SECRETS["CALCOM_WEBHOOK_SECRET"].encode(), raw, hashlib.sha256)
    response = client.post(
        "/webhooks/calcom",
        content=raw,
        headers={"X-Cal-Signature-256": signature.hexdigest(), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def texts(sandbox: SandboxHandle, phone: str) -> int:
    return sum(
        1
        for r in sandbox.requests("/twilio/2010-04-01/Accounts/", "POST")
        if dict(r.form or []).get("To") == phone
    )


def mails(sandbox: SandboxHandle, email: str) -> int:
    return sum(
        1
        for r in sandbox.requests("/sendgrid/v3/mail/send", "POST")
        if r.json["personalizations"][0]["to"][0]["email"] == email
    )


def test_a_booking_whose_webhook_never_came_is_confirmed_once_by_the_sync(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    phone, email = "+14155550181", "sync.booking@example.com"
    record = booking("uidReconcileSyncFirst", phone, email)
    serve_bookings(sandbox, record)

    run_sync(client, "calcom", "bookings")
    (stored,) = events_of(client, "calcom", f"BOOKING_CREATED:{record['uid']}")
    jobs = settled(client, stored["id"], 4)
    statuses = {j["action"]: j["status"] for j in jobs if not j["schedule_key"]}
    assert statuses["sms-confirmation"] == "succeeded", jobs
    assert statuses["email-confirmation"] == "succeeded", jobs
    assert (texts(sandbox, phone), mails(sandbox, email)) == (1, 1)

    for _ in range(2):  # repeated runs deliver nothing again
        run_sync(client, "calcom", "bookings")
    late = post_calcom(client, booking_webhook(config, record))
    assert late == {"status": "duplicate", "event_id": stored["id"]}
    assert len(events_of(client, "calcom", f"BOOKING_CREATED:{record['uid']}")) == 1
    assert (texts(sandbox, phone), mails(sandbox, email)) == (1, 1)


def test_a_booking_the_webhook_brought_is_not_confirmed_again_by_the_sync(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    phone, email = "+14155550182", "webhook.booking@example.com"
    record = booking("uidReconcileWebhookFirst", phone, email)
    accepted = post_calcom(client, booking_webhook(config, record))
    assert accepted["status"] == "accepted"
    settled(client, accepted["event_id"], 4)
    assert (texts(sandbox, phone), mails(sandbox, email)) == (1, 1)

    record["updatedAt"] = iso(datetime.now(UTC))  # changed since: the sync writes it again
    serve_bookings(sandbox, record)
    run_sync(client, "calcom", "bookings")
    (stored,) = events_of(client, "calcom", f"BOOKING_CREATED:{record['uid']}")
    assert stored["id"] == accepted["event_id"]
    assert (texts(sandbox, phone), mails(sandbox, email)) == (1, 1)


def test_a_cancelled_or_past_booking_is_not_confirmed_by_the_sync(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, _ = gateway
    cancelled = booking("uidReconcileCancelled", "+14155550183", "cancelled@example.com")
    cancelled["status"] = "cancelled"
    past = booking("uidReconcilePast", "+14155550184", "past@example.com")
    past["start"] = iso(datetime.now(UTC) - timedelta(hours=2))
    serve_bookings(sandbox, cancelled, past)
    summary = run_sync(client, "calcom", "bookings")
    assert summary["fetched"] == 2
    for uid in (cancelled["uid"], past["uid"]):
        assert events_of(client, "calcom", f"BOOKING_CREATED:{uid}") == []
