"""Property tests: whatever a request holds, a verifier either accepts a genuine signature or
raises VerificationFailed; it never raises anything else and never accepts a forgery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.verify import VerificationFailed, Verifier, WebhookRequest, build_verifier

NOW = 1_700_000_000
URL = "https://gateway.example.com/webhooks/fuzz"
HMAC_SECRET = "fuzz-secret"
STANDARD_KEY = bytes(range(24))
STANDARD_SECRET = "whsec_" + base64.b64encode(STANDARD_KEY).decode()
TOKEN = "fuzz-client-state"
FUZZ = settings(
    max_examples=int(os.environ.get("VERIFY_FUZZ_EXAMPLES", "200")), deadline=None, database=None
)


@cache
def p256_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@cache
def ed25519_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def p256_public() -> str:
    der = (
        p256_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


def ed25519_public() -> str:
    raw = (
        ed25519_key()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return "whpk_" + base64.b64encode(raw).decode()


def mac(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.digest(key, message, algorithm)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class Case:
    """A spec, and how the provider would sign a body at a time (None: nothing to sign)."""

    name: str
    spec: dict[str, Any]
    # (body, unix seconds) -> the signature bytes
    signature: Callable[[bytes, int], bytes] | None = None
    # (signature bytes, unix seconds) -> headers
    headers: Callable[[bytes, int], dict[str, str]] | None = None
    url: Callable[[bytes], str] = lambda body: URL
    length: int = 32  # bytes in a signature of the right shape


def twilio_url(body: bytes) -> str:
    return f"{URL}?bodySHA256={hashlib.sha256(body).hexdigest()}"


HMAC_KEY = HMAC_SECRET.encode()
STANDARD_TIMESTAMP = {"header": "webhook-timestamp", "tolerance": "5m"}

CASES = [
    Case(
        "stripe",
        {
            "scheme": "hmac",
            "algorithm": "sha256",
            "secret": HMAC_SECRET,
            "signed": "{timestamp}.{body}",
            "signature": {"header": "stripe-signature", "format": "pairs", "key": "v1"},
            "timestamp": {"param": "t", "direction": "past"},
        },
        lambda body, ts: mac(HMAC_KEY, f"{ts}.".encode() + body),
        lambda sig, ts: {"stripe-signature": f"t={ts},v1={sig.hex()},v0=00"},
    ),
    Case(
        "paddle",
        {
            "scheme": "hmac",
            "algorithm": "sha256",
            "secret": HMAC_SECRET,
            "signed": "{timestamp}:{body}",
            "signature": {
                "header": "paddle-signature",
                "format": "pairs",
                "separator": ";",
                "key": "h1",
            },
            "timestamp": {"param": "ts", "tolerance": "5s", "direction": "past"},
        },
        lambda body, ts: mac(HMAC_KEY, f"{ts}:".encode() + body),
        lambda sig, ts: {"paddle-signature": f"ts={ts};h1={sig.hex()}"},
    ),
    Case(
        "retell",
        {
            "scheme": "hmac",
            "algorithm": "sha256",
            "secret": HMAC_SECRET,
            "signed": "{body}{timestamp}",
            "signature": {"header": "x-retell-signature", "format": "pairs", "key": "d"},
            "timestamp": {"param": "v", "unit": "ms"},
        },
        lambda body, ts: mac(HMAC_KEY, body + str(ts * 1000).encode()),
        lambda sig, ts: {"x-retell-signature": f"v={ts * 1000},d={sig.hex()}"},
    ),
    Case(
        "slack",
        {
            "scheme": "hmac",
            "algorithm": "sha256",
            "secret": HMAC_SECRET,
            "signed": "v0:{timestamp}:{body}",
            "signature": {"header": "x-slack-signature", "prefix": "v0="},
            "timestamp": {"header": "x-slack-request-timestamp"},
        },
        lambda body, ts: mac(HMAC_KEY, f"v0:{ts}:".encode() + body),
        lambda sig, ts: {
            "x-slack-signature": "v0=" + sig.hex(),
            "x-slack-request-timestamp": str(ts),
        },
    ),
    Case(
        "standard-webhooks",
        {
            "scheme": "hmac",
            "algorithm": "sha256",
            "secret": STANDARD_SECRET,
            "secret_prefix": "whsec_",
            "secret_encoding": "base64",
            "signed": "{id}.{timestamp}.{body}",
            "id_header": "webhook-id",
            "timestamp": STANDARD_TIMESTAMP,
            "signature": {
                "header": "webhook-signature",
                "format": "list",
                "prefix": "v1,",
                "encoding": "base64",
            },
        },
        lambda body, ts: mac(STANDARD_KEY, f"msg_1.{ts}.".encode() + body),
        lambda sig, ts: {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(ts),
            "webhook-signature": f"v1a,{b64(bytes(64))} v1,{b64(sig)}",
        },
    ),
    Case(
        "square-sha512",
        {
            "scheme": "hmac",
            "algorithm": "sha512",
            "secret": HMAC_SECRET,
            "signed": "{url}{body}",
            "signature": {"header": "x-signature", "encoding": "base64"},
        },
        lambda body, ts: mac(HMAC_KEY, URL.encode() + body, "sha512"),
        lambda sig, ts: {"x-signature": b64(sig)},
        length=64,
    ),
    Case(
        "twilio-json",
        {
            "scheme": "url_params",
            "algorithm": "sha1",
            "secret": HMAC_SECRET,
            "signature": {"header": "x-twilio-signature", "encoding": "base64"},
            "body_hash_param": "bodySHA256",
            "port_variants": True,
        },
        lambda body, ts: mac(HMAC_KEY, twilio_url(body).encode(), "sha1"),
        lambda sig, ts: {"x-twilio-signature": b64(sig)},
        url=twilio_url,
        length=20,
    ),
    Case(
        "sendgrid",
        {
            "scheme": "ecdsa",
            "public_key": p256_public(),
            "signed": "{timestamp}{body}",
            "signature": {"header": "x-sg-signature", "encoding": "base64"},
            "timestamp": {"header": "x-sg-timestamp"},
        },
        lambda body, ts: p256_key().sign(str(ts).encode() + body, ec.ECDSA(hashes.SHA256())),
        lambda sig, ts: {"x-sg-signature": b64(sig), "x-sg-timestamp": str(ts)},
        length=71,
    ),
    Case(
        "standard-webhooks-v1a",
        {
            "scheme": "ed25519",
            "public_key": ed25519_public(),
            "key_prefix": "whpk_",
            "signed": "{id}.{timestamp}.{body}",
            "id_header": "webhook-id",
            "timestamp": STANDARD_TIMESTAMP,
            "signature": {
                "header": "webhook-signature",
                "format": "list",
                "prefix": "v1a,",
                "encoding": "base64",
            },
        },
        lambda body, ts: ed25519_key().sign(f"msg_1.{ts}.".encode() + body),
        lambda sig, ts: {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(ts),
            "webhook-signature": f"v1,{b64(bytes(32))} v1a,{b64(sig)}",
        },
        length=64,
    ),
    Case(
        "twilio-form",
        {
            "scheme": "url_params",
            "algorithm": "sha1",
            "secret": HMAC_SECRET,
            "signature": {"header": "x-twilio-signature", "encoding": "base64"},
        },
    ),
    Case("token-header", {"scheme": "token", "secret": TOKEN, "header": "x-goog-channel-token"}),
    Case("token-body", {"scheme": "token", "secret": TOKEN, "body_path": "value[*].clientState"}),
    Case("none", {"scheme": "none", "reason": "the provider signs nothing"}),
    # Values read from the body, RFC 3339 timestamps, listed headers, hex keys: rejected cleanly.
    Case(
        "mailgun-body",
        {
            "scheme": "hmac",
            "algorithm": "sha256",
            "secret": HMAC_SECRET,
            "signed": "{timestamp}{body:signature.token}",
            "signature": {"body_path": "signature.signature"},
            "timestamp": {"body_path": "signature.timestamp", "tolerance": "15m"},
        },
    ),
    Case(
        "zendesk-iso8601",
        {
            "scheme": "hmac",
            "algorithm": "sha256",
            "secret": HMAC_SECRET,
            "signed": "{timestamp}{body}",
            "signature": {"header": "x-zendesk-webhook-signature", "encoding": "base64"},
            "timestamp": {"header": "x-zendesk-webhook-signature-timestamp", "format": "iso8601"},
        },
    ),
    Case(
        "contentful-listed",
        {
            "scheme": "hmac",
            "algorithm": "sha256",
            "secret": HMAC_SECRET,
            "signed": "{method}\n{path}\n{listed_headers}\n{body}",
            "signature": {"header": "x-contentful-signature"},
            "listed_headers": {
                "header": "x-contentful-signed-headers",
                "must_include": ["x-contentful-timestamp"],
            },
            "timestamp": {"header": "x-contentful-timestamp", "unit": "ms"},
        },
    ),
    Case(
        "discord-hex",
        {
            "scheme": "ed25519",
            "public_key": base64.b64decode(ed25519_public().removeprefix("whpk_")).hex(),
            "key_encoding": "hex",
            "signed": "{timestamp}{body}",
            "signature": {"header": "x-signature-ed25519", "encoding": "hex"},
            "timestamp": {"header": "x-signature-timestamp"},
        },
    ),
]
SIGNED = [case for case in CASES if case.signature is not None]


def header_names(spec: dict[str, Any]) -> list[str]:
    """The headers a spec reads, lower-cased, plus one it does not."""
    names = {spec.get("id_header"), spec.get("header"), "x-unrelated"}
    names.add(spec.get("signature", {}).get("header"))
    names.add(spec.get("timestamp", {}).get("header"))
    names.add(spec.get("listed_headers", {}).get("header"))
    return sorted(name.lower() for name in names if name)


def plain_secrets(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else [value]


@cache
def verifier(name: str) -> Verifier:
    return build_verifier(next(case.spec for case in CASES if case.name == name))


def make_request(
    url: str, headers: dict[str, str], body: bytes, form: list[tuple[str, str]] | None = None
) -> WebhookRequest:
    try:
        query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        query = []
    return WebhookRequest("POST", url, headers, query, body, form or ())


def accepted(case: Case, request: WebhookRequest, now: float = NOW) -> bool:
    try:
        verifier(case.name).verify(request, plain_secrets, now)
    except VerificationFailed as failed:
        assert failed.reason and HMAC_SECRET not in failed.reason and TOKEN not in failed.reason
        return False
    return True


# ---- strategies -----------------------------------------------------------------------------

near_now = st.integers(NOW - 400, NOW + 400)
pieces = st.one_of(
    st.sampled_from(
        ["t=", "v1=", "v0=", "ts=", "h1=", "d=", "v=", ",", ";", " ", "=", "v1,", "v1a,", "v0=",
         "sha256=", "\x00", "é", "\u2028", "\u0661", "-", "+", "0x", "2023-11-14T22:13:20Z",
         "T", ":", "Z", "+01:00", ".123456789"]
    ),
    near_now.map(str),
    near_now.map(lambda ts: str(ts * 1000)),
    st.binary(max_size=72).map(bytes.hex),
    st.binary(max_size=72).map(b64),
    st.text(max_size=12),
)  # fmt: skip
header_values = st.lists(pieces, max_size=6).map("".join)


def header_maps(case: Case) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(header_names(case.spec), header_values))


json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=6), inner, max_size=2)
    ),
    max_leaves=4,
)
graph_items = st.fixed_dictionaries({}, optional={"clientState": json_scalars})
signature_objects = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": json_scalars | near_now.map(str),
        "token": json_scalars,
        "signature": pieces,
    },
)
bodies = st.one_of(
    st.binary(max_size=100),
    signature_objects.map(lambda fields: json.dumps({"signature": fields}).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(graph_items, max_size=3).map(lambda items: json.dumps({"value": items}).encode()),
)
urls = st.one_of(
    st.sampled_from(
        [URL, "http://gateway.example.com:8080/w?bodySHA256=abc", "https://[::1]:443/x?bodySHA256=",
         "https://gateway.example.com:/x", "http://[::1/x", "https://h:99999/x", "not a url", ""]
    ),
    st.text(max_size=40).map(lambda path: f"{URL}?{path}"),
)  # fmt: skip
forms = st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6)), max_size=3)


# ---- properties -----------------------------------------------------------------------------
# Each property draws the scheme too, so `max_examples` is spread over all of them; raise
# VERIFY_FUZZ_EXAMPLES (say to 5000) for a deeper run.


@FUZZ
@given(case=st.sampled_from(CASES), url=urls, body=bodies, form=forms, data=st.data())
def test_arbitrary_requests_are_rejected_cleanly(
    case: Case, url: str, body: bytes, form: list[tuple[str, str]], data: st.DataObject
) -> None:
    headers = data.draw(header_maps(case))
    verdict = accepted(case, make_request(url, headers, body, form))
    assert verdict is (case.spec["scheme"] == "none")


@FUZZ
@given(case=st.sampled_from(SIGNED), body=bodies, other=bodies, data=st.data())
def test_only_the_genuine_signature_over_the_same_body_passes(
    case: Case, body: bytes, other: bytes, data: st.DataObject
) -> None:
    assert case.signature is not None and case.headers is not None
    ts = NOW + data.draw(st.integers(-4, 4))
    genuine = case.signature(body, ts)
    headers = case.headers(genuine, ts)
    assert accepted(case, make_request(case.url(body), headers, body))
    if other != body:
        assert not accepted(case, make_request(case.url(body), headers, other))
        assert not accepted(case, make_request(case.url(other), headers, other))
    forged = data.draw(st.binary(min_size=case.length, max_size=case.length))
    if forged != genuine:
        assert not accepted(case, make_request(case.url(body), case.headers(forged, ts), body))


@FUZZ
@given(case=st.sampled_from(SIGNED), body=bodies, value=header_values, data=st.data())
def test_a_rewritten_header_passes_only_if_it_keeps_what_was_signed(
    case: Case, body: bytes, value: str, data: st.DataObject
) -> None:
    assert case.signature is not None and case.headers is not None
    name = data.draw(st.sampled_from(header_names(case.spec)))
    genuine = case.signature(body, NOW)
    headers = case.headers(genuine, NOW)
    original = headers.get(name)
    headers[name] = value
    if not accepted(case, make_request(case.url(body), headers, body)) or original is None:
        return
    if name == case.spec["signature"]["header"]:
        # extra items, other versions, spaces or hex case may change; the signature may not
        assert genuine.hex() in value.lower() or b64(genuine) in value
    else:
        assert value == original
