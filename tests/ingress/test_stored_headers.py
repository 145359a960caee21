"""What the admin event view keeps of a request's headers: never a signature (a ready-made
replay, and material for guessing a weak secret offline) nor a credential; timestamps and the
provider's other headers are kept."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.config.model import load_config
from gateway.config.signing import signed_example
from gateway.credentials.secrets import SecretLookup
from tests.helpers import REPO
from tests.helpers.app import AppFactory, LoopbackOnly, admin
from tests.helpers.integrations import acme, webhook
from tests.helpers.jwt_keys import PlaidKeyEndpoint, simulated_kid
from tests.helpers.signatures import (
    ED25519_PEM,
    ED25519_PUBLIC_B64,
    ED25519_PUBLIC_HEX,
    PRIVATE_PEM,
    PUBLIC_B64,
    stripe_header,
)

SHIPPED = REPO / "integrations.d"
# The signature headers of the shipped providers, as they document them.
SIGNATURES = {
    "stripe": "stripe-signature",
    "twilio": "x-twilio-signature",
    "calcom": "x-cal-signature-256",
    "retell": "x-retell-signature",
    "segment": "x-signature",
    "sendgrid": "x-twilio-email-event-webhook-signature",
    "sentry": "sentry-hook-signature",
    "whatsapp": "x-hub-signature-256",
    "plaid": "plaid-verification",
    "netlify": "x-webhook-signature",
    "vonage": "authorization",
}


def _ec_key() -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(PRIVATE_PEM, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _headers(client: Any, event_id: str) -> dict[str, str]:
    stored = admin(client, f"/admin/api/events/{event_id}")
    headers = stored["headers"]
    return dict(json.loads(headers) if isinstance(headers, str) else headers)


def test_the_signature_header_is_not_stored_and_the_rest_is(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": acme(webhook())}, {"ACME_SECRET": "whsec_x"})
    body = b'{"id":"evt_h","type":"t"}'
    signature = stripe_header(body, "whsec_x")
    headers = {"Acme-Signature": signature, "X-Acme-Delivery": "d-1"}
    accepted = client.post("/webhooks/acme", content=body, headers=headers)
    assert accepted.status_code == 200, accepted.text
    kept = _headers(client, accepted.json()["event_id"])
    assert "acme-signature" not in kept
    assert signature not in json.dumps(kept)
    assert kept["x-acme-delivery"] == "d-1"


def test_no_shipped_provider_s_signature_is_stored(make_client: AppFactory) -> None:
    names = {"SENDGRID_WEBHOOK_PUBLIC_KEY": PUBLIC_B64}
    config = load_config(SHIPPED, names)
    env = {
        **{n: f"test-{n.lower()}" for i in config.integrations.values() for n in i.secret_names},
        **names,
    }
    for integration in config.integrations.values():  # secrets of the form a scheme expects
        webhook = integration.webhook
        spec = webhook.verify_spec if webhook is not None else {}
        for n in integration.secret_names:
            if spec.get("secret_encoding") == "base64":  # Standard Webhooks: whsec_ + base64
                prefix = str(spec.get("secret_prefix") or "")
                env[n] = prefix + base64.b64encode(env[n].encode()).decode()
            elif spec.get("scheme") == "ed25519" and n.endswith("PUBLIC_KEY"):
                hex_key = spec.get("key_encoding") == "hex"  # Discord's
                env[n] = ED25519_PUBLIC_HEX if hex_key else ED25519_PUBLIC_B64
    config = load_config(SHIPPED, env)
    # Plaid's webhook keys are fetched from its API: answered here with the test key's
    keys = PlaidKeyEndpoint({simulated_kid(PRIVATE_PEM): _ec_key()}, LoopbackOnly())
    client = make_client(SHIPPED, env, transport=keys)
    stored: dict[str, list[dict[str, str]]] = {}
    for name, integration in sorted(config.integrations.items()):
        if integration.webhook is None:
            continue
        for example_name, example in sorted(integration.examples.items()):
            if example.get("handshake"):
                continue
            request = signed_example(
                integration,
                example,
                f"http://testserver/webhooks/{name}",
                SecretLookup(name, {}, env),
                private_key=(
                    ED25519_PEM
                    if integration.webhook.verify_spec["scheme"] == "ed25519"
                    else PRIVATE_PEM
                ),
            )
            response = client.request(
                request.method, request.url, headers=request.headers, content=request.body
            )
            assert response.status_code == 200, (name, example_name, response.text)
            event_id = response.headers.get("x-gateway-event-id") or response.json()["event_id"]
            stored.setdefault(name, []).append(_headers(client, event_id))
    assert set(SIGNATURES) <= set(stored)
    for name, header in SIGNATURES.items():
        for kept in stored[name]:
            assert header not in kept, (name, kept)
    for name, every in stored.items():
        webhook = config.integrations[name].webhook
        assert webhook is not None
        dropped = webhook.verifier.signature_headers | webhook.verifier.secret_headers
        assert all(not dropped & set(kept) for kept in every), name
    sendgrid = stored["sendgrid"][0]
    assert "x-twilio-email-event-webhook-timestamp" in sendgrid  # a timestamp may be kept
