"""The business scenario end to end, through real signed webhooks and the provider sandbox.

A Retell call with a booking intent books in Cal.com; Cal.com's BOOKING_CREATED sends an SMS
and an email in the attendee's time zone, mirrors into Google Calendar and schedules a reminder
24 h before; BOOKING_CANCELLED sends an SMS and withdraws the reminder; a paid Stripe Checkout
session sends a receipt and a Segment track call. Assertions are on what the sandbox received.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from gateway.config.model import Config
from gateway.config.signing import signed_example
from gateway.credentials.secrets import SecretLookup
from gateway.sandbox.server import SandboxHandle
from tests.helpers.app import ADMIN_TOKEN, admin
from tests.helpers.scenario import (
    SECRETS,
    body_of,
    post_example,
    scenario_gateway,
    scenario_sandbox,
    wait_for_jobs,
)

START = (datetime.now(UTC) + timedelta(days=3)).replace(hour=14, minute=0, second=0, microsecond=0)
ZONE = "America/New_York"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    yield from scenario_sandbox()


@pytest.fixture(scope="module")
def gateway(
    sandbox: SandboxHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Config]]:
    yield from scenario_gateway(sandbox, tmp_path_factory)


def test_call_with_booking_intent_books_in_calcom(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    body = body_of(config, "retell", "call_analyzed_booking")
    analysis = body["call"]["call_analysis"]["custom_analysis_data"]
    analysis["appointment_start"] = START.isoformat()
    analysis["timezone"] = ZONE
    sandbox.clear_requests()
    accepted = post_example(client, config, "retell", "call_analyzed_booking", body)
    jobs = wait_for_jobs(client, accepted["event_id"], 1)
    assert [j["status"] for j in jobs] == ["succeeded"], jobs
    (booking,) = sandbox.requests("/calcom/v2/bookings", "POST")
    assert booking.headers["authorization"] == "Bearer cal_live_test"
    assert booking.headers["cal-api-version"] == "2024-08-13"
    assert datetime.fromisoformat(booking.json["start"].replace("Z", "+00:00")) == START
    assert booking.json["eventTypeId"] == analysis["event_type_id"]
    assert booking.json["attendee"]["name"] == analysis["customer_name"]
    assert booking.json["attendee"]["timeZone"] == ZONE
    assert booking.json["attendee"]["email"] == analysis["customer_email"]


def _booking_created(config: Config, uid: str) -> dict[str, Any]:
    body = body_of(config, "calcom", "booking_created")
    payload = body["payload"]
    payload["uid"] = uid
    payload["startTime"] = START.isoformat().replace("+00:00", "Z")
    payload["endTime"] = (START + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    payload["attendees"][0].update(timeZone=ZONE, phoneNumber="+1 (415) 555-0123")
    return body


def _english_time(moment: datetime, space: str) -> str:
    """9:00 AM: the time of day as CLDR writes it in English."""
    return f"{moment.hour % 12 or 12}:{moment:%M}{space}{'AM' if moment.hour < 12 else 'PM'}"


def test_booking_created_confirms_mirrors_and_schedules_a_reminder(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    sandbox.clear_requests()
    accepted = post_example(
        client, config, "calcom", "booking_created", _booking_created(config, "uid-created")
    )
    jobs = wait_for_jobs(client, accepted["event_id"], 4)
    by_action = {j["action"]: j for j in jobs}
    assert by_action["sms-confirmation"]["last_error"] is None, by_action["sms-confirmation"]
    assert {a: j["status"] for a, j in by_action.items() if a != "schedule-reminder"} == {
        "sms-confirmation": "succeeded",
        "email-confirmation": "succeeded",
        "create-google-event": "succeeded",
    }
    local = START.astimezone(ZoneInfo(ZONE))
    (sms,) = sandbox.requests("/twilio/2010-04-01/Accounts/", "POST")
    assert sms.path == f"/twilio/2010-04-01/Accounts/{SECRETS['TWILIO_ACCOUNT_SID']}/Messages.json"
    sid_token = f"{SECRETS['TWILIO_ACCOUNT_SID']}:{SECRETS['TWILIO_AUTH_TOKEN']}".encode()
    assert sms.headers["authorization"] == "Basic " + base64.b64encode(sid_token).decode()
    assert sms.form is not None
    form = dict(sms.form)
    assert form["To"] == "+14155550123"  # normalised to E.164
    assert form["From"] == SECRETS["TWILIO_FROM_NUMBER"]
    # the attendee's own time zone, as English writes the time (an SMS has plain spaces only)
    assert _english_time(local, " ") in form["Body"]
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert mail.headers["authorization"] == f"Bearer {SECRETS['SENDGRID_API_KEY']}"
    assert mail.json["personalizations"][0]["to"][0]["email"] == "jane.doe@example.com"
    assert mail.json["from"]["email"] == SECRETS["SENDGRID_FROM_EMAIL"]
    assert _english_time(local, " ") in mail.json["subject"]  # a subject: one line, plain spaces
    types = [c["type"] for c in mail.json["content"]]
    assert types == ["text/plain", "text/html"]
    (event,) = sandbox.requests("/google_calendar/calendars/", "POST")
    assert event.path == "/google_calendar/calendars/primary/events"
    assert event.headers["authorization"].startswith("Bearer ya29.sandbox-")
    assert event.json["start"]["dateTime"].startswith(START.strftime("%Y-%m-%dT%H:%M"))
    (token,) = sandbox.requests("/google_oauth/token", "POST")
    assert token.form is not None and dict(token.form)["grant_type"] == "refresh_token"
    reminder = by_action["schedule-reminder"]
    assert reminder["status"] == "queued"
    assert reminder["schedule_key"] == "reminder-uid-created"
    assert reminder["run_at"] == pytest.approx((START - timedelta(hours=24)).timestamp())


def test_booking_cancelled_texts_and_withdraws_the_reminder(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    created = post_example(
        client, config, "calcom", "booking_created", _booking_created(config, "uid-cancel")
    )
    wait_for_jobs(client, created["event_id"], 4)
    sandbox.clear_requests()
    body = body_of(config, "calcom", "booking_cancelled")
    body["payload"].update(uid="uid-cancel", startTime=START.isoformat().replace("+00:00", "Z"))
    body["payload"]["attendees"][0]["phoneNumber"] = "+14155550123"
    cancelled = post_example(client, config, "calcom", "booking_cancelled", body)
    jobs = wait_for_jobs(client, cancelled["event_id"], 1)
    assert "dead" not in [j["status"] for j in jobs], jobs
    sms = sandbox.requests("/twilio/", "POST")
    assert [dict(r.form or [])["To"] for r in sms] == ["+14155550123"]
    reminders = admin(client, f"/admin/api/events/{created['event_id']}")["jobs"]
    (reminder,) = [j for j in reminders if j["schedule_key"] == "reminder-uid-cancel"]
    assert reminder["status"] == "cancelled"


def test_paid_checkout_sends_a_receipt_and_tracks_it(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    sandbox.clear_requests()
    accepted = post_example(
        client,
        config,
        "stripe",
        "checkout_session_completed",
        body_of(config, "stripe", "checkout_session_completed"),
    )
    jobs = wait_for_jobs(client, accepted["event_id"], 2)
    assert {j["action"]: (j["status"], j["last_error"]) for j in jobs} == {
        "email-receipt": ("succeeded", None),
        "segment-order-completed": ("succeeded", None),
    }
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert mail.json["personalizations"][0]["to"][0]["email"] == "jane.doe@example.com"
    assert "45" in json.dumps(mail.json["content"])  # 4500 cents, rendered as money
    (track,) = sandbox.requests("/segment/v1/track", "POST")
    expected = base64.b64encode(f"{SECRETS['SEGMENT_WRITE_KEY']}:".encode()).decode()
    assert track.headers["authorization"] == f"Basic {expected}"
    assert track.json["event"] == "Order Completed"
    assert track.json["messageId"]


def test_scenario_left_no_dead_jobs(gateway: tuple[TestClient, Config], tmp_path: Path) -> None:
    client, _ = gateway
    assert admin(client, "/admin/api/jobs?status=dead")["jobs"] == []


def test_metrics_count_what_the_scenario_did(gateway: tuple[TestClient, Config]) -> None:
    client, _ = gateway
    response = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }

    def total(name: str, **labels: str) -> float:
        return sum(
            value
            for (found, pairs), value in samples.items()
            if found == name and labels.items() <= dict(pairs).items()
        )

    succeeded = admin(client, "/admin/api/jobs?status=succeeded&limit=500")["jobs"]
    assert succeeded
    for integration in {j["integration"] for j in succeeded}:
        expected = sum(1 for j in succeeded if j["integration"] == integration)
        attempts = total("gateway_job_attempts_total", integration=integration)
        assert (
            total("gateway_job_attempts_total", integration=integration, outcome="succeeded")
            == expected
        )
        assert attempts == expected  # nothing was retried or buried in the scenario
    events = admin(client, "/admin/api/events?limit=500")["events"]
    assert total("gateway_webhook_events_total", result="stored") == len(events)
    assert total("gateway_committed_events_total") >= len(events)
    assert total("gateway_jobs", status="succeeded") == len(succeeded)
    assert total("gateway_jobs", status="dead") == 0
    assert total("gateway_circuit_state", integration="twilio", state="closed") == 1


# ---- event contracts: a missing optional field never stops a flow that does not need it ----


def test_booking_without_optional_fields_still_runs_every_flow(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    # Before the contracts: a BOOKING_CREATED without eventTypeId (or price and currency, a
    # location, the attendee's language) failed as a whole: no SMS, email, mirror or reminder.
    client, config = gateway
    body = _booking_created(config, "uid-sparse")
    payload = body["payload"]
    for key in ("eventTypeId", "price", "currency", "location"):
        payload.pop(key, None)
    payload["attendees"][0].pop("language", None)
    sandbox.clear_requests()
    accepted = post_example(client, config, "calcom", "booking_created", body)
    jobs = wait_for_jobs(client, accepted["event_id"], 4)
    assert sorted(j["action"] for j in jobs) == [
        "create-google-event",
        "email-confirmation",
        "schedule-reminder",
        "sms-confirmation",
    ]
    assert "dead" not in [j["status"] for j in jobs], jobs
    event = admin(client, f"/admin/api/events/{accepted['event_id']}")
    assert event["status"] == "dispatched"


def test_booking_cancelled_without_a_reason_withdraws_the_reminder(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    # Cal.com leaves cancellationReason out when the attendee gives none. Before, the event
    # failed and the reminder for the cancelled appointment stayed queued.
    client, config = gateway
    created = post_example(
        client, config, "calcom", "booking_created", _booking_created(config, "uid-noreason")
    )
    wait_for_jobs(client, created["event_id"], 4)
    body = body_of(config, "calcom", "booking_cancelled")
    body["payload"].update(uid="uid-noreason", startTime=START.isoformat().replace("+00:00", "Z"))
    body["payload"].pop("cancellationReason", None)
    cancelled = post_example(client, config, "calcom", "booking_cancelled", body)
    wait_for_jobs(client, cancelled["event_id"], 1)
    reminders = admin(client, f"/admin/api/events/{created['event_id']}")["jobs"]
    (reminder,) = [j for j in reminders if j["schedule_key"] == "reminder-uid-noreason"]
    assert reminder["status"] == "cancelled"


def test_checkout_without_payment_intent_or_customer_details_sends_the_receipt(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    body = body_of(config, "stripe", "checkout_session_completed")
    body["id"] = "evt_sparse_checkout"
    session = body["data"]["object"]
    session.pop("payment_intent", None)
    session["customer_details"] = None
    session["customer_email"] = "no.details@example.com"
    sandbox.clear_requests()
    accepted = post_example(client, config, "stripe", "checkout_session_completed", body)
    jobs = wait_for_jobs(client, accepted["event_id"], 2)
    assert {j["action"]: j["status"] for j in jobs} == {
        "email-receipt": "succeeded",
        "segment-order-completed": "succeeded",
    }
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert mail.json["personalizations"][0]["to"][0]["email"] == "no.details@example.com"
    (track,) = sandbox.requests("/segment/v1/track", "POST")
    assert "None" not in json.dumps(track.json)  # a null is left out, never printed


def test_a_web_call_without_direction_still_requests_its_booking(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    # Web calls have no direction and no numbers: the booking request was lost before.
    client, config = gateway
    body = body_of(config, "retell", "call_analyzed_booking")
    body["call"]["call_id"] = "web_call_without_direction"
    body["call"]["call_type"] = "web_call"
    for key in ("direction", "from_number", "to_number"):
        body["call"].pop(key, None)
    analysis = body["call"]["call_analysis"]["custom_analysis_data"]
    analysis.pop("customer_phone", None)
    analysis["appointment_start"] = START.isoformat()
    sandbox.clear_requests()
    accepted = post_example(client, config, "retell", "call_analyzed_booking", body)
    jobs = wait_for_jobs(client, accepted["event_id"], 1)
    assert [(j["action"], j["status"]) for j in jobs] == [("create-booking", "succeeded")]
    (booking,) = sandbox.requests("/calcom/v2/bookings", "POST")
    assert "phoneNumber" not in booking.json["attendee"]


def post_form(
    client: TestClient, config: Config, integration: str, example: str, form: dict[str, str]
) -> Any:
    """Sign a declared form example with its fields replaced, post it: the stored event's id
    (a form webhook's answer is the provider's, TwiML)."""
    declared = config.integrations[integration].example(example)
    assert declared is not None
    request = signed_example(
        config.integrations[integration],
        {**declared, "form": form},
        f"http://testserver/webhooks/{integration}/demo",
        SecretLookup(integration, {}, SECRETS),
    )
    response = client.request(
        request.method, request.url, headers=request.headers, content=request.body
    )
    assert response.status_code == 200, response.text
    (newest,) = admin(client, f"/admin/api/events?integration={integration}&limit=1")["events"]
    return newest["id"]


def _message_of(client: TestClient, job_id: str) -> dict[str, Any]:
    messages = admin(client, "/admin/api/messages?limit=500")["messages"]
    (found,) = [m for m in messages if m["job_id"] == job_id]
    return dict(found)


def test_a_delivered_status_callback_updates_the_message(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    sandbox.clear_requests()
    accepted = post_example(
        client, config, "calcom", "booking_created", _booking_created(config, "uid-delivered")
    )
    jobs = {j["action"]: j for j in wait_for_jobs(client, accepted["event_id"], 4)}
    sms = _message_of(client, jobs["sms-confirmation"]["id"])
    (sent,) = sandbox.requests("/twilio/2010-04-01/Accounts/", "POST")
    assert sent.form is not None
    assert sms["provider_id"].startswith("SM")
    assert (sms["status"], sms["recipient"], sms["channel"]) == (
        "sent",
        "+14155550123",
        "twilio.sms",
    )
    assert sms["template"] == "sms/booking-confirmation.txt"
    mail = _message_of(client, jobs["email-confirmation"]["id"])
    assert mail["status"] == "sent" and mail["provider_id"]  # SendGrid's X-Message-Id
    (mailed,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert mailed.json["custom_args"] == {"gateway_message_id": mail["id"]}

    form = dict(config.integrations["twilio"].example("status_delivered")["form"])  # type: ignore[index]
    form.update(MessageSid=sms["provider_id"], SmsSid=sms["provider_id"], To="+14155550123")
    status = post_form(client, config, "twilio", "status_delivered", form)
    (update,) = wait_for_jobs(client, status, 1)
    assert (update["kind"], update["status"]) == ("update_message", "succeeded"), update
    now = admin(client, f"/admin/api/messages/{sms['id']}")
    assert now["status"] == "delivered"
    assert [s["status"] for s in now["timeline"]] == ["sending", "sent", "delivered"]
    delivered = admin(client, "/admin/api/messages?recipient=%2B14155550123&status=delivered")
    assert [m["id"] for m in delivered["messages"]] == [sms["id"]]
    bad = client.get(
        "/admin/api/messages?status=lost", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert bad.status_code == 400 and "status must be one of" in bad.text


def _reply(client: TestClient, config: Config, sender: str, text: str) -> str:
    """An SMS reply from `sender`: the stored event's id."""
    form = dict(config.integrations["twilio"].example("incoming_sms")["form"])  # type: ignore[index]
    sid = f"SM{abs(hash((sender, text, time.time()))):032x}"[:34]
    form.update(From=sender, Body=text, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
    return str(post_form(client, config, "twilio", "incoming_sms", form))


def test_stop_then_a_booking_sends_no_sms_and_the_email_still_goes_out(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    phone = "+14155550123"  # the attendee's number of _booking_created
    stop = _reply(client, config, phone, " stopp ")  # German, any case and spacing
    jobs = wait_for_jobs(client, stop, 1)
    assert [(j["action"], j["status"]) for j in jobs] == [("opt-out-sms", "succeeded")], jobs
    sandbox.clear_requests()
    accepted = post_example(
        client, config, "calcom", "booking_created", _booking_created(config, "uid-stopped")
    )
    by_action = {j["action"]: j for j in wait_for_jobs(client, accepted["event_id"], 4)}
    assert by_action["sms-confirmation"]["status"] == "succeeded"
    assert sandbox.requests("/twilio/2010-04-01/Accounts/", "POST") == []  # no SMS
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert mail.json["personalizations"][0]["to"][0]["email"] == "jane.doe@example.com"
    skipped = _message_of(client, by_action["sms-confirmation"]["id"])
    assert skipped["status"] == "skipped"
    assert skipped["timeline"][-1]["detail"] == "opted out: replied stopp"
    listed = admin(client, "/admin/api/messages?recipient=%2B14155550123&status=skipped")
    assert skipped["id"] in [m["id"] for m in listed["messages"]]

    start = _reply(client, config, phone, "START")
    assert [j["action"] for j in wait_for_jobs(client, start, 1)] == ["opt-in-sms"]
    sandbox.clear_requests()
    again = post_example(
        client, config, "calcom", "booking_created", _booking_created(config, "uid-restarted")
    )
    wait_for_jobs(client, again["event_id"], 4)
    (sms,) = sandbox.requests("/twilio/2010-04-01/Accounts/", "POST")
    assert sms.form is not None and dict(sms.form)["To"] == phone


def test_a_cancel_reply_cancels_the_next_booking_in_calcom_and_confirms(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    sandbox.clear_requests()
    cancel = _reply(client, config, "+4915112345678", "Cancel")
    jobs = {j["action"]: j for j in wait_for_jobs(client, cancel, 3)}
    assert {a: j["status"] for a, j in jobs.items()} == {
        "find-next-booking": "succeeded",
        "find-next-booking/cancel-booking": "succeeded",
        "find-next-booking/cancel-booking/sms-cancelled": "succeeded",
    }, jobs
    (listed,) = sandbox.requests("/calcom/v2/bookings", "GET")
    assert listed.query_params["status"] == "upcoming"
    (cancelled,) = sandbox.requests("/calcom/v2/bookings/", "POST")
    assert cancelled.path == "/calcom/v2/bookings/sandbox-upcoming-jane/cancel"  # not Max's
    assert "Cancel" in cancelled.json["cancellationReason"]
    (sms,) = sandbox.requests("/twilio/2010-04-01/Accounts/", "POST")
    assert sms.form is not None
    form = dict(sms.form)
    assert form["To"] == "+4915112345678"
    assert "Consultation" in form["Body"] and "cancelled" in form["Body"]
    assert sandbox.requests("/sendgrid/v3/mail/send", "POST") == []  # a keyword: not forwarded


def test_other_replies_are_forwarded_to_the_practice(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    sandbox.clear_requests()
    reply = _reply(client, config, "+4915112345678", "Can I bring my daughter?")
    jobs = wait_for_jobs(client, reply, 1)
    assert [(j["action"], j["status"]) for j in jobs] == [("email-practice", "succeeded")]
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert mail.json["personalizations"][0]["to"][0]["email"] == "praxis@praxis-weber.example"
    assert "Can I bring my daughter?" in mail.json["content"][0]["value"]
    assert sandbox.requests("/twilio/2010-04-01/Accounts/", "POST") == []


def test_an_undelivered_sms_falls_back_to_whatsapp_once(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    sandbox.clear_requests()
    accepted = post_example(
        client, config, "calcom", "booking_created", _booking_created(config, "uid-fallback")
    )
    booking = accepted["event_id"]
    jobs = {j["action"]: j for j in wait_for_jobs(client, booking, 4)}
    sms = _message_of(client, jobs["sms-confirmation"]["id"])
    assert sandbox.requests("/whatsapp/", "POST") == []
    form = dict(config.integrations["twilio"].example("status_undelivered")["form"])  # type: ignore[index]
    form.update(MessageSid=sms["provider_id"], SmsSid=sms["provider_id"], To="+14155550123")
    undelivered = post_form(client, config, "twilio", "status_undelivered", form)
    wait_for_jobs(client, undelivered, 1)
    # a second failure report of the same message (failed after undelivered) falls back no more
    failed = post_form(
        client, config, "twilio", "status_undelivered", {**form, "MessageStatus": "failed"}
    )
    wait_for_jobs(client, failed, 1)
    jobs = {j["action"]: j for j in wait_for_jobs(client, booking, 5)}
    fallback = jobs["sms-confirmation/whatsapp-confirmation"]
    assert fallback["status"] == "succeeded", fallback
    (whatsapp,) = sandbox.requests("/whatsapp/", "POST")
    assert whatsapp.path == "/whatsapp/106540352242922/messages"
    assert whatsapp.json["to"] == "14155550123"
    assert whatsapp.json["template"]["name"] == "booking_confirmation"
    now = admin(client, f"/admin/api/messages/{sms['id']}")
    assert now["status"] == "failed"
    assert "30003" in now["timeline"][-2]["detail"]
    sent = _message_of(client, fallback["id"])
    assert (sent["channel"], sent["status"], sent["recipient"]) == (
        "whatsapp.whatsapp",
        "sent",
        "+14155550123",
    )
    assert sent["provider_id"].startswith("wamid.")
    assert len(wait_for_jobs(client, booking, 5)) == 5  # no second fallback
