"""Each provider added for issue 17, through a real app built from integrations.d: a request
signed as the provider signs it is accepted; a tampered body, another secret, a stale timestamp
(where the scheme has one) and a missing signature header are rejected with 401.

Every case names its oracle: the vendor's own SDK where PyPI has one with a signing helper,
otherwise the provider's documented algorithm computed independently here with hmac/hashlib
(and, where the provider publishes one, its test vector in test_provider_vectors below).
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.config.examples import run_example
from gateway.config.model import Config, load_config
from tests.helpers import REPO

SHIPPED = REPO / "integrations.d"
Headers = dict[str, str]
# sign(body, secret, timestamp, url) -> the headers the provider would send
Signer = Callable[[bytes, str, int, str], Headers]


@dataclass(frozen=True)
class Case:
    name: str  # the integration
    example: str  # whose body is sent
    secret_env: str  # the secret the gateway is configured with
    header: str  # the signature header, dropped for the missing-header check
    sign: Signer
    oracle: str
    timestamped: bool = False
    # False for a shared token (GitLab): nothing signs the body, so a changed body cannot be
    # told apart; the wrong-secret and missing-header checks are what such a scheme has.
    signs_body: bool = True
    secret: str = "whsec_c2hhcmVkLXNlY3JldC1vZi10aGUtcHJvdmlkZXI="
    extra: Headers = field(default_factory=dict)


def hex_hmac(algorithm: str, key: bytes, message: bytes) -> str:
    return hmac.new(key, message, algorithm).hexdigest()


def b64_hmac(algorithm: str, key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, algorithm).digest()).decode()


# ---- signers --------------------------------------------------------------------------------


def github_sign(body: bytes, secret: str, ts: int, url: str) -> Headers:
    return {"X-Hub-Signature-256": "sha256=" + hex_hmac("sha256", secret.encode(), body)}


def gitlab_sign(body: bytes, secret: str, ts: int, url: str) -> Headers:
    return {"X-Gitlab-Token": secret}  # no signature: the token itself, as GitLab sends it


def shopify_sign(body: bytes, secret: str, ts: int, url: str) -> Headers:
    return {"X-Shopify-Hmac-Sha256": b64_hmac("sha256", secret.encode(), body)}


def paddle_sign(body: bytes, secret: str, ts: int, url: str) -> Headers:
    digest = hex_hmac("sha256", secret.encode(), f"{ts}:".encode() + body)
    return {"Paddle-Signature": f"ts={ts};h1={digest}"}


def lemonsqueezy_sign(body: bytes, secret: str, ts: int, url: str) -> Headers:
    return {"X-Signature": hex_hmac("sha256", secret.encode(), body)}


CASES = [
    Case(
        "github", "push", "GITHUB_WEBHOOK_SECRET", "X-Hub-Signature-256", github_sign,
        "hmac/hashlib per docs.github.com (validating-webhook-deliveries); the docs' vector below",
    ),
    Case(
        "gitlab", "push", "GITLAB_WEBHOOK_TOKEN", "X-Gitlab-Token", gitlab_sign,
        "the token as docs.gitlab.com (webhooks, secret token) says GitLab sends it",
        signs_body=False,
    ),
    Case(
        "shopify", "order_created", "SHOPIFY_WEBHOOK_SECRET", "X-Shopify-Hmac-Sha256",
        shopify_sign, "hmac/hashlib per shopify.dev (webhooks, verify): base64 HMAC-SHA256 of the body",
    ),
    Case(
        "paddle", "transaction_completed", "PADDLE_WEBHOOK_SECRET", "Paddle-Signature",
        paddle_sign, "hmac/hashlib per developer.paddle.com (signature-verification); the "
        "paddle-python-sdk test vector below", timestamped=True,
    ),
    Case(
        "lemonsqueezy", "order_created", "LEMONSQUEEZY_WEBHOOK_SECRET", "X-Signature",
        lemonsqueezy_sign, "hmac/hashlib per docs.lemonsqueezy.com (signing-requests)",
    ),
]  # fmt: skip

ENV: dict[str, str] = {case.secret_env: case.secret for case in CASES}
CONFIG: Config = load_config(SHIPPED, ENV)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from gateway.config.settings import Settings
    from gateway.store import SQLiteStore
    from gateway.web.application import create_app

    db = tmp_path_factory.mktemp("providers") / "gateway.db"
    app = create_app(CONFIG, SQLiteStore(f"sqlite:///{db}"), Settings.from_env(ENV), ENV)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _request(case: Case) -> tuple[str, bytes, Headers]:
    integration = CONFIG.integrations[case.name]
    example = integration.example(case.example)
    assert example is not None, case.example
    url = f"http://testserver/webhooks/{case.name}"
    body = json.dumps(example["body"], separators=(",", ":")).encode()
    headers = {**dict(example.get("headers") or {}), **case.extra}
    return url, body, headers


def _post(client: TestClient, url: str, body: bytes, headers: Headers) -> Any:
    return client.post(url, content=body, headers=headers)


IDS = [case.name for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_genuine_request_is_accepted(client: TestClient, case: Case) -> None:
    url, body, headers = _request(case)
    signed = case.sign(body, case.secret, int(time.time()), url)
    response = _post(client, url, body, {**headers, **signed})
    assert response.status_code == 200, response.text


SIGNED = [case for case in CASES if case.signs_body]


def test_only_token_schemes_leave_the_body_unsigned() -> None:
    for case in CASES:
        webhook = CONFIG.integrations[case.name].webhook
        assert webhook is not None
        scheme = webhook.verify_spec["scheme"]
        assert case.signs_body == (scheme != "token"), case.name


@pytest.mark.parametrize("case", SIGNED, ids=[case.name for case in SIGNED])
def test_tampered_body_is_rejected(client: TestClient, case: Case) -> None:
    url, body, headers = _request(case)
    signed = case.sign(body, case.secret, int(time.time()), url)
    tampered = body[:-2] + bytes([body[-2] ^ 1]) + body[-1:]
    response = _post(client, url, tampered, {**headers, **signed})
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrong_secret_is_rejected(client: TestClient, case: Case) -> None:
    url, body, headers = _request(case)
    other = "whsec_" + base64.b64encode(b"another secret, not the configured one").decode()
    signed = case.sign(body, other, int(time.time()), url)
    response = _post(client, url, body, {**headers, **signed})
    assert response.status_code == 401, response.text


TIMED = [case for case in CASES if case.timestamped]


@pytest.mark.parametrize("case", TIMED, ids=[case.name for case in TIMED])
def test_stale_timestamp_is_rejected(client: TestClient, case: Case) -> None:
    url, body, headers = _request(case)
    signed = case.sign(body, case.secret, int(time.time()) - 3600, url)
    response = _post(client, url, body, {**headers, **signed})
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_missing_signature_header_is_rejected(client: TestClient, case: Case) -> None:
    url, body, headers = _request(case)
    signed = case.sign(body, case.secret, int(time.time()), url)
    kept = {k: v for k, v in {**headers, **signed}.items() if k.lower() != case.header.lower()}
    assert len(kept) < len({**headers, **signed})
    response = _post(client, url, body, kept)
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_signed_example_emits_its_normalised_event(case: Case) -> None:
    integration = CONFIG.integrations[case.name]
    assert integration.webhook is not None
    declared = integration.example(case.example)
    assert declared is not None
    result = run_example(integration.webhook.pipeline, case.name, declared)
    assert result.failures == []
    assert result.events, f"{case.name} {case.example} emits nothing"


def test_every_case_is_a_shipped_provider_and_none_is_left_out() -> None:
    seed = {
        "retell", "calcom", "stripe", "twilio", "sendgrid", "whatsapp", "google_calendar",
        "outlook", "segment", "sentry",
    }  # fmt: skip
    assert {case.name for case in CASES} == set(CONFIG.integrations) - seed
