"""The vendors' own SDKs sign; the YAML-declared verifier must accept exactly what they sign.

Each provider is a YAML-like `verify` spec plus a function that signs a body the vendor's way.
Every test runs for every provider: genuine accepted; a flipped body byte, another secret, a
stale (and, where skew counts both ways, a future) timestamp, a missing or garbage header
rejected; and a request signed with the second of two configured secrets accepted.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import retell.lib.webhook_auth as retell_auth
import standardwebhooks.webhooks as standardwebhooks
import stripe
import svix.webhooks as svix
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook
from slack_sdk.signature import SignatureVerifier
from twilio.request_validator import RequestValidator

from gateway.verify import VerificationFailed, WebhookRequest, build_verifier

NOW = int(time.time())
URL = "https://gateway.example.com/webhooks/provider"
JSON_BODY = b'{"id":"evt_1","type":"payment.succeeded","amount":4200,"note":"caf\\u00e9"}'
FORM_BODY = urlencode(
    {"CallSid": "CA1234567890ABCDE", "From": "+14158675309", "To": "+18005551212", "Body": "hi"}
).encode()

Headers = dict[str, str]
# body, signing credential, unix seconds -> (headers, url)
Signer = Callable[[bytes, Any, int], tuple[Headers, str]]


@dataclass(frozen=True)
class Provider:
    name: str
    spec: dict[str, Any]  # with the configured secret left out: tests put one in
    sign: Signer
    credentials: Callable[[int], tuple[Any, str]]  # n -> (what signs, what is configured)
    header: str  # the signature header
    tolerance: int | None = None  # seconds; None: no timestamp
    both_ways: bool = False
    form: bool = False
    secret_key: str = "secret"
    body: bytes = JSON_BODY
    # The SDK's own verdict on (headers, url, body, configured secret), where it has one.
    sdk_verify: Callable[[Headers, str, bytes, str], bool] | None = field(default=None)

    def verifier_spec(self, *configured: str) -> dict[str, Any]:
        value: str | list[str] = configured[0] if len(configured) == 1 else list(configured)
        return {**self.spec, self.secret_key: value}

    def request(self, body: bytes, headers: Headers, url: str) -> WebhookRequest:
        return WebhookRequest(
            method="POST",
            url=url,
            headers={name.lower(): value for name, value in headers.items()},
            query=parse_qsl(urlsplit(url).query, keep_blank_values=True),
            body=body,
            form=parse_qsl(body.decode(), keep_blank_values=True) if self.form else (),
        )

    def signed(self, n: int = 0, timestamp: int = NOW) -> tuple[bytes, Headers, str]:
        headers, url = self.sign(self.body, self.credentials(n)[0], timestamp)
        return self.body, headers, url


def plain_secrets(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else [value]


def verdict(
    provider: Provider, body: bytes, headers: Headers, url: str, *configured: str, now: int = NOW
) -> bool:
    verifier = build_verifier(provider.verifier_spec(*configured))
    try:
        verifier.verify(provider.request(body, headers, url), plain_secrets, now)
    except VerificationFailed:
        return False
    return True


def hmac_credentials(prefix: str) -> Callable[[int], tuple[str, str]]:
    return lambda n: (f"{prefix}{n}-secret-value", f"{prefix}{n}-secret-value")


def standard_credentials(n: int) -> tuple[str, str]:
    secret = "whsec_" + base64.b64encode(bytes([n + 1]) * 24).decode()
    return secret, secret


def flip_last_byte(body: bytes) -> bytes:
    return body[:-1] + bytes([body[-1] ^ 0x01])


# ---- the vendors' signers -------------------------------------------------------------------


def stripe_sign(body: bytes, secret: str, ts: int) -> tuple[Headers, str]:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, ts)
    return {"Stripe-Signature": header}, URL


def stripe_verify(headers: Headers, url: str, body: bytes, secret: str) -> bool:
    try:
        stripe.WebhookSignature.verify_header(body, headers["Stripe-Signature"], secret, 300)
    except stripe.SignatureVerificationError:
        return False
    return True


def twilio_form_sign(body: bytes, token: str, ts: int) -> tuple[Headers, str]:
    params = dict(parse_qsl(body.decode()))
    url = URL + "?From=caller"
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}, url


def twilio_form_verify(headers: Headers, url: str, body: bytes, token: str) -> bool:
    params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    return bool(RequestValidator(token).validate(url, params, headers["X-Twilio-Signature"]))


def twilio_json_sign(body: bytes, token: str, ts: int) -> tuple[Headers, str]:
    validator = RequestValidator(token)
    url = f"{URL}?bodySHA256={validator.compute_hash(body.decode())}"
    return {"X-Twilio-Signature": validator.compute_signature(url, {})}, url


def twilio_json_verify(headers: Headers, url: str, body: bytes, token: str) -> bool:
    validator = RequestValidator(token)
    return bool(validator.validate(url, body.decode(), headers["X-Twilio-Signature"]))


@cache
def sendgrid_credentials(n: int) -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode()


def sendgrid_sign(body: bytes, private: ec.EllipticCurvePrivateKey, ts: int) -> tuple[Headers, str]:
    signature = private.sign(str(ts).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": str(ts),
    }, URL


def sendgrid_verify(headers: Headers, url: str, body: bytes, public_key: str) -> bool:
    return bool(
        EventWebhook(public_key=public_key).verify_signature(
            body.decode(),
            headers["X-Twilio-Email-Event-Webhook-Signature"],
            headers["X-Twilio-Email-Event-Webhook-Timestamp"],
        )
    )


def standard_sign(body: bytes, secret: str, ts: int) -> tuple[Headers, str]:
    signature = standardwebhooks.Webhook(secret).sign(
        "msg_2Kq", datetime.fromtimestamp(ts, tz=UTC), body.decode()
    )
    headers = {"webhook-id": "msg_2Kq", "webhook-timestamp": str(ts)}
    return {**headers, "webhook-signature": f"v1a,{'A' * 86}== {signature}"}, URL


def standard_verify(headers: Headers, url: str, body: bytes, secret: str) -> bool:
    only_v1 = {**headers, "webhook-signature": headers["webhook-signature"].split(" ")[-1]}
    try:
        standardwebhooks.Webhook(secret).verify(body, only_v1, json_parse=False)
    except standardwebhooks.WebhookVerificationError:
        return False
    return True


def svix_sign(body: bytes, secret: str, ts: int) -> tuple[Headers, str]:
    signature = svix.Webhook(secret).sign(
        "msg_svix", datetime.fromtimestamp(ts, tz=UTC), body.decode()
    )
    return {"svix-id": "msg_svix", "svix-timestamp": str(ts), "svix-signature": signature}, URL


def svix_verify(headers: Headers, url: str, body: bytes, secret: str) -> bool:
    try:
        svix.Webhook(secret).verify(body, headers)
    except svix.WebhookVerificationError:
        return False
    return True


def retell_sign(body: bytes, key: str, ts: int) -> tuple[Headers, str]:
    return {"x-retell-signature": retell_auth.symmetric["sign"](body.decode(), key, ts * 1000)}, URL


def retell_verify(headers: Headers, url: str, body: bytes, key: str) -> bool:
    return bool(retell_auth.verify(body.decode(), key, headers["x-retell-signature"]))


def slack_sign(body: bytes, secret: str, ts: int) -> tuple[Headers, str]:
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(ts), body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": signature}, URL


def slack_verify(headers: Headers, url: str, body: bytes, secret: str) -> bool:
    return SignatureVerifier(secret).is_valid_request(body, headers)


# ---- the YAML each provider would ship ------------------------------------------------------

STANDARD_HEADERS = {
    "id": "webhook-id",
    "timestamp": "webhook-timestamp",
    "signature": "webhook-signature",
}
SVIX_HEADERS = {"id": "svix-id", "timestamp": "svix-timestamp", "signature": "svix-signature"}


def standard_spec(names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "scheme": "hmac",
        "algorithm": "sha256",
        "secret_prefix": "whsec_",
        "secret_encoding": "base64",
        "signed": "{id}.{timestamp}.{body}",
        "id_header": names["id"],
        "timestamp": {"header": names["timestamp"], "tolerance": "5m", "direction": "both"},
        "signature": {
            "header": names["signature"],
            "format": "list",
            "prefix": "v1,",
            "encoding": "base64",
        },
    }


TWILIO_SPEC = {
    "scheme": "url_params",
    "algorithm": "sha1",
    "signature": {"header": "X-Twilio-Signature", "encoding": "base64"},
    "body_hash_param": "bodySHA256",
    "port_variants": True,
}

PROVIDERS = [
    Provider(
        name="stripe",
        spec={
            "scheme": "hmac",
            "algorithm": "sha256",
            "signed": "{timestamp}.{body}",
            "signature": {"header": "Stripe-Signature", "format": "pairs", "key": "v1"},
            "timestamp": {"param": "t", "tolerance": "5m", "direction": "past"},
        },
        sign=stripe_sign,
        credentials=hmac_credentials("whsec_"),
        header="Stripe-Signature",
        tolerance=300,
        sdk_verify=stripe_verify,
    ),
    Provider(
        name="twilio-form",
        spec=TWILIO_SPEC,
        sign=twilio_form_sign,
        credentials=hmac_credentials("auth-token-"),
        header="X-Twilio-Signature",
        form=True,
        body=FORM_BODY,
        sdk_verify=twilio_form_verify,
    ),
    Provider(
        name="twilio-json",
        spec=TWILIO_SPEC,
        sign=twilio_json_sign,
        credentials=hmac_credentials("auth-token-"),
        header="X-Twilio-Signature",
        sdk_verify=twilio_json_verify,
    ),
    Provider(
        name="sendgrid",
        spec={
            "scheme": "ecdsa",
            "signed": "{timestamp}{body}",
            "signature": {"header": "X-Twilio-Email-Event-Webhook-Signature", "encoding": "base64"},
            "timestamp": {"header": "X-Twilio-Email-Event-Webhook-Timestamp", "tolerance": "10m"},
        },
        sign=sendgrid_sign,
        credentials=sendgrid_credentials,
        header="X-Twilio-Email-Event-Webhook-Signature",
        tolerance=600,
        both_ways=True,
        secret_key="public_key",
        sdk_verify=sendgrid_verify,
    ),
    Provider(
        name="standard-webhooks",
        spec=standard_spec(STANDARD_HEADERS),
        sign=standard_sign,
        credentials=standard_credentials,
        header="webhook-signature",
        tolerance=300,
        both_ways=True,
        sdk_verify=standard_verify,
    ),
    Provider(
        name="svix",
        spec=standard_spec(SVIX_HEADERS),
        sign=svix_sign,
        credentials=standard_credentials,
        header="svix-signature",
        tolerance=300,
        both_ways=True,
        sdk_verify=svix_verify,
    ),
    Provider(
        name="retell",
        spec={
            "scheme": "hmac",
            "algorithm": "sha256",
            "signed": "{body}{timestamp}",
            "signature": {"header": "x-retell-signature", "format": "pairs", "key": "d"},
            "timestamp": {"param": "v", "unit": "ms", "tolerance": "5m", "direction": "both"},
        },
        sign=retell_sign,
        credentials=hmac_credentials("key_"),
        header="x-retell-signature",
        tolerance=300,
        both_ways=True,
        sdk_verify=retell_verify,
    ),
    Provider(
        name="slack",
        spec={
            "scheme": "hmac",
            "algorithm": "sha256",
            "signed": "v0:{timestamp}:{body}",
            "signature": {"header": "X-Slack-Signature", "prefix": "v0="},
            "timestamp": {"header": "X-Slack-Request-Timestamp", "tolerance": "5m"},
        },
        sign=slack_sign,
        credentials=hmac_credentials("slack"),
        header="X-Slack-Signature",
        tolerance=300,
        both_ways=True,
        sdk_verify=slack_verify,
    ),
]


TIMED = [p for p in PROVIDERS if p.tolerance is not None]


@pytest.fixture(params=PROVIDERS, ids=[p.name for p in PROVIDERS])
def provider(request: pytest.FixtureRequest) -> Provider:
    value: Provider = request.param
    return value


@pytest.fixture(params=TIMED, ids=[p.name for p in TIMED])
def timed(request: pytest.FixtureRequest) -> Provider:
    value: Provider = request.param
    assert value.tolerance is not None
    return value


def configured(provider: Provider, n: int = 0) -> str:
    return provider.credentials(n)[1]


def test_genuine_request_is_accepted(provider: Provider) -> None:
    assert verdict(provider, *provider.signed(), configured(provider))


def test_flipped_body_byte_is_rejected(provider: Provider) -> None:
    body, headers, url = provider.signed()
    assert not verdict(provider, flip_last_byte(body), headers, url, configured(provider))


def test_other_secret_is_rejected(provider: Provider) -> None:
    assert not verdict(provider, *provider.signed(n=1), configured(provider))


def test_stale_timestamp_is_rejected(timed: Provider) -> None:
    tolerance = timed.tolerance or 0
    stale = timed.signed(timestamp=NOW - tolerance - 60)
    assert not verdict(timed, *stale, configured(timed))
    just_fresh = timed.signed(timestamp=NOW - tolerance + 1)
    assert verdict(timed, *just_fresh, configured(timed))


def test_future_timestamp_follows_the_direction(timed: Provider) -> None:
    future = timed.signed(timestamp=NOW + (timed.tolerance or 0) + 60)
    assert verdict(timed, *future, configured(timed)) is not timed.both_ways


@pytest.mark.parametrize("value", [None, "", "garbage", "t=1,v1=zz", "v1,@@@", "=" * 5000])
def test_missing_or_garbage_header_is_rejected(provider: Provider, value: str | None) -> None:
    body, headers, url = provider.signed()
    headers = {k: v for k, v in headers.items() if k != provider.header}
    if value is not None:
        headers[provider.header] = value
    assert not verdict(provider, body, headers, url, configured(provider))


def test_rotation_accepts_the_second_secret(provider: Provider) -> None:
    body, headers, url = provider.signed(n=1)
    assert verdict(provider, body, headers, url, configured(provider, 0), configured(provider, 1))


def test_the_sdk_agrees(provider: Provider) -> None:
    assert provider.sdk_verify is not None
    # The SDKs compare timestamps with the clock, not NOW: a long run reaches this test
    # minutes after NOW was taken.
    now = int(time.time())
    body, headers, url = provider.signed(timestamp=now)
    secret = configured(provider)
    assert provider.sdk_verify(headers, url, body, secret)
    assert verdict(provider, body, headers, url, secret, now=now)
    tampered = flip_last_byte(body)
    assert not provider.sdk_verify(headers, url, tampered, secret)
    assert not verdict(provider, tampered, headers, url, secret, now=now)


def test_twilio_signature_over_the_url_with_port_443() -> None:
    twilio = PROVIDERS[1]
    body, _, url = twilio.signed()
    token = configured(twilio)
    with_port = url.replace(".com/", ".com:443/")
    signature = RequestValidator(token).compute_signature(with_port, dict(parse_qsl(body.decode())))
    assert verdict(twilio, body, {"X-Twilio-Signature": signature}, url, token)


def test_stripe_header_with_several_v1_signatures() -> None:
    stripe_provider = PROVIDERS[0]
    body, headers, url = stripe_provider.signed(n=1)
    old = stripe.WebhookSignature.generate_signature_header(body.decode(), "whsec_old", NOW)
    headers["Stripe-Signature"] += "," + old.split(",")[1] + ",v0=deadbeef"
    assert verdict(stripe_provider, body, headers, url, configured(stripe_provider, 1))
    assert verdict(stripe_provider, body, headers, url, "whsec_old")


def test_sendgrid_public_key_as_pem() -> None:
    sendgrid_provider = next(p for p in PROVIDERS if p.name == "sendgrid")
    private, _ = sendgrid_credentials(0)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert verdict(sendgrid_provider, *sendgrid_provider.signed(), pem.decode())


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP256K1()])
def test_public_key_of_another_curve_fails_closed(curve: ec.EllipticCurve) -> None:
    sendgrid_provider = next(p for p in PROVIDERS if p.name == "sendgrid")
    der = (
        ec.generate_private_key(curve)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    spec = sendgrid_provider.verifier_spec(base64.b64encode(der).decode())
    body, headers, url = sendgrid_provider.signed()
    with pytest.raises(VerificationFailed, match="configured public key is not valid"):
        build_verifier(spec).verify(
            sendgrid_provider.request(body, headers, url), plain_secrets, NOW
        )
