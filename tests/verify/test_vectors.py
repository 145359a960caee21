"""Published test vectors (see signature-schemes.md) run through YAML-like `verify` specs."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.envsubst import SecretRef
from gateway.verify import (
    VerificationFailed,
    VerifyConfigError,
    WebhookRequest,
    build_verifier,
)
from gateway.verify.mac import Mac


def plain_secrets(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else [value]


def request(
    body: bytes,
    headers: Mapping[str, str],
    url: str = "https://gateway.example.com/webhooks/x",
    *,
    form: bool = False,
) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url=url,
        headers={name.lower(): value for name, value in headers.items()},
        query=parse_qsl(urlsplit(url).query, keep_blank_values=True),
        body=body,
        form=parse_qsl(body.decode(), keep_blank_values=True) if form else (),
    )


def accepts(spec: Mapping[str, Any], req: WebhookRequest, now: float) -> bool:
    try:
        build_verifier(spec).verify(req, plain_secrets, now)
    except VerificationFailed:
        return False
    return True


def rejection(spec: Mapping[str, Any], req: WebhookRequest, now: float) -> str:
    with pytest.raises(VerificationFailed) as caught:
        build_verifier(spec).verify(req, plain_secrets, now)
    return caught.value.reason


# ---- Twilio ---------------------------------------------------------------------------------

TWILIO: dict[str, Any] = {
    "scheme": "url_params",
    "algorithm": "sha1",
    "secret": "12345",
    "signature": {"header": "X-Twilio-Signature", "encoding": "base64"},
    "body_hash_param": "bodySHA256",
    "port_variants": True,
}
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_FORM = urlencode(
    {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
).encode()
TWILIO_JSON = b'{"property": "value", "boolean": true}'
TWILIO_JSON_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"


def twilio_form(signature: str, url: str = TWILIO_URL) -> WebhookRequest:
    return request(TWILIO_FORM, {"X-Twilio-Signature": signature}, url, form=True)


def twilio_json(body: bytes = TWILIO_JSON) -> WebhookRequest:
    url = f"{TWILIO_URL}&bodySHA256={TWILIO_JSON_HASH}"
    return request(body, {"X-Twilio-Signature": "a9nBmqA0ju/hNViExpshrM61xv4="}, url)


@pytest.mark.parametrize(
    ("signature", "url"),
    [
        ("RSOYDt4T1cUTdK1PDd93/VVr8B8=", TWILIO_URL),
        # signed over the URL with :443 added: accepted for a URL without a port ...
        ("kvajT1Ptam85bY51eRf/AJRuM3w=", TWILIO_URL),
        # ... and the plain signature for a URL that carries :443
        ("RSOYDt4T1cUTdK1PDd93/VVr8B8=", TWILIO_URL.replace(".com/", ".com:443/")),
    ],
)
def test_twilio_form_vector(signature: str, url: str) -> None:
    assert accepts(TWILIO, twilio_form(signature, url), now=0)


def test_twilio_port_variant_needs_port_variants() -> None:
    spec = {**TWILIO, "port_variants": False}
    assert accepts(spec, twilio_form("RSOYDt4T1cUTdK1PDd93/VVr8B8="), now=0)
    assert not accepts(spec, twilio_form("kvajT1Ptam85bY51eRf/AJRuM3w="), now=0)


def test_twilio_json_body_vector() -> None:
    assert accepts(TWILIO, twilio_json(), now=0)


def test_twilio_json_body_with_another_body_fails_the_hash() -> None:
    reason = rejection(TWILIO, twilio_json(TWILIO_JSON.replace(b"true", b"false")), now=0)
    assert reason == "body hash mismatch"


def test_twilio_body_neither_form_nor_hashed_is_rejected() -> None:
    req = request(TWILIO_JSON, {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}, TWILIO_URL)
    assert rejection(TWILIO, req, now=0) == "body is neither form fields nor hashed in the URL"


def test_twilio_form_with_a_changed_value_is_rejected() -> None:
    body = TWILIO_FORM.replace(b"1234&", b"1235&")
    req = request(
        body, {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}, TWILIO_URL, form=True
    )
    assert rejection(TWILIO, req, now=0) == "signature mismatch"


# ---- HMAC providers -------------------------------------------------------------------------

RETELL: dict[str, Any] = {
    "scheme": "hmac",
    "algorithm": "sha256",
    "secret": "test-api-key",
    "signed": "{body}{timestamp}",
    "signature": {"header": "x-retell-signature", "format": "pairs", "key": "d"},
    "timestamp": {"param": "v", "unit": "ms", "tolerance": "5m", "direction": "both"},
}
RETELL_HEADER = {
    "x-retell-signature": "v=1700000000000,"
    "d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e"
}
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmib"
    b"IGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK: dict[str, Any] = {
    "scheme": "hmac",
    "algorithm": "sha256",
    "secret": "8f742231b10e8888abcd99yyyzzz85a5",
    "signed": "v0:{timestamp}:{body}",
    "signature": {"header": "X-Slack-Signature", "prefix": "v0="},
    "timestamp": {"header": "X-Slack-Request-Timestamp"},
}
SLACK_HEADERS = {
    "X-Slack-Request-Timestamp": "1531420618",
    "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
}
GITHUB: dict[str, Any] = {
    "scheme": "hmac",
    "algorithm": "sha256",
    "secret": "It's a Secret to Everybody",
    "signed": "{body}",
    "signature": {"header": "X-Hub-Signature-256", "prefix": "sha256="},
}
GITHUB_HEADERS = {
    "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
}
STANDARD: dict[str, Any] = {
    "scheme": "hmac",
    "algorithm": "sha256",
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "secret_prefix": "whsec_",
    "secret_encoding": "base64",
    "signed": "{id}.{timestamp}.{body}",
    "id_header": "webhook-id",
    "timestamp": {"header": "webhook-timestamp", "tolerance": "5m"},
    "signature": {
        "header": "webhook-signature",
        "format": "list",
        "prefix": "v1,",
        "encoding": "base64",
    },
}
STANDARD_V1A: dict[str, Any] = {
    "scheme": "ed25519",
    "public_key": "whpk_1SiA4o9hyqTCpIqC5V9HUakiiaeACeqfZTInDBbOir4=",
    "key_prefix": "whpk_",
    "signed": "{id}.{timestamp}.{body}",
    "id_header": "webhook-id",
    "timestamp": {"header": "webhook-timestamp"},
    "signature": {
        "header": "webhook-signature",
        "format": "list",
        "prefix": "v1a,",
        "encoding": "base64",
    },
}
STANDARD_BODY = b'{"test": 2432232314}'
STANDARD_V1 = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
STANDARD_V1A_SIG = (
    "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="
)
SQUARE: dict[str, Any] = {
    "scheme": "hmac",
    "algorithm": "sha256",
    "secret": "signature-key",
    "signed": "{url}{body}",
    "signature": {"header": "x-square-hmacsha256-signature", "encoding": "base64"},
}
SQUARE_URL = "https://webhook.site/webhooks"
SQUARE_BODY = b'{"data":{"type":"webhooks","id":">id<"}}'
SQUARE_HEADERS = {"x-square-hmacsha256-signature": "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U="}
PADDLE: dict[str, Any] = {
    "scheme": "hmac",
    "algorithm": "sha256",
    "secret": "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_WvRO0eL4Bj9rgYYIBZY6wZhG4EHy9jzh",
    "signed": "{timestamp}:{body}",
    "signature": {"header": "Paddle-Signature", "format": "pairs", "separator": ";", "key": "h1"},
    "timestamp": {"param": "ts", "tolerance": "5s", "direction": "past"},
}
PADDLE_HEADERS = {
    "Paddle-Signature": "ts=1696195954;"
    "h1=d96299976a6eb066f484d7fde011ac56fc32b38fc9940bc419d6e537fdc6ef02"
}
STRIPE: dict[str, Any] = {
    "scheme": "hmac",
    "algorithm": "sha256",
    "secret": "whsec_test_secret",
    "signed": "{timestamp}.{body}",
    "signature": {"header": "Stripe-Signature", "format": "pairs", "key": "v1"},
    "timestamp": {"param": "t", "tolerance": "5m", "direction": "past"},
}
STRIPE_BODY = b'{"id":"evt_test_webhook","object":"event"}'
STRIPE_V1 = "3c5817089d739023dd6190f70a3757e04f7a2fd8b5dab12c2e000f51970dccff"


def standard_headers(signature: str) -> dict[str, str]:
    return {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": signature,
    }


VECTORS = {
    "retell": (RETELL, request(b'{"event":"call_ended"}', RETELL_HEADER), 1_700_000_000.0),
    "slack": (SLACK, request(SLACK_BODY, SLACK_HEADERS), 1531420618.0),
    "github": (GITHUB, request(b"Hello, World!", GITHUB_HEADERS), 0.0),
    "standard-v1": (STANDARD, request(STANDARD_BODY, standard_headers(STANDARD_V1)), 1614265330.0),
    "standard-v1-among-others": (
        STANDARD,
        request(STANDARD_BODY, standard_headers(f"v2,abc {STANDARD_V1A_SIG}  {STANDARD_V1}")),
        1614265330.0,
    ),
    "standard-v1a": (
        STANDARD_V1A,
        request(STANDARD_BODY, standard_headers(f"{STANDARD_V1} {STANDARD_V1A_SIG}")),
        1614265330.0,
    ),
    "square": (SQUARE, request(SQUARE_BODY, SQUARE_HEADERS, SQUARE_URL), 0.0),
    "paddle": (PADDLE, request(b"hello-world", PADDLE_HEADERS), 1696195954.0),
    "stripe": (
        STRIPE,
        request(STRIPE_BODY, {"Stripe-Signature": f"t=1614265330,v1={STRIPE_V1},v0=abc"}),
        1614265330.0,
    ),
}


@pytest.mark.parametrize("name", VECTORS)
def test_published_vector_is_accepted(name: str) -> None:
    spec, req, now = VECTORS[name]
    assert accepts(spec, req, now + 1)


@pytest.mark.parametrize("name", VECTORS)
def test_published_vector_with_another_body_is_rejected(name: str) -> None:
    spec, req, now = VECTORS[name]
    assert rejection(spec, _with_body(req, req.body + b" "), now) == "signature mismatch"


@pytest.mark.parametrize("name", VECTORS)
def test_published_vector_with_another_secret_is_rejected(name: str) -> None:
    spec, req, now = VECTORS[name]
    if spec["scheme"] == "ed25519":
        other = {**spec, "public_key": "whpk_" + "A" * 43 + "="}  # a valid point, another key
    elif spec.get("secret_encoding") == "base64":
        other = {**spec, "secret": "whsec_" + "B" * 32}
    else:
        other = {**spec, "secret": spec["secret"] + "x"}
    assert rejection(other, req, now) == "signature mismatch"


def _with_body(req: WebhookRequest, body: bytes) -> WebhookRequest:
    return WebhookRequest(req.method, req.url, req.headers, req.query, body, req.form)


# ---- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "offset", "accepted"),
    [
        ("stripe", 299, True),
        ("stripe", 301, False),
        ("stripe", -3600, True),  # direction past: a timestamp from the future passes
        ("paddle", 5, True),
        ("paddle", 6, False),
        ("slack", 300, True),
        ("slack", 301, False),
        ("slack", -301, False),  # direction both
        ("retell", 300, True),
        ("retell", 300.001, False),  # milliseconds count
        ("retell", -300.001, False),
        ("standard-v1", -301, False),
    ],
)
def test_tolerance(name: str, offset: float, accepted: bool) -> None:
    spec, req, now = VECTORS[name]
    assert accepts(spec, req, now + offset) is accepted


def test_stale_timestamp_reason() -> None:
    spec, req, now = VECTORS["stripe"]
    assert rejection(spec, req, now + 1000) == "timestamp outside tolerance"


def test_numeric_tolerance_is_seconds() -> None:
    spec, req, now = VECTORS["slack"]
    spec = {**spec, "timestamp": {**spec["timestamp"], "tolerance": 10}}
    assert accepts(spec, req, now + 10)
    assert not accepts(spec, req, now + 11)


# ---- secrets --------------------------------------------------------------------------------


def test_rotation_accepts_a_signature_by_any_configured_secret() -> None:
    spec, req, now = VECTORS["github"]
    assert accepts({**spec, "secret": ["old-secret", spec["secret"]]}, req, now)


def test_standard_webhooks_secret_without_padding_or_prefix() -> None:
    spec, req, now = VECTORS["standard-v1"]
    assert accepts({**spec, "secret": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, req, now)


def test_no_secret_configured_fails_closed() -> None:
    spec, req, now = VECTORS["github"]
    with pytest.raises(VerificationFailed, match="no secret configured"):
        build_verifier({**spec, "secret": SecretRef("GITHUB_SECRET")}).verify(
            req, lambda value: [], now
        )


def test_secret_refs_go_through_the_lookup() -> None:
    spec, req, now = VECTORS["github"]
    seen: list[Any] = []

    def lookup(value: Any) -> list[str]:
        seen.append(value)
        return ["It's a Secret to Everybody"]

    build_verifier({**spec, "secret": SecretRef("GITHUB_SECRET")}).verify(req, lookup, now)
    assert seen == [SecretRef("GITHUB_SECRET")]


@pytest.mark.parametrize("configured", [[], [""], ["", ""]])
def test_empty_secrets_count_as_not_configured(configured: list[str]) -> None:
    for name in ("github", "standard-v1a"):
        spec, req, now = VECTORS[name]
        with pytest.raises(VerificationFailed, match=r"no (secret|public key) configured"):
            build_verifier(spec).verify(req, lambda value: configured, now)


def test_invalid_base64_secret_fails_closed() -> None:
    spec, req, now = VECTORS["standard-v1"]
    with pytest.raises(VerificationFailed, match="secret"):
        build_verifier({**spec, "secret": "whsec_!!!"}).verify(req, plain_secrets, now)


# ---- header shapes --------------------------------------------------------------------------


GH, SS, WS = "x-hub-signature-256", "stripe-signature", "webhook-signature"
MANY_V1 = ",".join(["v1=" + STRIPE_V1] * 17)


@pytest.mark.parametrize(
    ("name", "header", "value", "reason"),
    [
        ("github", GH, None, "missing header {h}"),
        ("github", GH, "757107ea", "header {h} lacks its prefix"),
        ("github", GH, "sha256=", "no signature in header {h}"),
        ("github", GH, "sha256=zz", "malformed signature in header {h}"),
        ("github", GH, "sha256=" + "ab" * 31, "malformed signature in header {h}"),
        ("github", GH, "sha256=" + "ab" * 31 + " x", "malformed signature in header {h}"),
        ("stripe", SS, f"v1={STRIPE_V1}", "missing timestamp t in signature header"),
        ("stripe", SS, f"t=1,t=2,v1={STRIPE_V1}", "two timestamps in header {h}"),
        ("stripe", SS, "t=1614265330,v0=abc", "no signature in header {h}"),
        ("stripe", SS, f"t=16142653e0,v1={STRIPE_V1}", "timestamp is not a number"),
        ("stripe", SS, f"t=-1614265330,v1={STRIPE_V1}", "timestamp is not a number"),
        ("stripe", SS, f"t=1614265330,{MANY_V1}", "too many signatures in header {h}"),
        ("standard-v1", WS, "v1", "no signature in header {h}"),
        ("standard-v1", WS, "v1,not base64!", "malformed signature in header {h}"),
        ("standard-v1", "webhook-id", None, "missing header {h}"),
        ("standard-v1", "webhook-timestamp", None, "missing header {h}"),
        ("standard-v1", "webhook-timestamp", "\u0661\u0666\u0661", "timestamp is not a number"),
        ("standard-v1a", WS, "v1a,AAAA", "malformed signature in header {h}"),
    ],
)
def test_bad_headers_fail_closed(name: str, header: str, value: str | None, reason: str) -> None:
    spec, req, now = VECTORS[name]
    headers = {k: v for k, v in req.headers.items() if k != header}
    if value is not None:
        headers[header] = value
    bad = WebhookRequest(req.method, req.url, headers, req.query, req.body, req.form)
    assert rejection(spec, bad, now) == reason.format(h=header)


def test_uppercase_hex_is_the_same_signature() -> None:
    spec, req, now = VECTORS["github"]
    headers = {
        "x-hub-signature-256": req.headers["x-hub-signature-256"].upper().replace("SHA", "sha")
    }
    assert accepts(spec, _with_headers(req, headers), now)


def test_signed_header_placeholder() -> None:
    spec = {**GITHUB, "signed": "{header:X-Delivery}.{body}"}
    mac = hmac.new(GITHUB["secret"].encode(), b"d-1.Hello, World!", hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={mac}", "X-Delivery": "d-1"}
    assert accepts(spec, request(b"Hello, World!", headers), 0)
    del headers["X-Delivery"]
    assert rejection(spec, request(b"Hello, World!", headers), 0) == "missing header x-delivery"


def _with_headers(req: WebhookRequest, headers: Mapping[str, str]) -> WebhookRequest:
    return WebhookRequest(req.method, req.url, headers, req.query, req.body, req.form)


# ---- token and none -------------------------------------------------------------------------

GRAPH: dict[str, Any] = {
    "scheme": "token",
    "secret": "client-state-1",
    "body_path": "value[*].clientState",
}
GOOGLE: dict[str, Any] = {
    "scheme": "token",
    "secret": "channel-token",
    "header": "X-Goog-Channel-Token",
}


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        (b'{"value":[{"clientState":"client-state-1"},{"clientState":"client-state-1"}]}', True),
        (b'{"value":[{"clientState":"client-state-1"},{"clientState":"other"}]}', False),
        (b'{"value":[{"clientState":"client-state-1"},{"id":"no state"}]}', False),
        (b'{"value":[]}', False),
        (b'{"value":{"clientState":"client-state-1"}}', False),
        (b'{"value":[{"clientState":1}]}', False),
        (b"[]", False),
        (b"not json", False),
        (b'\xff{"value":[]}', False),
        (b"[" * 100_000, False),
    ],
)
def test_graph_client_state(body: bytes, accepted: bool) -> None:
    assert accepts(GRAPH, request(body, {}), 0) is accepted


def test_token_header_and_rotation() -> None:
    assert accepts(GOOGLE, request(b"", {"X-Goog-Channel-Token": "channel-token"}), 0)
    assert not accepts(GOOGLE, request(b"", {"X-Goog-Channel-Token": "channel-tokeN"}), 0)
    assert not accepts(GOOGLE, request(b"", {}), 0)
    rotated = {**GOOGLE, "secret": ["new-token", "channel-token"]}
    assert accepts(rotated, request(b"", {"X-Goog-Channel-Token": "channel-token"}), 0)


def test_non_ascii_token_compares_as_bytes() -> None:
    spec = {**GOOGLE, "secret": "clé"}
    # Starlette hands over header bytes decoded as latin-1
    on_the_wire = "clé".encode().decode("latin-1")
    assert accepts(spec, request(b"", {"X-Goog-Channel-Token": on_the_wire}), 0)


def test_none_scheme_accepts_everything() -> None:
    assert accepts({"scheme": "none", "reason": "the provider signs nothing"}, request(b"", {}), 0)


# ---- config errors at build time ------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"scheme": "rsa"}, "verify.scheme"),
        ({**GITHUB, "signed": "{nope}"}, "unknown placeholder {nope}"),
        ({**GITHUB, "signed": "{id}.{body}"}, "needs id_header"),
        ({**GITHUB, "signed": "{timestamp}.{body}"}, "needs a 'timestamp'"),
        ({**STRIPE, "signature": {"header": "Stripe-Signature", "format": "pairs"}}, "needs 'key'"),
        ({**SLACK, "timestamp": {"param": "t"}}, "needs format: pairs"),
        ({**SLACK, "timestamp": {"header": "X", "tolerance": "soon"}}, "tolerance"),
        ({**GITHUB, "algorithm": "md5"}, "algorithm"),
        ({**GITHUB, "secret": None}, "secret"),
        ({**GITHUB, "extra": 1}, "unknown key 'extra'"),
        ({"scheme": "token", "secret": "x"}, "either 'header' or 'body_path'"),
        ({"scheme": "token", "secret": "x", "body_path": "a[0].b"}, "body_path"),
        ({"scheme": "none"}, "reason"),
        ({**STANDARD, "signature": {**STANDARD["signature"], "separator": ","}}, "separator"),
        ({**PADDLE, "signature": {**PADDLE["signature"], "assign": ";"}}, "overlaps"),
    ],
)
def test_bad_specs_are_config_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(VerifyConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        build_verifier(spec)


@settings(max_examples=300, deadline=None)
@given(
    key=st.binary(max_size=300),  # shorter than, equal to and longer than every block size
    message=st.binary(max_size=2000),
    algorithm=st.sampled_from(["sha1", "sha256", "sha512"]),
)
def test_the_kept_key_mac_is_hmac(key: bytes, message: bytes, algorithm: str) -> None:
    mac = Mac(key, algorithm)
    assert mac.digest(message) == hmac.digest(key, message, algorithm)
    assert mac.digest(message) == hmac.digest(key, message, algorithm)  # kept state unharmed
