"""Languages end to end: a Cal.com BOOKING_CREATED, signed as Cal.com signs it, confirmed by
SMS and email in the attendee's language, else the tenant's, else English. Assertions are on
what the sandbox received and on the message log.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.config.model import Config
from gateway.config.signing import signed_example
from gateway.credentials.secrets import SecretLookup
from gateway.sandbox.server import SandboxHandle
from tests.helpers.app import admin
from tests.helpers.scenario import SECRETS, post_example, scenario_gateway, scenario_sandbox

# 09:00 in Berlin on Tuesday, 15 December 2026 (the demo practice's time zone)
START, END = "2026-12-15T08:00:00Z", "2026-12-15T08:30:00Z"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    yield from scenario_sandbox()


@pytest.fixture(scope="module")
def gateway(
    sandbox: SandboxHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Config]]:
    yield from scenario_gateway(sandbox, tmp_path_factory)


def _booking(config: Config, uid: str, language: str | None) -> dict[str, Any]:
    """The shipped BOOKING_CREATED example on 15 December 2026, 45 EUR, in `language`."""
    declared = config.integrations["calcom"].example("booking_created")
    assert declared is not None
    body: dict[str, Any] = copy.deepcopy(declared["body"])
    payload = body["payload"]
    payload.update(uid=uid, startTime=START, endTime=END, price=4500, currency="eur")
    attendee = payload["attendees"][0]
    attendee.update(timeZone="Europe/Berlin", name="Jana Schmidt")
    if language is None:
        attendee.pop("language", None)
    else:
        attendee["language"] = {"locale": language}
    return body


def _post(client: TestClient, config: Config, body: dict[str, Any], tenant: str) -> str:
    """Sign the booking as Cal.com would and post it to the tenant's URL: the event's id."""
    return str(post_example(client, config, "calcom", "booking_created", body, tenant)["event_id"])


def _settled(client: TestClient, event_id: str) -> dict[str, dict[str, Any]]:
    """The event's jobs by action, once the SMS and the email have gone."""
    deadline = time.monotonic() + 10
    jobs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        jobs = admin(client, f"/admin/api/events/{event_id}")["jobs"]
        sends = [j for j in jobs if j["action"] in ("sms-confirmation", "email-confirmation")]
        if len(sends) == 2 and all(j["status"] in ("succeeded", "dead") for j in sends):
            return {j["action"]: j for j in jobs}
        time.sleep(0.05)
    raise AssertionError(f"the confirmations of {event_id} did not settle: {jobs}")


def _sent(
    client: TestClient, config: Config, sandbox: SandboxHandle, body: dict[str, Any], tenant: str
) -> tuple[str, dict[str, Any], dict[str, dict[str, Any]]]:
    """Post a booking; the SMS text, the email request and the messages recorded, by action."""
    sandbox.clear_requests()
    jobs = _settled(client, _post(client, config, body, tenant))
    assert jobs["sms-confirmation"]["status"] == "succeeded", jobs["sms-confirmation"]
    assert jobs["email-confirmation"]["status"] == "succeeded", jobs["email-confirmation"]
    (sms,) = sandbox.requests("/twilio/2010-04-01/Accounts/", "POST")
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert sms.form is not None and mail.json is not None
    messages = admin(client, "/admin/api/messages?limit=500")["messages"]
    by_job = {m["job_id"]: m for m in messages}
    recorded = {action: by_job[job["id"]] for action, job in jobs.items() if job["id"] in by_job}
    return dict(sms.form)["Body"], mail.json, recorded


def _contents(mail: dict[str, Any]) -> dict[str, str]:
    return {part["type"]: part["value"] for part in mail["content"]}


