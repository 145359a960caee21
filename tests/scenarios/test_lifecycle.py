"""A booking's whole life, through signed webhooks and the provider sandbox: requested,
rejected, paid, no-show and the meeting's end (Cal.com); a reschedule or cancellation
withdrawing its reminder; a refund on cancellation by the tenant's policy; an expired checkout
and a failed payment (Stripe); and a call whose booking the agent made during the call.
Every message is in the attendee's language (Cal.com's attendee language, Stripe Checkout's
locale), else the tenant's: the demo practice speaks German. Assertions are on what the
sandbox received and on the jobs and messages the gateway recorded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.config.examples import run_example
from gateway.config.model import Config
from gateway.processing.worker import Worker
from gateway.sandbox.server import SandboxHandle
from tests.helpers.app import ADMIN_TOKEN, admin
from tests.helpers.scenario import (
    body_of,
    post_example,
    scenario_gateway,
    scenario_sandbox,
    wait_for_jobs,
)

START = (datetime.now(UTC) + timedelta(days=4)).replace(minute=0, second=0, microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    yield from scenario_sandbox()


@pytest.fixture(scope="module")
def gateway(
    sandbox: SandboxHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Config]]:
    yield from scenario_gateway(sandbox, tmp_path_factory)


@pytest.fixture(autouse=True)
def fresh_sandbox(sandbox: SandboxHandle) -> Iterator[None]:
    sandbox.clear_requests()
    yield
    sandbox.reset_rules()


def _statuses(jobs: list[dict[str, Any]]) -> dict[str, str]:
    return {j["action"]: j["status"] for j in jobs}


def _form(request: Any) -> dict[str, Any]:
    assert request.form is not None
    return dict(request.form)


def _mail_to(sandbox: SandboxHandle) -> list[str]:
    return [
        m.json["personalizations"][0]["to"][0]["email"]
        for m in sandbox.requests("/sendgrid/v3/mail/send", "POST")
    ]


def _text(mail: Any) -> str:
    (part,) = [p["value"] for p in mail.json["content"] if p["type"] == "text/plain"]
    return str(part)


def _templates(client: TestClient, jobs: list[dict[str, Any]]) -> dict[str, str]:
    """The template file each job's message was rendered from (naming its language)."""
    by_job = {m["job_id"]: m for m in admin(client, "/admin/api/messages?limit=500")["messages"]}
    return {j["action"]: by_job[j["id"]]["template"] for j in jobs if j["id"] in by_job}


def _attendee_speaks(body: dict[str, Any], uid: str, language: str | None) -> dict[str, Any]:
    """A Cal.com example as another booking (`uid`) whose attendee speaks `language`."""
    body["payload"]["uid"] = uid
    attendee = body["payload"]["attendees"][0]
    if language is None:
        attendee.pop("language", None)
    else:
        attendee["language"] = {"locale": language}
    return body


