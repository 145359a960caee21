"""Handshakes answered from the verified request: Slack's url_verification (signed by Slack's
SDK), Zoom's endpoint.url_validation (an HMAC of plainToken with the secret), Retell's
call_inbound (the tenant's settings as dynamic variables); and lint's checks of them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import retell.lib.webhook_auth as retell_auth
from slack_sdk.signature import SignatureVerifier

from gateway.config.lint import lint
from tests.helpers import REPO
from tests.helpers.app import AppFactory, admin

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ZOOM_SECRET = "zoom-secret-token"

SLACK = """\
kind: integration
name: slack
webhook:
  format: json
  verify:
    scheme: hmac
    algorithm: sha256
    secret: "${secret:SLACK_SIGNING_SECRET}"
    signed: "v0:{timestamp}:{body}"
    signature: {header: X-Slack-Signature, prefix: "v0="}
    timestamp: {header: X-Slack-Request-Timestamp, tolerance: 5m}
  handshakes:
    - name: url_verification
      method: POST
      verified: true
      when: "{{ body.type | default('') == 'url_verification' }}"
      respond:
        content_type: text/plain
        body: "{{ body.challenge }}"
  event:
    id: "{{ body.event_id }}"
    type: "{{ body.event.type }}"
"""

ZOOM = """\
kind: integration
name: zoom
webhook:
  format: json
  verify:
    scheme: hmac
    algorithm: sha256
    secret: "${secret:ZOOM_WEBHOOK_SECRET}"
    signed: "v0:{timestamp}:{body}"
    signature: {header: x-zm-signature, prefix: "v0="}
    timestamp: {header: x-zm-request-timestamp, tolerance: 5m}
  handshakes:
    - name: url_validation
      method: POST
      verified: true
      when: "{{ body.event | default('') == 'endpoint.url_validation' }}"
      respond:
        content_type: application/json
        body: >-
          {{ {'plainToken': body.payload.plainToken,
              'encryptedToken': body.payload.plainToken
                                | hmac_sha256(secret('ZOOM_WEBHOOK_SECRET'))} | tojson }}
  event:
    id: "{{ body.event }}:{{ body.event_ts }}"
    type: "{{ body.event }}"
"""
ENVIRON = {"SLACK_SIGNING_SECRET": SLACK_SECRET, "ZOOM_WEBHOOK_SECRET": ZOOM_SECRET}


def slack_headers(body: bytes, secret: str = SLACK_SECRET) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    return {
        "content-type": "application/json",
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": signature,
    }


def zoom_headers(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(ZOOM_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    return {
        "content-type": "application/json",
        "x-zm-request-timestamp": stamp,
        "x-zm-signature": "v0=" + digest.hexdigest(),
    }


def test_slack_url_verification_is_answered_with_the_signed_challenge(
    make_client: AppFactory,
) -> None:
    client = make_client({"slack.yaml": SLACK}, ENVIRON)
    body = json.dumps(
        {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    ).encode()

    answered = client.post("/webhooks/slack", content=body, headers=slack_headers(body))
    forged = client.post(
        "/webhooks/slack", content=body, headers=slack_headers(body, secret="wrong")
    )

    assert answered.status_code == 200
    assert answered.text == "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    assert answered.headers["content-type"].startswith("text/plain")
    assert forged.status_code == 401
    assert admin(client, "/admin/api/events")["events"] == []  # a handshake is not stored


def test_other_slack_events_are_stored_as_usual(make_client: AppFactory) -> None:
    client = make_client({"slack.yaml": SLACK}, ENVIRON)
    body = json.dumps(
        {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}}
    ).encode()

    response = client.post("/webhooks/slack", content=body, headers=slack_headers(body))

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    (event,) = admin(client, "/admin/api/events")["events"]
    assert event["type"] == "app_mention"


def test_zoom_url_validation_answers_the_hmac_of_plain_token(make_client: AppFactory) -> None:
    client = make_client({"zoom.yaml": ZOOM}, ENVIRON)
    body = json.dumps(
        {
            "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"},
            "event_ts": 1654503849680,
            "event": "endpoint.url_validation",
        }
    ).encode()

    response = client.post("/webhooks/zoom", content=body, headers=zoom_headers(body))

    assert response.status_code == 200
    expected = hmac.new(ZOOM_SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256)
    assert response.json() == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": expected.hexdigest(),
    }


def test_a_secret_renders_as_stars_and_cannot_be_read_into(make_client: AppFactory) -> None:
    leaky = ZOOM.replace(
        "| hmac_sha256(secret('ZOOM_WEBHOOK_SECRET'))} | tojson }}",
        "| hmac_sha256(secret('ZOOM_WEBHOOK_SECRET')),"
        " 'shown': secret('ZOOM_WEBHOOK_SECRET') | string} | tojson }}",
    )
    client = make_client({"zoom.yaml": leaky}, ENVIRON)
    body = json.dumps({"payload": {"plainToken": "t"}, "event": "endpoint.url_validation"}).encode()

    response = client.post("/webhooks/zoom", content=body, headers=zoom_headers(body))

    assert response.json()["shown"] == "**********"
    assert ZOOM_SECRET not in response.text


def test_retell_call_inbound_is_answered_with_the_tenants_dynamic_variables(
    make_client: AppFactory,
) -> None:
    key = "key_retell_test"
    client = make_client(REPO / "integrations.d", {"RETELL_API_KEY": key})
    body = json.dumps(
        {
            "event": "call_inbound",
            "call_inbound": {"from_number": "+4915112345678", "to_number": "+493012345678"},
        }
    )
    signature = retell_auth.symmetric["sign"](body, key)

    response = client.post(
        "/webhooks/retell/demo",
        content=body,
        headers={"content-type": "application/json", "x-retell-signature": signature},
    )

    assert response.status_code == 200
    assert response.json() == {
        "call_inbound": {
            "dynamic_variables": {
                "practice_name": "Praxis Weber",
                "opening_hours": "Monday to Friday 9:00 to 17:00, Saturday 9:00 to 13:00",
                "timezone": "Europe/Berlin",
            }
        }
    }


def _lint(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    folder = tmp_path / "integrations.d"
    folder.mkdir(exist_ok=True)
    (folder / "x.yaml").write_text(text)
    return [(d.rule, d.message) for d in lint([str(folder)]).diagnostics]


def test_lint_accepts_the_fixtures(tmp_path: Path) -> None:
    assert _lint(tmp_path, SLACK) == []
    assert _lint(tmp_path, ZOOM) == []


def test_lint_refuses_a_body_answered_unverified(tmp_path: Path) -> None:
    found = _lint(tmp_path, SLACK.replace("      verified: true\n", ""))

    assert [rule for rule, _ in found] == ["handshake-unverified-body"]


def test_lint_refuses_a_secret_the_integration_does_not_declare(tmp_path: Path) -> None:
    found = _lint(tmp_path, ZOOM.replace("secret('ZOOM_WEBHOOK_SECRET')", "secret('OTHER')"))

    assert found == [
        (
            "secret-ref",
            "secret('OTHER') is not one of this integration's secrets"
            " (declared with ${secret:NAME}: ZOOM_WEBHOOK_SECRET)",
        )
    ]


def test_lint_checks_handshake_variables(tmp_path: Path) -> None:
    found = _lint(tmp_path, SLACK.replace("{{ body.challenge }}", "{{ steps.challenge }}"))

    assert [rule for rule, _ in found] == ["jinja-undefined-var"]
