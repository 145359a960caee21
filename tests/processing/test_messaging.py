"""Messages: recipients are checked before anything is sent, and a bad one is a dead job with
a clear reason, not a retry loop."""

from __future__ import annotations

import asyncio
import json
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