def _run_when_due(client: TestClient, config: Config, job: dict[str, Any]) -> dict[str, Any]:
    """Run a delayed job as a worker does once its time has come: a worker on the gateway's
    store and outbound client whose clock reads the job's `run_at`. Answers the job, finished."""
    app: Any = client.app
    running = app.state.worker
    due = Worker(config, running.store, running.caller, clock=lambda: float(job["run_at"]) + 1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        client.portal.call(due.run_once)  # type: ignore[union-attr]
        found: dict[str, Any] = admin(client, f"/admin/api/jobs/{job['id']}")
        if found["status"] in ("succeeded", "dead"):
            return found
        time.sleep(0.05)
    raise AssertionError(f"{job['action']} did not run when due: {found}")


def _mail_of(sandbox: SandboxHandle, job_id: str) -> Any:
    """The email the job sent (other due jobs may have run beside it)."""
    (mail,) = [
        m
        for m in sandbox.requests("/sendgrid/v3/mail/send", "POST")
        if m.headers.get("x-gateway-job") == job_id
    ]
    return mail


# ---- the language each new trigger brings, as its mapping reads it ------------------------


@pytest.mark.parametrize(
    ("integration", "example", "changed", "language"),
    [
        ("calcom", "booking_requested", {}, "de"),  # attendees[0].language.locale
        ("calcom", "booking_rejected", {}, "de"),
        ("calcom", "booking_paid", {}, "en"),
        ("calcom", "meeting_ended", {}, "en"),  # stored bookings: attendees[0].locale
        ("calcom", "booking_no_show", {}, None),  # Cal.com sends no language: the tenant's
        ("stripe", "checkout_session_expired", {}, "de"),  # Checkout's locale
        ("stripe", "checkout_session_expired", {"locale": "auto"}, "auto"),  # passed over later
        ("stripe", "checkout_session_async_payment_failed", {"locale": "en"}, "en"),
        ("stripe", "payment_intent_payment_failed", {}, None),  # a PaymentIntent has none
    ],
)
def test_the_new_mappings_bring_the_language_of_their_messages(
    gateway: tuple[TestClient, Config],
    integration: str,
    example: str,
    changed: dict[str, Any],
    language: str | None,
) -> None:
    _, config = gateway
    declared = config.integrations[integration].example(example)
    webhook = config.integrations[integration].webhook
    assert declared is not None and webhook is not None
    body = body_of(config, integration, example)
    (body["data"]["object"] if integration == "stripe" else body["payload"]).update(changed)
    run = run_example(webhook.pipeline, integration, {**declared, "body": body})
    assert run.failures == []
    ((_, data),) = run.events
    assert data.get("language") == language


# ---- Cal.com: every new trigger runs its flow, in the attendee's language ------------------
# The examples' request is for 07:30 UTC on 18 June 2025: 09:30 in Berlin, a Wednesday.


def test_a_booking_request_is_acknowledged_in_german_for_a_german_attendee(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    body = body_of(config, "calcom", "booking_requested")
    assert body["payload"]["attendees"][0]["language"] == {"locale": "de"}
    accepted = post_example(client, config, "calcom", "booking_requested", body)
    jobs = wait_for_jobs(client, accepted["event_id"], 2)
    assert _statuses(jobs) == {"sms-requested": "succeeded", "email-requested": "succeeded"}
    (sms,) = sandbox.requests("/twilio/", "POST")
    assert _form(sms)["To"] == "+4917612398765"
    assert _form(sms)["Body"] == (
        "Guten Tag Erika Musterfrau, Ihre Anfrage für Mittwoch, 18. Juni um 09:30 Uhr bei"
        " Dr. Anna Weber ist eingegangen. Sie erhalten eine Nachricht, sobald sie bestätigt ist."
    )
    assert _mail_to(sandbox) == ["erika@example.de"]
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert (
        mail.json["subject"]
        == "Ihre Terminanfrage für Mittwoch, 18. Juni um 09:30 Uhr ist eingegangen"
    )
    assert "Wann:  Mittwoch, 18. Juni 2025, 09:30\u201310:15 Uhr (Europe/Berlin)" in _text(mail)
    assert _templates(client, jobs) == {
        "sms-requested": "sms/booking-requested.de.txt",
        "email-requested": "email/booking-requested.de.txt",
    }


def test_a_booking_request_is_acknowledged_in_english_for_an_english_attendee(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    # The demo practice speaks German (locale: de); the attendee's language comes first.
    client, config = gateway
    body = _attendee_speaks(body_of(config, "calcom", "booking_requested"), "uid-req-en", "en")
    accepted = post_example(client, config, "calcom", "booking_requested", body)
    jobs = wait_for_jobs(client, accepted["event_id"], 2)
    assert _statuses(jobs) == {"sms-requested": "succeeded", "email-requested": "succeeded"}
    (sms,) = sandbox.requests("/twilio/", "POST")
    assert _form(sms)["Body"] == (
        "Hi Erika Musterfrau, we have your request for Wednesday, June 18 at 9:30 AM with"
        " Dr. Anna Weber. You will hear from us once it is confirmed."
    )
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    # CLDR's narrow no-break space before AM: kept in an email's text, plain in a subject.
    assert mail.json["subject"] == "Your request for Wednesday, June 18 at 9:30 AM has arrived"
    assert "When:  Wednesday, June 18, 2025, 9:30\u202fAM - 10:15\u202fAM (Europe/Berlin)" in _text(
        mail
    )
    assert "Guten Tag" not in _text(mail)
    assert _templates(client, jobs) == {
        "sms-requested": "sms/booking-requested.txt",
        "email-requested": "email/booking-requested.txt",
    }


def test_a_rejected_request_is_told_with_its_reason(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    accepted = post_example(
        client, config, "calcom", "booking_rejected", body_of(config, "calcom", "booking_rejected")
    )
    jobs = wait_for_jobs(client, accepted["event_id"], 2)
    assert _statuses(jobs) == {"sms-rejected": "succeeded", "email-rejected": "succeeded"}
    (sms,) = sandbox.requests("/twilio/", "POST")
    assert "Ihre Anfrage für Mittwoch, 18. Juni um 09:30 Uhr nicht annehmen." in _form(sms)["Body"]
    assert "Grund: The practice is closed that morning." in _form(sms)["Body"]
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert mail.json["subject"] == (
        "Ihre Terminanfrage für Mittwoch, 18. Juni konnte leider nicht angenommen werden"
    )
    assert "Mittwoch, 18. Juni 2025, 09:30 Uhr (Europe/Berlin) nicht annehmen" in _text(mail)


def test_a_paid_booking_is_thanked_and_its_payment_tagged_with_the_booking(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    accepted = post_example(
        client, config, "calcom", "booking_paid", body_of(config, "calcom", "booking_paid")
    )
    jobs = wait_for_jobs(client, accepted["event_id"], 2)
    assert _statuses(jobs) == {"email-paid": "succeeded", "tag-payment": "succeeded"}
    (tag,) = sandbox.requests("/stripe/", "POST")
    assert tag.path == "/stripe/v1/payment_intents/pi_3PsK2aLkdIwHu7ix1Qw8Er5T"
    assert _form(tag)["metadata[booking_uid]"] == "pD7fG1hJ3kL5zX9cV2bN4m"
    assert tag.headers["idempotency-key"]
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    # An English attendee: 4500 cents as CLDR's English writes euros, 09:00 UTC in Berlin.
    assert mail.json["subject"] == (
        "Payment received: Video consultation between Dr. Anna Weber and Jane Doe"
    )
    assert (
        "your payment of €45.00 for your appointment on Thursday, June 19, 2025 at 11:00\u202fAM"
        in _text(mail)
    )


@pytest.mark.parametrize(
    ("language", "currency", "written"),
    [
        (
            "de",
            "eur",
            "Ihre Zahlung über 45,00\u00a0€ für Ihren Termin am Donnerstag, 19. Juni 2025",
        ),
        # A zero-decimal currency: 4500 yen are 4500, not 45.
        ("en", "jpy", "your payment of ¥4,500 for your appointment"),
    ],
)
def test_a_paid_booking_writes_the_price_in_the_currency_and_language(
    gateway: tuple[TestClient, Config],
    sandbox: SandboxHandle,
    language: str,
    currency: str,
    written: str,
) -> None:
    client, config = gateway
    body = _attendee_speaks(
        body_of(config, "calcom", "booking_paid"), f"uid-paid-{language}-{currency}", language
    )
    body["payload"]["currency"] = currency
    accepted = post_example(client, config, "calcom", "booking_paid", body)
    jobs = wait_for_jobs(client, accepted["event_id"], 2)
    assert _statuses(jobs)["email-paid"] == "succeeded"
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert written in _text(mail)


def test_a_no_show_gets_a_follow_up_and_no_thanks_for_the_visit(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    ended = body_of(config, "calcom", "meeting_ended")
    ended["payload"]["uid"] = "uid-no-show"
    finished = post_example(client, config, "calcom", "meeting_ended", ended)
    (thanks,) = wait_for_jobs(client, finished["event_id"], 1)
    assert (thanks["action"], thanks["status"]) == ("email-thanks", "queued")
    assert thanks["schedule_key"] == "thanks-uid-no-show"

    marked = body_of(config, "calcom", "booking_no_show")
    marked["payload"]["bookingUid"] = "uid-no-show"
    no_show = post_example(client, config, "calcom", "booking_no_show", marked)
    jobs = wait_for_jobs(client, no_show["event_id"], 1)
    assert _statuses(jobs) == {"email-no-show-follow-up": "succeeded"}
    assert _mail_to(sandbox) == ["jane.doe@example.com"]
    # Cal.com's no-show payload names no language: the demo practice's German applies.
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert mail.json["subject"] == "Wir haben Sie heute vermisst"
    assert "rufen Sie uns in der Praxis Weber an" in _text(mail)
    assert _templates(client, jobs) == {"email-no-show-follow-up": "email/booking-no-show.de.txt"}
    (withdrawn,) = admin(client, f"/admin/api/events/{finished['event_id']}")["jobs"]
    assert withdrawn["status"] == "cancelled"


def test_a_no_show_for_a_tenant_without_a_locale_is_followed_up_in_english(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    marked = body_of(config, "calcom", "booking_no_show")
    marked["payload"]["bookingUid"] = "uid-no-show-default"
    no_show = post_example(client, config, "calcom", "booking_no_show", marked, tenant=None)
    jobs = wait_for_jobs(client, no_show["event_id"], 1)
    assert _statuses(jobs) == {"email-no-show-follow-up": "succeeded"}
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert mail.json["subject"] == "We missed you today"
    assert "we missed you at your appointment today" in _text(mail)


def test_a_no_show_mark_taken_back_sends_nothing(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    body = body_of(config, "calcom", "booking_no_show_undone")
    accepted = post_example(client, config, "calcom", "booking_no_show_undone", body)
    deadline = time.monotonic() + 10
    while (status := admin(client, f"/admin/api/events/{accepted['event_id']}")["status"]) == (
        "pending"
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status == "ignored"
    assert sandbox.requests() == []


def test_the_end_of_a_meeting_schedules_the_thanks_two_hours_later(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    body = body_of(config, "calcom", "meeting_ended")
    body["payload"]["uid"] = "uid-thanks"
    before = datetime.now(UTC).timestamp()
    accepted = post_example(client, config, "calcom", "meeting_ended", body)
    (thanks,) = wait_for_jobs(client, accepted["event_id"], 1)
    assert (thanks["action"], thanks["status"]) == ("email-thanks", "queued")
    assert thanks["run_at"] >= before + 2 * 3600


@pytest.mark.parametrize(
    ("locale", "subject", "written"),
    [
        (
            "de",
            "Vielen Dank für Ihren Besuch",
            "Guten Tag Jane Doe,\n\nvielen Dank für Ihren Besuch bei Dr. Anna Weber heute",
        ),
        (
            "en",
            "Thank you for your visit",
            "Hello Jane Doe,\n\nthank you for your visit to Dr. Anna Weber today",
        ),
    ],
)
def test_the_thanks_sent_two_hours_after_the_meeting_is_in_the_attendee_language(
    gateway: tuple[TestClient, Config],
    sandbox: SandboxHandle,
    locale: str,
    subject: str,
    written: str,
) -> None:
    client, config = gateway
    body = body_of(config, "calcom", "meeting_ended")
    body["payload"]["uid"] = f"uid-thanks-{locale}"
    body["payload"]["attendees"][0]["locale"] = locale
    accepted = post_example(client, config, "calcom", "meeting_ended", body)
    (queued,) = wait_for_jobs(client, accepted["event_id"], 1)
    assert queued["status"] == "queued"
    thanks = _run_when_due(client, config, queued)
    assert thanks["status"] == "succeeded", thanks
    mail = _mail_of(sandbox, thanks["id"])
    assert mail.json["personalizations"][0]["to"][0]["email"] == "jane.doe@example.com"
    assert mail.json["subject"] == subject
    assert written in _text(mail)
    suffix = ".de" if locale == "de" else ""
    assert _templates(client, [thanks]) == {"email-thanks": f"email/booking-thanks{suffix}.txt"}


# ---- a reschedule or cancellation withdraws its reminder ---------------------------------


def _created(config: Config, uid: str, start: datetime = START) -> dict[str, Any]:
    body = body_of(config, "calcom", "booking_created")
    body["payload"].update(
        uid=uid, startTime=_iso(start), endTime=_iso(start + timedelta(minutes=30))
    )
    return body


def _reminder(client: TestClient, event_id: str, key: str) -> dict[str, Any]:
    (found,) = [
        j
        for j in admin(client, f"/admin/api/events/{event_id}")["jobs"]
        if j["schedule_key"] == key
    ]
    return dict(found)


def test_a_reschedule_moves_the_reminder_and_cancelling_the_new_booking_withdraws_it(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    created = post_example(client, config, "calcom", "booking_created", _created(config, "uid-a"))
    wait_for_jobs(client, created["event_id"], 4)
    assert _reminder(client, created["event_id"], "reminder-uid-a")["status"] == "queued"

    moved_to = START + timedelta(days=1)
    body = body_of(config, "calcom", "booking_rescheduled")
    body["payload"].update(
        uid="uid-b",
        rescheduleUid="uid-a",
        startTime=_iso(moved_to),
        endTime=_iso(moved_to + timedelta(minutes=30)),
    )
    moved = post_example(client, config, "calcom", "booking_rescheduled", body)
    wait_for_jobs(client, moved["event_id"], 2)
    assert _reminder(client, created["event_id"], "reminder-uid-a")["status"] == "cancelled"
    new = _reminder(client, moved["event_id"], "reminder-uid-b")
    assert new["status"] == "queued"
    assert new["run_at"] == pytest.approx((moved_to - timedelta(hours=24)).timestamp())

    cancel = body_of(config, "calcom", "booking_cancelled")
    cancel["payload"].update(uid="uid-b", startTime=_iso(moved_to))
    cancelled = post_example(client, config, "calcom", "booking_cancelled", cancel)
    wait_for_jobs(client, cancelled["event_id"], 1)
    assert _reminder(client, moved["event_id"], "reminder-uid-b")["status"] == "cancelled"


def _jobs_until(client: TestClient, event_id: str, action: str) -> list[dict[str, Any]]:
    """The event's jobs once `action` has run (succeeded or dead)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        jobs: list[dict[str, Any]] = admin(client, f"/admin/api/events/{event_id}")["jobs"]
        if any(j["action"] == action and j["status"] in ("succeeded", "dead") for j in jobs):
            return jobs
        time.sleep(0.1)
    raise AssertionError(f"{action} of {event_id} did not run: {jobs}")


def test_a_reminder_due_for_a_booking_cancelled_early_is_not_sent(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    # The cancellation arrived before the booking (webhooks are not ordered), so no cancel
    # found the reminder; due, the reminder asks Cal.com and finds the booking cancelled.
    client, config = gateway
    sandbox.add_rules(
        [
            {
                "name": "cancelled-early",
                "method": "GET",
                "path": "/calcom/v2/bookings/uid-early",
                "json": {"status": "success", "data": {"uid": "uid-early", "status": "cancelled"}},
            }
        ]
    )
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=24, seconds=3)
    _cancel(client, config, "uid-early", start=soon)
    early = _created(config, "uid-early", start=soon)
    ontime = _created(config, "uid-ontime", start=soon)
    ontime["payload"]["attendees"][0]["phoneNumber"] = "+4915199999999"
    created = post_example(client, config, "calcom", "booking_created", early)["event_id"]
    kept = post_example(client, config, "calcom", "booking_created", ontime)["event_id"]
    skipped = _jobs_until(client, created, "schedule-reminder/sms-reminder")
    sent = _jobs_until(client, kept, "schedule-reminder/sms-reminder")
    assert _statuses(skipped)["schedule-reminder"] == _statuses(sent)["schedule-reminder"]
    looked_up = [r.path for r in sandbox.requests("/calcom/v2/bookings/", "GET")]
    assert sorted(looked_up) == ["/calcom/v2/bookings/uid-early", "/calcom/v2/bookings/uid-ontime"]
    reminders = [
        _form(r)["To"]
        for r in sandbox.requests("/twilio/", "POST")
        if _form(r)["Body"].startswith("Reminder:")
    ]
    assert reminders == ["+4915199999999"]  # the booking still accepted, and only it


# ---- a cancelled paid booking is refunded by the tenant's policy -------------------------


def _cancel(
    client: TestClient,
    config: Config,
    uid: str,
    tenant: str | None = "demo",
    start: datetime = START,
) -> str:
    body = body_of(config, "calcom", "booking_cancelled")
    body["payload"].update(uid=uid, startTime=_iso(start))
    return str(
        post_example(client, config, "calcom", "booking_cancelled", body, tenant)["event_id"]
    )


def _payment_found(sandbox: SandboxHandle, uid: str, intents: list[dict[str, Any]]) -> None:
    sandbox.add_rules(
        [
            {
                "name": f"search-{uid}",
                "method": "GET",
                "path": "/stripe/v1/payment_intents/search",
                "when": {"query": {"query": f"metadata['booking_uid']:'{uid}'"}},
                "json": {"object": "search_result", "data": intents, "has_more": False},
            }
        ]
    )


def test_a_paid_booking_cancelled_under_the_refund_policy_is_refunded_once(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    _payment_found(
        sandbox,
        "uid-paid",
        [
            {"id": "pi_failed_first", "object": "payment_intent", "status": "canceled"},
            {"id": "pi_paid_uid", "object": "payment_intent", "status": "succeeded"},
        ],
    )
    event = _cancel(client, config, "uid-paid")
    jobs = wait_for_jobs(client, event, 4)
    statuses = _statuses(jobs)
    assert statuses["find-payment"] == statuses["find-payment/refund"] == "succeeded", jobs
    (search,) = sandbox.requests("/stripe/v1/payment_intents/search", "GET")
    assert search.query_params["query"] == "metadata['booking_uid']:'uid-paid'"
    assert search.headers["authorization"] == "Bearer sk_test_scenario"
    (refund,) = sandbox.requests("/stripe/v1/refunds", "POST")
    form = _form(refund)
    assert form["payment_intent"] == "pi_paid_uid"  # the succeeded one, not the cancelled
    assert form["reason"] == "requested_by_customer"
    assert form["metadata[booking_uid]"] == "uid-paid"
    # The booking's key, not the job's: a retried call or a replayed event is one refund.
    assert refund.headers["idempotency-key"] == "refund-uid-paid"


def test_a_replayed_cancellation_asks_stripe_for_the_same_refund_again(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    # A replay makes new jobs with new keys; the refund's key is the booking's, so Stripe
    # answers the repeat with the refund it made rather than refusing a second one.
    client, config = gateway
    _payment_found(
        sandbox,
        "uid-replayed",
        [{"id": "pi_replayed", "object": "payment_intent", "status": "succeeded"}],
    )
    event = _cancel(client, config, "uid-replayed")
    wait_for_jobs(client, event, 4)
    replayed = client.post(
        f"/admin/api/events/{event}/replay", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert replayed.status_code == 200, replayed.text
    jobs = wait_for_jobs(client, event, 8)
    refunds = [j for j in jobs if j["action"] == "find-payment/refund"]
    assert len(refunds) == 2 and {j["status"] for j in refunds} == {"succeeded"}, jobs
    assert len({j["id"] for j in refunds}) == 2  # two jobs, each with a key of its own
    first, again = sandbox.requests("/stripe/v1/refunds", "POST")
    assert first.headers["idempotency-key"] == again.headers["idempotency-key"]
    assert again.headers["idempotency-key"] == "refund-uid-replayed"


def test_without_the_refund_policy_a_cancellation_refunds_nothing(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    _payment_found(
        sandbox,
        "uid-paid-elsewhere",
        [{"id": "pi_x", "object": "payment_intent", "status": "succeeded"}],
    )
    event = _cancel(client, config, "uid-paid-elsewhere", tenant=None)  # the default tenant
    jobs = wait_for_jobs(client, event, 2)
    assert not [j for j in jobs if j["action"].startswith("find-payment")], jobs
    assert sandbox.requests("/stripe/") == []


def test_an_unpaid_booking_cancelled_under_the_policy_refunds_nothing(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    _payment_found(sandbox, "uid-free", [])
    event = _cancel(client, config, "uid-free")
    jobs = wait_for_jobs(client, event, 4)
    # The refund step runs as a job of its own, and its condition (a succeeded payment) is
    # false: it ends without calling Stripe.
    assert _statuses(jobs)["find-payment"] == "succeeded"
    assert len(sandbox.requests("/stripe/v1/payment_intents/search", "GET")) == 1
    assert sandbox.requests("/stripe/v1/refunds") == []


# ---- Stripe: an expired checkout, a failed payment -----------------------------------------


@pytest.mark.parametrize(
    ("locale", "subject", "written"),
    [
        # The example: Checkout was shown in German.
        ("de", "Ihre Zahlung wurde nicht abgeschlossen", "Ihre Zahlung über 45,00\u00a0€ wurde"),
        ("en", "Your payment was not completed", "your payment of €45.00 was not completed"),
    ],
)
def test_an_expired_checkout_emails_the_recovery_link_in_the_checkout_language(
    gateway: tuple[TestClient, Config],
    sandbox: SandboxHandle,
    locale: str,
    subject: str,
    written: str,
) -> None:
    client, config = gateway
    body = body_of(config, "stripe", "checkout_session_expired")
    assert body["data"]["object"]["locale"] == "de"
    body["id"] = f"evt_expired_{locale}"
    body["data"]["object"]["locale"] = locale
    accepted = post_example(client, config, "stripe", "checkout_session_expired", body)
    jobs = wait_for_jobs(client, accepted["event_id"], 1)
    assert _statuses(jobs) == {"email-checkout-expired": "succeeded"}
    (mail,) = sandbox.requests("/sendgrid/v3/mail/send", "POST")
    assert mail.json["personalizations"][0]["to"][0]["email"] == "max@example.de"
    assert mail.json["subject"] == subject
    assert written in _text(mail)
    assert "https://buy.stripe.com/r/test_aEU5kZ0Qm2Lp" in _text(mail)


def test_a_failed_payment_notice_waits_and_a_later_success_withdraws_it(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    failed = body_of(config, "stripe", "payment_intent_payment_failed")
    before = datetime.now(UTC).timestamp()
    accepted = post_example(client, config, "stripe", "payment_intent_payment_failed", failed)
    (notice,) = wait_for_jobs(client, accepted["event_id"], 1)
    assert (notice["action"], notice["status"]) == ("email-payment-failed", "queued")
    assert notice["schedule_key"] == "payment-failed-pi_3PsM1eLkdIwHu7ix1aB2cD3e"
    assert notice["run_at"] >= before + 30 * 60

    paid = body_of(config, "stripe", "checkout_session_completed")
    paid["id"] = "evt_paid_after_a_decline"
    paid["data"]["object"]["payment_intent"] = "pi_3PsM1eLkdIwHu7ix1aB2cD3e"
    completed = post_example(client, config, "stripe", "checkout_session_completed", paid)
    wait_for_jobs(client, completed["event_id"], 2)
    (withdrawn,) = admin(client, f"/admin/api/events/{accepted['event_id']}")["jobs"]
    assert withdrawn["status"] == "cancelled"


@pytest.mark.parametrize(
    ("tenant", "subject", "written"),
    [
        # A PaymentIntent names no language: the demo practice's German, else English.
        (
            "demo",
            "Ihre Zahlung konnte nicht ausgeführt werden",
            "Ihre Zahlung über 45,00\u00a0€ konnte leider nicht ausgeführt werden.",
        ),
        (None, "Your payment did not go through", "your payment of €45.00 did not go through."),
    ],
)
def test_the_failed_payment_notice_sent_30_minutes_later_is_in_the_tenant_language(
    gateway: tuple[TestClient, Config],
    sandbox: SandboxHandle,
    tenant: str | None,
    subject: str,
    written: str,
) -> None:
    client, config = gateway
    failed = body_of(config, "stripe", "payment_intent_payment_failed")
    failed["id"] = f"evt_failed_{tenant}"
    failed["data"]["object"]["id"] = f"pi_failed_{tenant}"
    accepted = post_example(
        client, config, "stripe", "payment_intent_payment_failed", failed, tenant
    )
    (queued,) = wait_for_jobs(client, accepted["event_id"], 1)
    assert (queued["status"], queued["schedule_key"]) == (
        "queued",
        f"payment-failed-pi_failed_{tenant}",
    )
    notice = _run_when_due(client, config, queued)
    assert notice["status"] == "succeeded", notice
    mail = _mail_of(sandbox, notice["id"])
    assert mail.json["personalizations"][0]["to"][0]["email"] == "jane.doe@example.com"
    assert mail.json["subject"] == subject
    assert written in _text(mail)


# ---- the voice agent: a booking made during the call is not made again -------------------


def test_a_booking_made_during_the_call_is_not_booked_again_after_it(
    gateway: tuple[TestClient, Config], sandbox: SandboxHandle
) -> None:
    client, config = gateway
    booked = body_of(config, "retell", "call_analyzed_booked_in_call")
    accepted = post_example(client, config, "retell", "call_analyzed_booked_in_call", booked)
    deadline = time.monotonic() + 10
    while (event := admin(client, f"/admin/api/events/{accepted['event_id']}"))["status"] == (
        "pending"
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert event["status"] == "dispatched" and event["jobs"] == []
    assert sandbox.requests("/calcom/") == []

    # The same call, but book_appointment answered "Not booked": the flow books it.
    result = next(
        t for t in booked["call"]["transcript_with_tool_calls"] if t["role"] == "tool_call_result"
    )
    result["content"] = "Not booked: that time is no longer free."
    booked["call"]["call_id"] = "call_booking_failed_in_call"
    accepted = post_example(client, config, "retell", "call_analyzed_booked_in_call", booked)
    jobs = wait_for_jobs(client, accepted["event_id"], 1)
    assert _statuses(jobs) == {"create-booking": "succeeded"}
    (booking,) = sandbox.requests("/calcom/v2/bookings", "POST")
    assert booking.json["attendee"]["name"] == "Max Mustermann"
    assert booking.json["start"] == "2025-06-13T07:00:00Z"
