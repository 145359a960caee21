"""Messages: recipients are checked before anything is sent, and a bad one is a dead job with
a clear reason, not a retry loop."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.config.model import load_config
from gateway.processing.messaging import InvalidMessage, Messenger, normalise_recipient
from gateway.processing.worker import Worker
from gateway.store.entities import Job
from tests.helpers import REPO

CONFIG = load_config(REPO / "integrations.d", {"TWILIO_FROM_NUMBER": "+15005550006"})
VARIABLES = {
    "event": {"data": {"name": "Jane"}},
    "tenant": {"name": "demo", "vars": {}},
    "now": None,
}


@pytest.mark.parametrize(
    ("kind", "given", "expected"),
    [
        ("sms", "+1 (415) 555-0123", "+14155550123"),
        ("sms", "0049 30 1234567", "+49301234567"),
        ("whatsapp", "+49 151 1234 5678", "4915112345678"),
        ("email", "jane@example.com", "jane@example.com"),
    ],
)
def test_recipients_are_normalised(kind: str, given: str, expected: str) -> None:
    assert normalise_recipient(kind, given) == expected


@pytest.mark.parametrize(("kind", "given"), [("sms", "555-0123"), ("sms", ""), ("email", "jane@")])
def test_invalid_recipients_are_refused(kind: str, given: str) -> None:
    with pytest.raises(InvalidMessage, match="recipient"):
        normalise_recipient(kind, given)


def test_a_message_is_the_channel_body_rendered() -> None:
    send = {"channel": "twilio.sms", "to": "+1 415 555 0123", "text": "Hi {{ event.data.name }}"}
    call = Messenger(CONFIG).build(send, VARIABLES)
    assert (call.integration, call.endpoint) == ("twilio", "send_message")
    # no StatusCallback without a public URL (None is left out of the form)
    assert call.body == {
        "To": "+14155550123",
        "From": "+15005550006",
        "Body": "Hi Jane",
        "StatusCallback": None,
    }


def test_every_sms_asks_for_status_callbacks_at_the_public_url() -> None:
    environ = {"TWILIO_FROM_NUMBER": "+15005550006", "GATEWAY_PUBLIC_URL": "https://gw.example"}
    send = {"channel": "twilio.sms", "to": "+14155550123", "text": "Hi"}
    call = Messenger(load_config(REPO / "integrations.d", environ)).build(send, VARIABLES)
    assert call.body["StatusCallback"] == "https://gw.example/webhooks/twilio/demo"


def test_every_mail_carries_the_gateway_message_id() -> None:
    send = {"channel": "sendgrid.email", "to": "jane@example.com", "subject": "Hi", "text": "Hi"}
    call = Messenger(CONFIG).build(send, VARIABLES, "msg_1")
    assert call.body["custom_args"] == {"gateway_message_id": "msg_1"}
    assert (call.recipient, call.template, call.channel.kind) == (
        "jane@example.com",
        "inline",
        "email",
    )


class _NeverCalled:
    async def call(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("nothing may be sent to an invalid recipient")

    def retry_policy(self, integration: str) -> Any:
        raise AssertionError


def test_an_invalid_recipient_is_a_dead_job_with_the_reason() -> None:
    spec = {"channel": "twilio.sms", "to": "not a number", "text": "Hi"}
    job = Job(
        "job_1", "k", "evt_1", "flow", "sms", "send", "twilio", "demo", None, json.dumps(spec),
        json.dumps(VARIABLES["event"]), "running", 1, 5, 0.0, None, None, 0.0, 0.0,
    )  # fmt: skip
    worker = Worker(CONFIG, store=None, caller=_NeverCalled())  # type: ignore[arg-type]
    outcome = asyncio.run(worker.execute(job))
    assert outcome.status == "dead"
    assert outcome.error is not None and "'not a number' is not a phone number" in outcome.error


# ---- languages: each template falls back on its own; the file chosen is what is recorded ----


def _translated(tmp_path: Path) -> Messenger:
    for name, text in {
        "mail.txt": "Hello {{ event.data.name }}, {{ locale }}",
        "mail.de.txt": "Guten Tag {{ event.data.name }}, {{ locale }}",
        "mail.html": "<p>Hello {{ event.data.name }}, {{ locale }}</p>",  # not translated
        "subject.txt": "Your appointment",
        "subject.de.txt": "Ihr  Termin\n am {{ '2026-12-15T08:00:00Z' | format_date('full') }}",
    }.items():
        (tmp_path / name).write_text(text)
    return Messenger(dataclasses.replace(CONFIG, templates_dir=tmp_path))


MAIL = {
    "channel": "sendgrid.email",
    "to": "jane@example.com",
    "template": "mail.txt",
    "html_template": "mail.html",
    "subject_template": "subject.txt",
}


def _variables(language: str | None, tenant_locale: str | None = None) -> dict[str, Any]:
    return {
        "event": {"data": {"name": "Jane", "language": language}},
        "tenant": {"name": "demo", "vars": {}, "locale": tenant_locale},
        "now": None,
    }


def test_each_template_takes_its_own_best_translation(tmp_path: Path) -> None:
    call = _translated(tmp_path).build(MAIL, _variables("de"))
    parts = {part["type"]: part["value"] for part in call.body["content"]}
    assert parts["text/plain"] == "Guten Tag Jane, de"
    assert parts["text/html"] == "<p>Hello Jane, en</p>"  # no mail.de.html: English, English dates
    assert call.body["subject"] == "Ihr Termin am Dienstag, 15. Dezember 2026"  # one line
    assert (call.template, call.locale) == ("mail.de.txt", "de")


def test_the_event_language_comes_before_the_tenant_locale(tmp_path: Path) -> None:
    messenger = _translated(tmp_path)
    assert messenger.build(MAIL, _variables("en", "de")).template == "mail.txt"
    assert messenger.build(MAIL, _variables(None, "de")).template == "mail.de.txt"
    assert messenger.build(MAIL, _variables("de-CH", None)).template == "mail.de.txt"
    assert messenger.build(MAIL, _variables(None, None)).template == "mail.txt"


def test_a_send_locale_comes_first(tmp_path: Path) -> None:
    send = {**MAIL, "locale": "{{ 'de' if event.data.name == 'Jane' else '' }}"}
    call = _translated(tmp_path).build(send, _variables("en", "en"))
    assert (call.template, call.locale) == ("mail.de.txt", "de")
    call = _translated(tmp_path).build({**send, "locale": "{{ 'no locale' }}"}, _variables("en"))
    assert call.template == "mail.txt"  # passed over


def test_an_sms_is_sent_with_plain_spaces(tmp_path: Path) -> None:
    (tmp_path / "sms.txt").write_text("{{ 45 | format_money('eur') }} {{ locale }}")
    (tmp_path / "sms.de.txt").write_text("{{ 45 | format_money('eur') }} {{ locale }}")
    messenger = Messenger(dataclasses.replace(CONFIG, templates_dir=tmp_path))
    send = {"channel": "twilio.sms", "to": "+14155550123", "template": "sms.txt"}
    call = messenger.build(send, _variables("de"))
    assert call.body["Body"] == "45,00 € de"  # CLDR's no-break space would make it UCS-2