def test_a_german_attendee_gets_german_sms_and_email(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    text, mail, recorded = _sent(client, config, sandbox, _booking(config, "de-1", "de"), "demo")
    assert text.startswith("Guten Tag Jana Schmidt, Ihr Termin bei Dr. Anna Weber ist bestätigt")
    assert "Dienstag, 15. Dezember 2026 um 09:00 Uhr" in text  # Berlin time, German format
    assert "Preis: 45,00 €." in text  # an SMS keeps to plain spaces (GSM 7-bit)
    assert mail["subject"] == "Ihr Termin bei Dr. Anna Weber am Dienstag, 15. Dezember um 09:00 Uhr"
    parts = _contents(mail)
    assert "Ihr Termin ist bestätigt." in parts["text/plain"]
    assert "Dienstag, 15. Dezember 2026, 09:00\u201309:30 Uhr" in parts["text/plain"]
    assert "45,00\u00a0€" in parts["text/plain"]  # CLDR's no-break space, kept in an email
    assert "Mit freundlichen Grüßen" in parts["text/plain"]
    assert '<html lang="de">' in parts["text/html"]
    assert "45,00\u00a0€" in parts["text/html"]
    assert recorded["sms-confirmation"]["template"] == "sms/booking-confirmation.de.txt"
    assert recorded["email-confirmation"]["template"] == "email/booking-confirmation.de.txt"


def test_an_english_attendee_gets_english_even_where_the_practice_speaks_german(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    body = _booking(config, "en-1", "en")
    text, mail, recorded = _sent(client, config, sandbox, body, "demo")
    assert text.startswith("Hi Jana Schmidt, your appointment with Dr. Anna Weber is confirmed")
    assert "Tuesday, December 15, 2026 at 9:00 AM" in text
    assert "Price: €45.00." in text
    assert (
        mail["subject"] == "Your appointment with Dr. Anna Weber on Tuesday, December 15 at 9:00 AM"
    )
    parts = _contents(mail)
    assert "your appointment is confirmed." in parts["text/plain"]
    assert "Kind regards," in parts["text/plain"]
    assert "Guten Tag" not in parts["text/plain"] + parts["text/html"]
    assert recorded["sms-confirmation"]["template"] == "sms/booking-confirmation.txt"
    assert recorded["email-confirmation"]["template"] == "email/booking-confirmation.txt"


def test_without_a_language_the_tenant_locale_applies(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    assert config.tenants["demo"].locale == "de"  # integrations.d/tenants.yaml
    text, mail, recorded = _sent(client, config, sandbox, _booking(config, "t-1", None), "demo")
    assert "Dienstag, 15. Dezember 2026 um 09:00 Uhr" in text
    assert "Ihr Termin ist bestätigt." in _contents(mail)["text/plain"]
    assert recorded["sms-confirmation"]["template"] == "sms/booking-confirmation.de.txt"


def test_a_language_without_templates_falls_back_to_the_tenant_then_english(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    # French: no .fr templates; the demo practice's German comes next
    text, _, recorded = _sent(client, config, sandbox, _booking(config, "fr-1", "fr"), "demo")
    assert "Dienstag, 15. Dezember 2026" in text
    assert recorded["sms-confirmation"]["template"] == "sms/booking-confirmation.de.txt"
    # the default tenant declares no locale: English
    text, mail, recorded = _sent(client, config, sandbox, _booking(config, "fr-2", "fr"), "")
    assert "Tuesday, December 15, 2026 at 9:00 AM" in text
    assert "your appointment is confirmed." in _contents(mail)["text/plain"]
    assert recorded["sms-confirmation"]["template"] == "sms/booking-confirmation.txt"


# ---- the WhatsApp fallback of an SMS that failed: the message's language too ----


@pytest.mark.parametrize(
    ("language", "tenant", "code", "date", "at"),
    [
        ("de", "demo", "de", "Dienstag, 15. Dezember 2026", "09:00"),
        ("en", "demo", "en", "Tuesday, December 15, 2026", "9:00\u202fAM"),
        # French is not among the template's approved languages: the practice's German
        ("fr", "demo", "de", "Dienstag, 15. Dezember 2026", "09:00"),
    ],
)
def test_the_whatsapp_fallback_goes_in_the_attendee_language(
    gateway: tuple[TestClient, Config],
    sandbox: SandboxHandle,
    language: str,
    tenant: str,
    code: str,
    date: str,
    at: str,
) -> None:
    client, config = gateway
    sandbox.clear_requests()
    sandbox.add_rules(  # Twilio refuses the SMS (not retried): the WhatsApp fallback runs
        [
            {
                "method": "POST",
                "path": "/twilio/2010-04-01/Accounts/*/Messages.json",
                "status": 400,
                "json": {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400},
            }
        ]
    )
    try:
        event = _post(client, config, _booking(config, f"wa-{language}", language), tenant)
        action = "sms-confirmation/whatsapp-confirmation"
        deadline = time.monotonic() + 10
        jobs: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            jobs = {j["action"]: j for j in admin(client, f"/admin/api/events/{event}")["jobs"]}
            if jobs.get(action, {}).get("status") in ("succeeded", "dead"):
                break
            time.sleep(0.05)
        assert jobs[action]["status"] == "succeeded", jobs
    finally:
        sandbox.reset_rules()
    (whatsapp,) = sandbox.requests("/whatsapp/", "POST")
    template = whatsapp.json["template"]
    assert template["name"] == "booking_confirmation"
    assert template["language"] == {"code": code}
    (component,) = template["components"]
    assert [p["text"] for p in component["parameters"]] == ["Jana Schmidt", date, at]
    messages = admin(client, "/admin/api/messages?limit=500")["messages"]
    (message,) = [m for m in messages if m["job_id"] == jobs[action]["id"]]
    assert message["template"] == "whatsapp:booking_confirmation"


# ---- replies: a CANCEL is confirmed in the language of its keyword ----


def _reply(client: TestClient, config: Config, text: str) -> str:
    """An SMS reply `text` from the number of the sandbox's upcoming booking: the event's id."""
    declared = config.integrations["twilio"].example("incoming_sms")
    assert declared is not None
    sid = f"SM{abs(hash((text, time.time()))):032x}"[:34]
    form = {
        **declared["form"],
        "From": "+4915112345678",
        "Body": text,
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
    }
    request = signed_example(
        config.integrations["twilio"],
        {**declared, "form": form},
        "http://testserver/webhooks/twilio/demo",
        SecretLookup("twilio", {}, SECRETS),
    )
    response = client.request(
        request.method, request.url, headers=request.headers, content=request.body
    )
    assert response.status_code == 200, response.text
    (newest,) = admin(client, "/admin/api/events?integration=twilio&limit=1")["events"]
    return str(newest["id"])


def _confirmation_of(client: TestClient, event_id: str) -> tuple[str, dict[str, Any]]:
    """The SMS that confirmed a cancel reply, and its message as recorded."""
    action = "find-next-booking/cancel-booking/sms-cancelled"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        jobs = {j["action"]: j for j in admin(client, f"/admin/api/events/{event_id}")["jobs"]}
        if jobs.get(action, {}).get("status") in ("succeeded", "dead"):
            break
        time.sleep(0.05)
    assert jobs[action]["status"] == "succeeded", jobs
    messages = admin(client, "/admin/api/messages?limit=500")["messages"]
    (message,) = [m for m in messages if m["job_id"] == jobs[action]["id"]]
    return str(jobs[action]["id"]), message


@pytest.mark.parametrize(
    ("keyword", "template", "words"),
    [
        # the sandbox's booking starts 2030-06-12T08:00Z: 10:00 in Berlin, the tenant's zone
        (
            "ABSAGEN",
            "sms/reply-cancelled.de.txt",
            'Ihr Termin "Consultation" am Mittwoch, 12. Juni um 10:00 Uhr wurde wie gewünscht'
            " abgesagt.",
        ),
        (
            "Cancel",
            "sms/reply-cancelled.txt",
            'Your appointment "Consultation" on Wednesday, June 12 at 10:00 AM has been'
            " cancelled, as you asked.",
        ),
    ],
)
def test_a_cancel_reply_is_confirmed_in_the_language_of_its_keyword(
    gateway: tuple[TestClient, Config],
    sandbox: SandboxHandle,
    keyword: str,
    template: str,
    words: str,
) -> None:
    client, config = gateway
    sandbox.clear_requests()
    _, message = _confirmation_of(client, _reply(client, config, keyword))
    assert message["template"] == template
    (sms,) = sandbox.requests("/twilio/2010-04-01/Accounts/", "POST")
    assert sms.form is not None and words in dict(sms.form)["Body"]


def test_the_language_a_caller_spoke_is_booked_as_the_attendee_language(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    # Cal.com sends it back in BOOKING_CREATED (attendees[0].language.locale): the SMS and
    # email confirming a booking made by phone are in the caller's language too.
    client, config = gateway
    retell = config.integrations["retell"]
    declared = retell.example("call_analyzed_booking")
    assert declared is not None
    body: dict[str, Any] = copy.deepcopy(declared["body"])
    body["call"]["call_id"] = "call_in_german"
    analysis = body["call"]["call_analysis"]["custom_analysis_data"]
    analysis.update(language="de", appointment_start="2026-12-15T09:00:00+01:00")
    sandbox.clear_requests()
    request = signed_example(
        retell,
        {**declared, "body": body},
        "http://testserver/webhooks/retell/demo",
        SecretLookup("retell", {}, SECRETS),
    )
    response = client.request(
        request.method, request.url, headers=request.headers, content=request.body
    )
    assert response.status_code == 200, response.text
    (booking,) = sandbox.wait_for_requests(
        1, path_prefix="/calcom/v2/bookings", method="POST", timeout=10
    )
    assert booking.json is not None
    assert booking.json["attendee"]["language"] == "de"
    assert booking.json["start"] == "2026-12-15T08:00:00Z"
