"""The shipped integrations: they load, and every declared example is accepted when signed as
the provider signs it, and rejected when tampered with. Random requests never get a 500."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from gateway.config.lint import lint
from gateway.config.model import Config, load_config
from gateway.config.signing import OutgoingRequest, signed_example
from gateway.credentials.secrets import SecretLookup
from gateway.processing.dispatcher import map_stored
from gateway.store.entities import StoredEvent
from tests.helpers import REPO
from tests.helpers.app import AppFactory, LoopbackOnly, admin
from tests.helpers.jwt_keys import PlaidKeyEndpoint, simulated_kid
from tests.helpers.signatures import (
    ED25519_PEM,
    ED25519_PUBLIC_B64,
    ED25519_PUBLIC_HEX,
    PRIVATE_PEM,
    PUBLIC_B64,
)

SHIPPED = REPO / "integrations.d"
_EC_KEY = serialization.load_pem_private_key(PRIVATE_PEM, password=None)
assert isinstance(_EC_KEY, ec.EllipticCurvePrivateKey)
SECRET_NAMES = [
    "CALCOM_API_KEY", "CALCOM_WEBHOOK_SECRET", "GOOGLE_CALENDAR_CHANNEL_TOKEN",
    "GOOGLE_CLIENT_SECRET", "GOOGLE_REFRESH_TOKEN", "OUTLOOK_CLIENT_SECRET", "OUTLOOK_CLIENT_STATE",
    "RETELL_API_KEY", "SEGMENT_SHARED_SECRET", "SEGMENT_WRITE_KEY", "SENDGRID_API_KEY",
    "SENTRY_CLIENT_SECRET", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN", "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN",
    # The providers of issue 17
    "GITHUB_TOKEN", "GITHUB_WEBHOOK_SECRET", "GITLAB_TOKEN", "GITLAB_WEBHOOK_TOKEN",
    "SHOPIFY_ACCESS_TOKEN", "SHOPIFY_WEBHOOK_SECRET", "PADDLE_API_KEY", "PADDLE_WEBHOOK_SECRET",
    "LEMONSQUEEZY_API_KEY", "LEMONSQUEEZY_WEBHOOK_SECRET", "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET", "CLERK_SECRET_KEY", "CLERK_WEBHOOK_SECRET", "RESEND_API_KEY",
    "RESEND_WEBHOOK_SECRET", "TELNYX_API_KEY", "CALENDLY_API_KEY",
    "CALENDLY_WEBHOOK_SIGNING_KEY", "INTERCOM_ACCESS_TOKEN", "INTERCOM_CLIENT_SECRET",
    "TYPEFORM_API_KEY", "TYPEFORM_WEBHOOK_SECRET", "PAGERDUTY_API_KEY", "PAGERDUTY_WEBHOOK_SECRET",
    "LINEAR_API_KEY", "LINEAR_WEBHOOK_SECRET", "VERCEL_TOKEN", "VERCEL_WEBHOOK_SECRET",
    "MUX_TOKEN_ID", "MUX_TOKEN_SECRET", "MUX_WEBHOOK_SECRET", "POSTMARK_SERVER_TOKEN",
    "POSTMARK_WEBHOOK_TOKEN", "DOCUSIGN_ACCESS_TOKEN", "DOCUSIGN_CONNECT_HMAC_KEY",
    "ZENDESK_API_TOKEN", "ZENDESK_WEBHOOK_SECRET", "HUBSPOT_ACCESS_TOKEN", "HUBSPOT_CLIENT_SECRET",
    "DROPBOX_APP_SECRET", "DROPBOX_REFRESH_TOKEN", "TWITCH_CLIENT_SECRET", "TWITCH_EVENTSUB_SECRET",
    "BITBUCKET_ACCESS_TOKEN", "BITBUCKET_WEBHOOK_SECRET", "RAZORPAY_KEY_ID", "RAZORPAY_KEY_SECRET",
    "RAZORPAY_WEBHOOK_SECRET", "WOOCOMMERCE_CONSUMER_KEY", "WOOCOMMERCE_CONSUMER_SECRET",
    "WOOCOMMERCE_WEBHOOK_SECRET", "OPENAI_API_KEY", "OPENAI_WEBHOOK_SECRET", "WEBFLOW_API_TOKEN",
    "WEBFLOW_WEBHOOK_SECRET", "ZOOM_ACCESS_TOKEN", "ZOOM_WEBHOOK_SECRET_TOKEN", "JIRA_API_TOKEN",
    "JIRA_WEBHOOK_SECRET", "XERO_CLIENT_SECRET", "XERO_REFRESH_TOKEN", "XERO_WEBHOOK_KEY",
    "QUICKBOOKS_CLIENT_SECRET", "QUICKBOOKS_REFRESH_TOKEN", "QUICKBOOKS_VERIFIER_TOKEN",
    "TRELLO_TOKEN", "TRELLO_SECRET", "AIRTABLE_TOKEN", "FIGMA_TOKEN", "FIGMA_WEBHOOK_PASSCODE",
    "DISCORD_BOT_TOKEN", "MAILGUN_API_KEY", "MAILGUN_WEBHOOK_SIGNING_KEY",
    "CONTENTFUL_MANAGEMENT_TOKEN", "CONTENTFUL_WEBHOOK_SIGNING_SECRET",
    "VONAGE_API_KEY", "VONAGE_API_SECRET", "VONAGE_SIGNATURE_SECRET", "PLAID_CLIENT_ID",
    "PLAID_SECRET", "NETLIFY_API_TOKEN", "NETLIFY_JWS_SECRET",
]  # fmt: skip
ENV = {name: f"test-{name.lower()}" for name in SECRET_NAMES}
ENV["SENDGRID_WEBHOOK_PUBLIC_KEY"] = PUBLIC_B64
# Svix-delivered secrets are whsec_ + base64.
ENV["AIRTABLE_WEBHOOK_MAC_SECRET"] = base64.b64encode(b"airtable mac secret").decode()
for _svix in ("CLERK_WEBHOOK_SECRET", "RESEND_WEBHOOK_SECRET", "OPENAI_WEBHOOK_SECRET"):
    ENV[_svix] = "whsec_" + base64.b64encode(ENV[_svix].encode()).decode()
# Ed25519 providers (Telnyx) are checked with the public half of the test key.
ENV["TELNYX_PUBLIC_KEY"] = ED25519_PUBLIC_B64
ENV["DISCORD_PUBLIC_KEY"] = ED25519_PUBLIC_HEX  # Discord shows the key in hex
CONFIG: Config = load_config(SHIPPED, ENV)
EXAMPLES = [
    (name, example)
    for name, integration in sorted(CONFIG.integrations.items())
    if integration.webhook is not None
    for example in sorted(integration.examples)
]


SEED = {
    "retell", "calcom", "stripe", "twilio", "sendgrid", "whatsapp", "google_calendar", "outlook",
    "segment", "sentry",
}  # fmt: skip
ADDED = {
    "github", "gitlab", "shopify", "paddle", "lemonsqueezy", "slack", "clerk", "resend", "telnyx",
    "calendly", "intercom", "typeform", "pagerduty", "linear", "vercel", "mux", "postmark",
    "docusign", "zendesk", "hubspot", "dropbox", "twitch", "bitbucket", "razorpay", "woocommerce",
    "openai", "webflow", "zoom", "jira", "xero", "quickbooks", "trello", "airtable", "figma",
    "discord", "mailgun", "contentful",
    "vonage", "plaid", "netlify",
}  # fmt: skip


def test_the_ten_seed_providers_and_the_added_ones_are_shipped() -> None:
    assert set(CONFIG.integrations) == SEED | ADDED
    assert len(CONFIG.flows) >= 5


def test_shipped_files_lint_clean_even_strict() -> None:
    result = lint([str(SHIPPED)])
    assert [d.text() for d in result.diagnostics] == []


def test_every_shipped_api_base_url_is_overridable() -> None:
    for name, integration in CONFIG.integrations.items():
        if integration.api is None:
            continue
        override = {**ENV, f"{name.upper()}_BASE_URL": "http://127.0.0.1:9"}
        moved = load_config(SHIPPED, override).integrations[name]
        assert moved.api is not None
        assert moved.api.base_url == "http://127.0.0.1:9", name


def _signed(name: str, example: str) -> OutgoingRequest:
    integration = CONFIG.integrations[name]
    found = integration.example(example)
    assert found is not None
    return signed_example(
        integration,
        found,
        f"http://testserver/webhooks/{name}",
        SecretLookup(name, {}, ENV),
        private_key=ED25519_PEM if _scheme(name) == "ed25519" else PRIVATE_PEM,
    )


def _scheme(name: str) -> str:
    webhook = CONFIG.integrations[name].webhook
    assert webhook is not None
    return str(webhook.verify_spec["scheme"])


def _send(client: TestClient, request: OutgoingRequest) -> Any:
    return client.request(
        request.method, request.url, headers=request.headers, content=request.body
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from gateway.config.settings import Settings
    from gateway.store import SQLiteStore
    from gateway.web.application import create_app

    db = tmp_path_factory.mktemp("shipped") / "gateway.db"
    app = create_app(
        CONFIG,
        SQLiteStore(f"sqlite:///{db}"),
        Settings.from_env(ENV),
        ENV,
        # Plaid's webhook keys are fetched from its API: answered here with the test key's
        transport=PlaidKeyEndpoint({simulated_kid(PRIVATE_PEM): _EC_KEY}, LoopbackOnly()),
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[f"{n}-{e}" for n, e in EXAMPLES])
def test_example_signed_as_the_provider_is_accepted_once(
    client: TestClient, name: str, example: str
) -> None:
    declared = CONFIG.integrations[name].example(example)
    assert declared is not None
    request = _signed(name, example)
    response = _send(client, request)
    assert response.status_code == 200, response.text
    if declared.get("handshake"):
        return
    repeat = _send(client, _signed(name, example))
    webhook = CONFIG.integrations[name].webhook
    assert webhook is not None
    if webhook.respond is not None:  # the provider's own acknowledgement (Twilio: TwiML)
        assert webhook.respond.body is not None
        assert response.text == webhook.respond.body.source  # TwiML holds no expression
        assert response.headers["content-type"].startswith(webhook.respond.content_type)
        assert repeat.headers["x-gateway-event-id"] == response.headers["x-gateway-event-id"]
        return
    assert response.json()["status"] == "accepted"
    assert repeat.json()["status"] == "duplicate"
    assert repeat.json()["event_id"] == response.json()["event_id"]


# Handshakes carry no signature (their tokens are tested in test_ingress).
SIGNED = [
    (n, e) for n, e in EXAMPLES if not (CONFIG.integrations[n].example(e) or {}).get("handshake")
]


@pytest.mark.parametrize(("name", "example"), SIGNED, ids=[f"{n}-{e}" for n, e in SIGNED])
def test_tampered_example_is_rejected(client: TestClient, name: str, example: str) -> None:
    request = _signed(name, example)
    webhook = CONFIG.integrations[name].webhook
    assert webhook is not None
    token_header = (
        webhook.verify_spec.get("header") if webhook.verify_spec["scheme"] == "token" else None
    )
    if token_header:  # a shared token in a header (Google, GitLab): the token is what is checked
        request.headers = {
            k: v + "x" if k.lower() == token_header.lower() else v
            for k, v in request.headers.items()
        }
    elif request.body:
        request.body = request.body[:-2] + bytes([request.body[-2] ^ 1]) + request.body[-1:]
    else:
        raise AssertionError(f"{name}: nothing to tamper with")
    response = _send(client, request)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] in ("invalid_signature", "invalid_token")


header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120)
header_names = st.sampled_from(
    [
        "Stripe-Signature", "X-Cal-Signature-256", "X-Retell-Signature", "X-Twilio-Signature",
        "X-Hub-Signature-256", "X-Signature", "Sentry-Hook-Signature", "X-Goog-Channel-Token",
        "X-Goog-Resource-State", "X-Twilio-Email-Event-Webhook-Signature",
        "X-Twilio-Email-Event-Webhook-Timestamp", "Content-Type", "X-Gitlab-Token",
        "X-Shopify-Hmac-Sha256", "Paddle-Signature", "X-Slack-Signature",
        "X-Slack-Request-Timestamp", "svix-id", "svix-timestamp", "svix-signature",
        "telnyx-signature-ed25519", "telnyx-timestamp", "Calendly-Webhook-Signature",
        "X-Hub-Signature", "Typeform-Signature", "X-PagerDuty-Signature", "Linear-Signature",
        "x-vercel-signature", "Mux-Signature", "X-Postmark-Webhook-Token",
        "X-DocuSign-Signature-1", "X-Zendesk-Webhook-Signature", "X-HubSpot-Signature-v3",
        "X-HubSpot-Request-Timestamp", "X-Dropbox-Signature", "Twitch-Eventsub-Message-Signature",
        "X-Razorpay-Signature", "X-WC-Webhook-Signature", "webhook-id", "webhook-timestamp",
        "webhook-signature", "x-webflow-signature", "x-webflow-timestamp", "x-zm-signature",
        "x-zm-request-timestamp", "x-xero-signature", "intuit-signature", "X-Trello-Webhook",
        "X-Airtable-Content-MAC", "X-Signature-Ed25519", "X-Signature-Timestamp",
        "x-contentful-signature", "x-contentful-signed-headers", "x-contentful-timestamp",
        "X-Airtable-Content-MAC", "Authorization", "Plaid-Verification", "X-Webhook-Signature",
    ]
)  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(sorted(n for n, i in CONFIG.integrations.items() if i.webhook)),
    headers=st.dictionaries(header_names, header_values, max_size=5),
    body=st.one_of(st.binary(max_size=300), st.just(b'{"value": [{"clientState": ""}]}')),
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]),
)
def test_random_requests_never_500_and_never_accepted(
    client: TestClient, name: str, headers: dict[str, str], body: bytes, method: str
) -> None:
    response = client.request(method, f"/webhooks/{name}", headers=headers, content=body)
    assert response.status_code != 500
    assert response.status_code in (200, 401, 405), response.text
    if response.status_code == 200:  # only a handshake may answer 200 without a signature
        assert "status" not in response.text or "accepted" not in response.text


def test_factory_loads_the_shipped_folder(make_client: AppFactory) -> None:
    client = make_client(SHIPPED, ENV)
    assert client.get("/healthz").json()["integrations"] == len(SEED) + len(ADDED)


def test_whatsapp_items_keep_their_business_number_and_sender_name(
    make_client: AppFactory,
) -> None:
    """A WhatsApp request batches messages under an envelope naming the business number and
    the senders' profiles: each split item carries them into its mapping."""
    client = make_client(SHIPPED, ENV)
    response = _send(client, _signed("whatsapp", "text_message"))
    event_id = response.json()["event_id"]
    stored = admin(client, f"/admin/api/events/{event_id}")
    assert isinstance(stored, dict)
    integration = CONFIG.integrations["whatsapp"]
    event = StoredEvent(
        event_id, "whatsapp", "default", stored["provider_event_id"], stored["type"], 0.0,
        "pending", {}, stored["body"].encode(),
    )  # fmt: skip
    mapped = map_stored(integration, event)
    assert mapped.failures == []
    ((name, data),) = mapped.events
    assert name == "message.received"
    assert data["name"] == "Jane Doe"
    assert data["business_number_id"] == "106540352242922"
    assert data["text"] == "Can I move my appointment to Friday?"
    statuses = _send(client, _signed("whatsapp", "statuses_batch")).json()["events"]
    for each in statuses:
        body = admin(client, f"/admin/api/events/{each['event_id']}")
        assert isinstance(body, dict)
        assert '"phone_number_id":"106540352242922"' in body["body"].replace(" ", "")
