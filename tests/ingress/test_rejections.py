"""A request that fails verification learns nothing from the answer: one 401 body whatever the
reason (no secret configured, a missing header, a wrong signature, a stale timestamp, a wrong
handshake token); the reason goes to the log at INFO, never with a secret."""

from __future__ import annotations

import logging

import pytest

from tests.helpers.app import AppFactory
from tests.helpers.integrations import acme, webhook
from tests.helpers.signatures import stripe_header

SECRET = "whsec_uniform"
REJECTED = {"error": {"code": "invalid_signature", "message": "verification failed"}}
TOKEN_REJECTED = {"error": {"code": "invalid_token", "message": "verification failed"}}
SHAKY = """\
kind: integration
name: shaky
webhook:
  format: empty
  verify: {scheme: token, secret: "${secret:SHAKY_TOKEN}", header: X-Goog-Channel-Token}
  handshakes:
    - name: meta
      method: GET
      query: {hub.mode: subscribe}
      token: {query: hub.verify_token, secret: "${secret:SHAKY_VERIFY}"}
      respond: {body: "{{ query['hub.challenge'] }}"}
  event: {id: "{{ headers['x-goog-message-number'] }}", type: "sync"}
"""
FILES = {"acme.yaml": acme(webhook()), "shaky.yaml": SHAKY}
INGRESS = "gateway.ingress.webhooks"
BODY = b'{"id":"evt_1"}'


def test_every_failed_verification_answers_the_same(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=INGRESS)
    configured = make_client(FILES, {"ACME_SECRET": SECRET})
    unconfigured = make_client(FILES, {})
    answers = [
        unconfigured.post(
            "/webhooks/acme", content=BODY, headers={"Acme-Signature": stripe_header(BODY, "x")}
        ),
        configured.post("/webhooks/acme", content=BODY),
        configured.post(
            "/webhooks/acme", content=BODY, headers={"Acme-Signature": stripe_header(BODY, "x")}
        ),
        configured.post(
            "/webhooks/acme",
            content=BODY,
            headers={"Acme-Signature": stripe_header(BODY, SECRET, timestamp=1)},
        ),
    ]
    assert [(a.status_code, a.json()) for a in answers] == [(401, REJECTED)] * 4
    reasons = [
        r.getMessage() for r in caplog.records if r.name == INGRESS and r.levelno == logging.INFO
    ]
    assert reasons == [
        "rejected webhook for acme/default: no secret configured for this integration",
        "rejected webhook for acme/default: missing header acme-signature",
        "rejected webhook for acme/default: signature mismatch",
        "rejected webhook for acme/default: timestamp outside tolerance",
    ]
    assert SECRET not in caplog.text


def test_every_failed_handshake_token_answers_the_same(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=INGRESS)
    configured = make_client(FILES, {"SHAKY_VERIFY": "vt-secret"})
    unconfigured = make_client(FILES, {})
    query = {"hub.mode": "subscribe", "hub.challenge": "c", "hub.verify_token": "guess"}
    answers = [
        unconfigured.get("/webhooks/shaky", params=query),
        configured.get("/webhooks/shaky", params=query),
        configured.get("/webhooks/shaky", params={**query, "hub.verify_token": ""}),
    ]
    assert [(a.status_code, a.json()) for a in answers] == [(401, TOKEN_REJECTED)] * 3
    reasons = [
        r.getMessage() for r in caplog.records if r.name == INGRESS and r.levelno == logging.INFO
    ]
    assert reasons == [
        "rejected handshake meta for shaky/default: no token configured",
        "rejected handshake meta for shaky/default: token mismatch",
        "rejected handshake meta for shaky/default: token mismatch",
    ]
    # The gateway's own log lines (the test client logs the URLs it requests itself).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("gateway"))
    assert "vt-secret" not in logged and "guess" not in logged
    right = configured.get("/webhooks/shaky", params={**query, "hub.verify_token": "vt-secret"})
    assert (right.status_code, right.text) == (200, "c")
