"""Where signed values come from besides the body and headers: RFC 3339 timestamps (Zendesk,
Twitch), values of the JSON body (Linear's webhookTimestamp, Mailgun's signature object), and
public keys written in hex (Discord)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.verify import VerificationFailed, VerifyConfigError, WebhookRequest, build_verifier

NOW = 1_749_564_131.0  # 2025-06-10T14:02:11Z
SECRET = "signing-secret"


def _request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    lowered = {k.lower(): v for k, v in headers.items()}
    return WebhookRequest("POST", "https://gw.example/webhooks/x", lowered, [], body)


def _verdict(spec: dict[str, Any], body: bytes, headers: dict[str, str], now: float) -> str:
    """'ok', or the reason the request was refused."""
    try:
        build_verifier(spec).verify(_request(body, headers), lambda value: [value], now)
    except VerificationFailed as failed:
        return failed.reason
    return "ok"


def _b64_hmac(message: bytes) -> str:
    import base64

    return base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).decode()


# ---- RFC 3339 / ISO 8601 timestamps ---------------------------------------------------------

ZENDESK: dict[str, Any] = {
    "scheme": "hmac",
    "algorithm": "sha256",
    "secret": SECRET,
    "signature": {"header": "X-Zendesk-Webhook-Signature", "encoding": "base64"},
    "signed": "{timestamp}{body}",
    "timestamp": {
        "header": "X-Zendesk-Webhook-Signature-Timestamp",
        "format": "iso8601",
        "tolerance": "5m",
        "direction": "both",
    },
}
BODY = b'{"type":"zen:event-type:ticket.created"}'


def _zendesk(stamp: str, now: float = NOW) -> str:
    headers = {
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "X-Zendesk-Webhook-Signature": _b64_hmac(stamp.encode() + BODY),
    }
    return _verdict(ZENDESK, BODY, headers, now)


@pytest.mark.parametrize(
    ("stamp", "verdict"),
    [
        ("2025-06-10T14:02:11Z", "ok"),
        ("2025-06-10t14:02:11z", "ok"),
        ("2025-06-10T14:02:11.634234626Z", "ok"),  # Twitch writes nanoseconds
        ("2025-06-10T16:02:11+02:00", "ok"),  # the same instant, in Berlin's summer time
        ("2025-06-10T09:58:11-04:00", "ok"),  # four minutes earlier, in New York
        ("2025-06-10T13:57:10Z", "timestamp outside tolerance"),  # 5 min 1 s old
        ("2025-06-10T14:07:12Z", "timestamp outside tolerance"),  # 5 min 1 s ahead
        ("2025-06-10T16:02:11Z", "timestamp outside tolerance"),  # an offset left out
        ("2025-06-10T14:02:11", "timestamp is not an RFC 3339 date-time"),  # no offset
        ("2025-06-10 14:02:11Z", "timestamp is not an RFC 3339 date-time"),
        ("2025-13-10T14:02:11Z", "timestamp is not an RFC 3339 date-time"),
        ("2025-06-10T14:02:11+24:00", "timestamp is not an RFC 3339 date-time"),
        ("2025-06-10T14:02:11.1234567890Z", "timestamp is not an RFC 3339 date-time"),
        ("1749564131", "timestamp is not an RFC 3339 date-time"),
        (
            "\uff12\uff10\uff12\uff15-06-10T14:02:11Z",
            "timestamp is not an RFC 3339 date-time",
        ),  # wide digits
    ],
)
def test_iso8601_timestamp(stamp: str, verdict: str) -> None:
    assert _zendesk(stamp) == verdict


def test_iso8601_past_direction_accepts_the_future() -> None:
    past = {**ZENDESK, "timestamp": {**ZENDESK["timestamp"], "direction": "past"}}
    stamp = "2025-06-10T15:02:11Z"  # an hour ahead
    headers = {
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "X-Zendesk-Webhook-Signature": _b64_hmac(stamp.encode() + BODY),
    }
    assert _verdict(past, BODY, headers, NOW) == "ok"
    assert _verdict(ZENDESK, BODY, headers, NOW) == "timestamp outside tolerance"


def test_the_signed_timestamp_is_the_text_as_sent() -> None:
    """Equal instants written differently are different signed bytes."""
    headers = {
        "X-Zendesk-Webhook-Signature-Timestamp": "2025-06-10T14:02:11.000Z",
        "X-Zendesk-Webhook-Signature": _b64_hmac(b"2025-06-10T14:02:11Z" + BODY),
    }
    assert _verdict(ZENDESK, BODY, headers, NOW) == "signature mismatch"


# ---- values of the JSON body ----------------------------------------------------------------

LINEAR: dict[str, Any] = {
    "scheme": "hmac",
    "algorithm": "sha256",
    "secret": SECRET,
    "signature": {"header": "Linear-Signature"},
    "signed": "{body}",
    "timestamp": {"body_path": "webhookTimestamp", "unit": "ms", "tolerance": "1m"},
}


@pytest.mark.parametrize(
    ("stamp", "verdict"),
    [
        (int(NOW * 1000), "ok"),
        (int(NOW * 1000) - 59_000, "ok"),
        (int(NOW * 1000) - 61_000, "timestamp outside tolerance"),
        (str(int(NOW * 1000)), "ok"),  # a string of digits reads as the number
        (float(NOW * 1000), "body value webhookTimestamp is not a string or an integer"),
        (True, "body value webhookTimestamp is not a string or an integer"),
        ({"ms": 1}, "body value webhookTimestamp is not a string or an integer"),
        ("soon", "timestamp is not a number"),
    ],
)
def test_timestamp_in_the_body(stamp: Any, verdict: str) -> None:
    body = json.dumps({"action": "create", "webhookTimestamp": stamp}).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert _verdict(LINEAR, body, {"Linear-Signature": signature}, NOW) == verdict


@pytest.mark.parametrize(
    ("body", "verdict"),
    [
        (b'{"action": "create"}', "body has no webhookTimestamp"),
        (b"[1, 2]", "body has no webhookTimestamp"),
        (b"not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b"[" * 100_000, "body is not JSON"),
    ],
)
def test_a_body_without_the_value_fails_closed(body: bytes, verdict: str) -> None:
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert _verdict(LINEAR, body, {"Linear-Signature": signature}, NOW) == verdict


MAILGUN: dict[str, Any] = {
    "scheme": "hmac",
    "algorithm": "sha256",
    "secret": SECRET,
    "signature": {"body_path": "signature.signature", "encoding": "hex"},
    "signed": "{timestamp}{body:signature.token}",
    "timestamp": {"body_path": "signature.timestamp", "tolerance": "15m"},
}
TOKEN = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"


def _mailgun_body(timestamp: Any, token: Any, signature: str | None = None) -> bytes:
    if signature is None:
        signed = f"{timestamp}{token}".encode()
        signature = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    fields = {"timestamp": timestamp, "token": token, "signature": signature}
    return json.dumps({"signature": fields, "event-data": {"event": "delivered"}}).encode()


def test_signature_and_signed_values_in_the_body() -> None:
    assert _verdict(MAILGUN, _mailgun_body(str(int(NOW)), TOKEN), {}, NOW) == "ok"
    assert _verdict(MAILGUN, _mailgun_body(int(NOW), TOKEN), {}, NOW) == "ok"  # as a number


@pytest.mark.parametrize(
    ("body", "verdict"),
    [
        (_mailgun_body(str(int(NOW) - 901), TOKEN), "timestamp outside tolerance"),
        (_mailgun_body(str(int(NOW)), TOKEN, "00" * 32), "signature mismatch"),
        (_mailgun_body(str(int(NOW)), TOKEN, "zz" * 32), "malformed signature in body value signature.signature"),
        (_mailgun_body(str(int(NOW)), TOKEN, "ab" * 20), "malformed signature in body value signature.signature"),
        (_mailgun_body(str(int(NOW)), ["a", "list"]), "body value signature.token is not a string or an integer"),
        (b'{"event-data": {}}', "body has no signature.signature"),
        (b'{"signature": "flat"}', "body has no signature.signature"),
    ],
)  # fmt: skip
def test_body_signature_refusals(body: bytes, verdict: str) -> None:
    assert _verdict(MAILGUN, body, {}, NOW) == verdict


def test_a_changed_token_breaks_the_signature() -> None:
    good = json.loads(_mailgun_body(str(int(NOW)), TOKEN))
    good["signature"]["token"] = TOKEN[:-1] + "1"
    assert _verdict(MAILGUN, json.dumps(good).encode(), {}, NOW) == "signature mismatch"


def test_a_body_signature_is_masked_and_no_header_is_a_signature() -> None:
    verifier = build_verifier(MAILGUN)
    assert verifier.secret_body_path == "signature.signature"
    assert verifier.signature_headers == frozenset()
    assert build_verifier(LINEAR).secret_body_path is None
    assert build_verifier(LINEAR).signature_headers == frozenset({"linear-signature"})


# ---- public keys in hex ---------------------------------------------------------------------

_DISCORD_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
DISCORD_PUBLIC_HEX = _DISCORD_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
DISCORD: dict[str, Any] = {
    "scheme": "ed25519",
    "public_key": DISCORD_PUBLIC_HEX,
    "key_encoding": "hex",
    "signature": {"header": "X-Signature-Ed25519", "encoding": "hex"},
    "signed": "{timestamp}{body}",
    "timestamp": {"header": "X-Signature-Timestamp", "direction": "both"},
}


def _discord(body: bytes, key: str = DISCORD_PUBLIC_HEX, stamp: int = int(NOW)) -> str:
    signature = _DISCORD_KEY.sign(str(stamp).encode() + body).hex()
    headers = {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": str(stamp)}
    return _verdict({**DISCORD, "public_key": key}, body, headers, NOW)


def test_ed25519_key_in_hex() -> None:
    assert _discord(b'{"type":1}') == "ok"
    assert _discord(b'{"type":1}', key=DISCORD_PUBLIC_HEX.upper()) == "ok"
    assert _discord(b'{"type":1}', stamp=int(NOW) - 301) == "timestamp outside tolerance"


@pytest.mark.parametrize("key", [DISCORD_PUBLIC_HEX[:-2], DISCORD_PUBLIC_HEX + "00", "zz" * 32])
def test_a_hex_key_that_is_not_32_bytes_fails_closed(key: str) -> None:
    assert _discord(b'{"type":1}', key=key) == "configured public key is not valid"


def test_a_base64_key_is_not_read_as_hex() -> None:
    import base64

    as_base64 = base64.b64encode(bytes.fromhex(DISCORD_PUBLIC_HEX)).decode()
    assert _discord(b"{}", key=as_base64) == "configured public key is not valid"
    assert (
        _verdict(
            {**DISCORD, "key_encoding": "base64", "public_key": as_base64},
            b"{}",
            {
                "X-Signature-Ed25519": _DISCORD_KEY.sign(str(int(NOW)).encode() + b"{}").hex(),
                "X-Signature-Timestamp": str(int(NOW)),
            },
            NOW,
        )
        == "ok"
    )


# ---- headers the request lists as signed (Contentful) ---------------------------------------

CONTENTFUL: dict[str, Any] = {
    "scheme": "hmac",
    "algorithm": "sha256",
    "secret": SECRET,
    "signature": {"header": "x-contentful-signature"},
    "signed": "{method}\n{path}\n{listed_headers}\n{body}",
    "listed_headers": {
        "header": "x-contentful-signed-headers",
        "must_include": ["x-contentful-timestamp"],
    },
    "timestamp": {"header": "x-contentful-timestamp", "unit": "ms", "tolerance": "30s"},
}
STAMP = str(int(NOW * 1000))


def _contentful(listed: str, headers: dict[str, str], signed_headers: str) -> str:
    """Signed over `signed_headers` (the canonical name:value list); sent with `headers`."""
    canonical = f"POST\n/webhooks/x\n{signed_headers}\n".encode() + BODY
    signature = hmac.new(SECRET.encode(), canonical, hashlib.sha256).hexdigest()
    sent = {
        **headers,
        "x-contentful-signed-headers": listed,
        "x-contentful-signature": signature,
    }
    return _verdict(CONTENTFUL, BODY, sent, NOW)


def test_listed_headers_sorted_lowercased_and_trimmed() -> None:
    listed = "X-Contentful-Timestamp, x-contentful-signed-headers,X-Contentful-Topic"
    canonical = (
        f"x-contentful-signed-headers:{listed};x-contentful-timestamp:{STAMP};"
        "x-contentful-topic:ContentManagement.Entry.publish"
    )
    headers = {
        "x-contentful-timestamp": STAMP,
        "X-Contentful-Topic": "  ContentManagement.Entry.publish ",
    }
    assert _contentful(listed, headers, canonical) == "ok"


def test_an_unlisted_header_may_change_a_listed_one_may_not() -> None:
    listed = "x-contentful-timestamp,x-contentful-topic"
    canonical = f"x-contentful-timestamp:{STAMP};x-contentful-topic:ContentManagement.Entry.publish"
    topic = {
        "x-contentful-timestamp": STAMP,
        "x-contentful-topic": "ContentManagement.Entry.publish",
    }
    assert _contentful(listed, {**topic, "x-other": "anything"}, canonical) == "ok"
    changed = {**topic, "x-contentful-topic": "ContentManagement.Entry.delete"}
    assert _contentful(listed, changed, canonical) == "signature mismatch"


@pytest.mark.parametrize(
    ("listed", "verdict"),
    [
        ("x-contentful-topic", "header x-contentful-signed-headers does not list x-contentful-timestamp"),
        ("x-contentful-timestamp,x-missing", "missing header x-missing"),
        (",".join(f"h{i}" for i in range(65)), "too many headers listed in x-contentful-signed-headers"),
    ],
)  # fmt: skip
def test_listed_headers_fail_closed(listed: str, verdict: str) -> None:
    headers = {"x-contentful-timestamp": STAMP, "x-contentful-topic": "t"}
    assert _contentful(listed, headers, "") == verdict


def test_method_and_path_are_signed() -> None:
    listed = "x-contentful-timestamp"
    canonical = f"PUT\n/webhooks/x\nx-contentful-timestamp:{STAMP}\n".encode() + BODY
    signature = hmac.new(SECRET.encode(), canonical, hashlib.sha256).hexdigest()
    headers = {
        "x-contentful-timestamp": STAMP,
        "x-contentful-signed-headers": listed,
        "x-contentful-signature": signature,
    }
    assert _verdict(CONTENTFUL, BODY, headers, NOW) == "signature mismatch"  # sent as POST
    verifier = build_verifier(CONTENTFUL)
    assert verifier.signs_url  # {path} is read from the public URL
    put = WebhookRequest("PUT", "https://gw.example/webhooks/x", headers, [], BODY)
    verifier.verify(put, lambda value: [value], NOW)
    moved = put._replace(url="https://gw.example/webhooks/y")
    with pytest.raises(VerificationFailed):
        verifier.verify(moved, lambda value: [value], NOW)


# ---- declarations the engine cannot run -----------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {**ZENDESK, "timestamp": {**ZENDESK["timestamp"], "unit": "ms"}},
            "verify.timestamp.unit: applies to format: unix only",
        ),
        (
            {**ZENDESK, "timestamp": {**ZENDESK["timestamp"], "format": "rfc2822"}},
            "verify.timestamp.format: 'rfc2822' is not one of unix, iso8601",
        ),
        (
            {**LINEAR, "timestamp": {"header": "X-Ts", "body_path": "ts"}},
            "verify.timestamp: give one of 'header', 'param' or 'body_path'",
        ),
        (
            {**LINEAR, "timestamp": {"body_path": "items[*].ts"}},
            "verify.timestamp.body_path: 'items[*].ts' is not a dotted path to one value",
        ),
        (
            {**MAILGUN, "signed": "{timestamp}{body}"},
            "verify.signed: {body} cannot be signed when the signature is in the body",
        ),
        (
            {**MAILGUN, "signature": {"header": "X-Sig", "body_path": "signature.signature"}},
            "verify.signature: give either 'header' or 'body_path'",
        ),
        (
            {**MAILGUN, "signed": "{timestamp}{body:}"},
            "verify.signed: unknown placeholder {body:}",
        ),
        (
            {**MAILGUN, "signed": "{timestamp}{body:a..b}"},
            "verify.signed: 'a..b' is not a dotted path to one value",
        ),
        (
            {**DISCORD, "key_encoding": "pem"},
            "verify.key_encoding: 'pem' is not one of base64, hex",
        ),
        (
            {k: v for k, v in CONTENTFUL.items() if k != "listed_headers"},
            "verify.signed: {listed_headers} needs a 'listed_headers' declaration",
        ),
        (
            {**CONTENTFUL, "listed_headers": {"header": "x-h", "must_include": "x-ts"}},
            "verify.listed_headers.must_include: expected a list of header names",
        ),
        (
            {
                "scheme": "url_params",
                "algorithm": "sha1",
                "secret": "s",
                "signature": {"body_path": "sig"},
            },
            "verify.signature: url_params reads a header",
        ),
    ],
)
def test_declarations_that_cannot_run_are_config_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(VerifyConfigError) as caught:
        build_verifier(spec)
    assert str(caught.value).startswith(message), str(caught.value)
