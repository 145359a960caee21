"""The JWT-signing providers (scheme: jwt) through a real app built from integrations.d.

Vonage and Netlify sign HS256 with a shared secret; Plaid signs ES256 with a key fetched by the
token's kid from its API. For each: a request signed as the provider signs it is accepted; a
tampered body (body-hash mismatch), another secret or key, a stale ``iat`` (where the token
has one), a missing header, ``alg: none`` and a token of the other key family are refused.

Oracles: Vonage's own SDK (vonage-jwt's verify_signature) agrees on every Vonage token; its
claims follow developer.vonage.com (getting-started/concepts/webhooks, "Decoding signed
webhooks": HS256 with the signature secret, iat, iss "Vonage", payload_hash = hex SHA-256 of
the body). Netlify's token follows docs.netlify.com (site-deploys/deploy-notifications,
"Payload signature": HS256 with the JWS secret, iss "netlify", sha256 = hex SHA-256 of the
body); Netlify has no SDK on PyPI. Plaid's is signed with PyJWT per
plaid.com/docs/api/webhooks/webhook-verification (see tests/helpers/jwt_keys.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient
from vonage_jwt.verify_jwt import verify_signature

from gateway.config.examples import run_example
from gateway.config.model import Config, load_config
from gateway.config.signing import signed_example
from gateway.credentials.secrets import SecretLookup
from tests.helpers import REPO
from tests.helpers.app import LoopbackOnly
from tests.helpers.jwt_keys import PlaidKeyEndpoint, plaid_token, public_jwk, simulated_kid

SHIPPED = REPO / "integrations.d"
Headers = dict[str, str]

VONAGE_SECRET = "V0nageSignatureSecret-0123456789abcdef"
NETLIFY_SECRET = "netlify-jws-secret"  # people choose short ones: accepted all the same
PLAID_KEY = ec.generate_private_key(ec.SECP256R1())
PLAID_KID = "bfbd5111-8e33-4643-8ced-b2e642a72f3c"
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
ENV = {
    "VONAGE_SIGNATURE_SECRET": VONAGE_SECRET,
    "NETLIFY_JWS_SECRET": NETLIFY_SECRET,
    "PLAID_CLIENT_ID": "5f2b6c8e9a1d4e0012a3b4c5",
    "PLAID_SECRET": "plaid-api-secret-0123456789",
}
CONFIG: Config = load_config(SHIPPED, ENV)
PLAID_PEM = PLAID_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)


def vonage_sign(body: bytes, credential: Any, iat: int) -> Headers:
    claims = {
        "iat": iat,
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
        "api_key": "a1b2c3d",
        "application_id": "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",
    }
    return {"Authorization": "Bearer " + jwt.encode(claims, credential, algorithm="HS256")}


def netlify_sign(body: bytes, credential: Any, iat: int) -> Headers:
    claims = {"iss": "netlify", "sha256": hashlib.sha256(body).hexdigest()}
    with warnings.catch_warnings():  # Netlify lets people pick short secrets
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        token = jwt.encode(claims, credential, algorithm="HS256")
    return {"X-Webhook-Signature": token}


def plaid_sign(body: bytes, credential: Any, iat: int) -> Headers:
    return {"Plaid-Verification": plaid_token(body, credential, PLAID_KID, iat)}


@dataclass(frozen=True)
class Case:
    name: str
    example: str
    header: str
    sign: Callable[[bytes, Any, int], Headers]
    good: Any  # what the provider signs with
    wrong: Any  # another secret or key
    timestamped: bool  # the token carries iat


CASES = [
    Case("vonage", "delivered", "Authorization", vonage_sign, VONAGE_SECRET, "another-secret-0123456789abcdef0", True),
    Case("netlify", "deploy_succeeded", "X-Webhook-Signature", netlify_sign, NETLIFY_SECRET, "another-secret-0123456789abcdef0", False),
    Case("plaid", "sync_updates_available", "Plaid-Verification", plaid_sign, PLAID_KEY, OTHER_KEY, True),
]  # fmt: skip
IDS = [case.name for case in CASES]
JWT_PROVIDERS = {case.name for case in CASES}


def _app(transport: PlaidKeyEndpoint, tmp_path: Any) -> Iterator[TestClient]:
    from gateway.config.settings import Settings
    from gateway.store import SQLiteStore
    from gateway.web.application import create_app

    app = create_app(
        CONFIG,
        SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}"),
        Settings.from_env(ENV),
        ENV,
        transport=transport,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def keys() -> PlaidKeyEndpoint:
    return PlaidKeyEndpoint({PLAID_KID: PLAID_KEY, simulated_kid(PLAID_PEM): PLAID_KEY})


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, keys: PlaidKeyEndpoint) -> Iterator[Any]:
    keys.inner = LoopbackOnly()
    yield from _app(keys, tmp_path_factory.mktemp("jwt"))


def _body(case: Case) -> bytes:
    example = CONFIG.integrations[case.name].example(case.example)
    assert example is not None
    return json.dumps(example["body"], separators=(",", ":")).encode()


def _post(client: TestClient, case: Case, body: bytes, headers: Headers) -> Any:
    headers = {"Content-Type": "application/json", **headers}
    return client.post(f"/webhooks/{case.name}", content=body, headers=headers)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _header_value(case: Case, token: str) -> Headers:
    return {case.header: ("Bearer " if case.name == "vonage" else "") + token}


def _claims(case: Case, body: bytes, iat: int) -> dict[str, Any]:
    """The claims of a genuine token (read back from one)."""
    value = case.sign(body, case.good, iat)[case.header].removeprefix("Bearer ")
    claims: dict[str, Any] = jwt.decode(value, options={"verify_signature": False})
    return claims


def test_every_shipped_jwt_provider_has_a_case() -> None:
    shipped = {
        name
        for name, integration in CONFIG.integrations.items()
        if integration.webhook is not None and integration.webhook.verify_spec["scheme"] == "jwt"
    }
    assert shipped == JWT_PROVIDERS


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_genuine_request_is_accepted(client: TestClient, case: Case) -> None:
    body = _body(case)
    response = _post(client, case, body, case.sign(body, case.good, int(time.time())))
    assert response.status_code == 200, response.text
    assert response.json()["status"] in ("accepted", "duplicate")


def test_vonage_sdk_agrees_on_the_tokens() -> None:
    body = _body(CASES[0])
    good = vonage_sign(body, VONAGE_SECRET, int(time.time()))["Authorization"][7:]
    assert verify_signature(good, VONAGE_SECRET)
    assert not verify_signature(good, "another-secret-0123456789abcdef0")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tampered_body_is_rejected(client: TestClient, case: Case) -> None:
    body = _body(case)
    signed = case.sign(body, case.good, int(time.time()))
    tampered = body[:-2] + bytes([body[-2] ^ 1]) + body[-1:]
    response = _post(client, case, tampered, signed)
    assert response.status_code == 401, response.text
    # the same token, the body it hashes: accepted (the hash, not the token, failed above)
    assert _post(client, case, body, signed).status_code == 200


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrong_secret_or_key_is_rejected(client: TestClient, case: Case) -> None:
    body = _body(case)
    signed = case.sign(body, case.wrong, int(time.time()))
    assert _post(client, case, body, signed).status_code == 401


TIMED = [case for case in CASES if case.timestamped]


@pytest.mark.parametrize("case", TIMED, ids=[case.name for case in TIMED])
def test_stale_iat_is_rejected(client: TestClient, case: Case) -> None:
    body = _body(case)
    now = int(time.time())
    assert _post(client, case, body, case.sign(body, case.good, now - 3600)).status_code == 401
    assert _post(client, case, body, case.sign(body, case.good, now + 3600)).status_code == 401
    assert _post(client, case, body, case.sign(body, case.good, now - 240)).status_code == 200


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_missing_header_is_rejected(client: TestClient, case: Case) -> None:
    body = _body(case)
    assert _post(client, case, body, {}).status_code == 401
    assert _post(client, case, body, {case.header: ""}).status_code == 401


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_alg_none_is_rejected(client: TestClient, case: Case) -> None:
    body = _body(case)
    claims = _claims(case, body, int(time.time()))
    header = {"alg": "none", "typ": "JWT", "kid": PLAID_KID}
    unsigned = f"{_b64(header)}.{_b64(claims)}."
    assert _post(client, case, body, _header_value(case, unsigned)).status_code == 401
    # the signature of a genuine token kept, alg switched to none: refused too
    genuine = case.sign(body, case.good, int(time.time()))[case.header].removeprefix("Bearer ")
    switched = f"{_b64(header)}.{genuine.split('.', 1)[1]}"
    assert _post(client, case, body, _header_value(case, switched)).status_code == 401


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_token_of_the_other_key_family_is_rejected(client: TestClient, case: Case) -> None:
    body = _body(case)
    claims = _claims(case, body, int(time.time()))
    if case.name == "plaid":
        # alg confusion: HS256 keyed with the public key as Plaid serves it (JWK text, PEM)
        public = PLAID_KEY.public_key()
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for secret in (
            json.dumps(public_jwk(PLAID_KEY, PLAID_KID)).encode(),
            pem,
            ENV["PLAID_SECRET"].encode(),
        ):
            forged = _hs256(claims, secret, PLAID_KID)
            assert _post(client, case, body, _header_value(case, forged)).status_code == 401
    else:
        # an ES256 token (valid in itself) where an HS256 secret is configured
        forged = jwt.encode(claims, OTHER_KEY, algorithm="ES256", headers={"kid": PLAID_KID})
        assert _post(client, case, body, _header_value(case, forged)).status_code == 401
        other_hs = "HS512"  # the same family, an algorithm the YAML does not list
        token = _hs(claims, case.good.encode(), other_hs)
        assert _post(client, case, body, _header_value(case, token)).status_code == 401


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    return _hs(claims, secret, "HS256", kid)


def _hs(claims: dict[str, Any], secret: bytes, alg: str, kid: str | None = None) -> str:
    """A token MACed by hand: PyJWT refuses to use a public key as an HMAC secret."""
    import hmac

    header = {"alg": alg, "typ": "JWT", **({"kid": kid} if kid else {})}
    signing = f"{_b64(header)}.{_b64(claims)}"
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    mac = hmac.new(secret, signing.encode(), digest).digest()
    return f"{signing}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_examples_emit_their_normalised_events(case: Case) -> None:
    integration = CONFIG.integrations[case.name]
    assert integration.webhook is not None
    for name, example in integration.examples.items():
        result = run_example(integration.webhook.pipeline, case.name, example)
        assert result.failures == [], name
        assert result.events, f"{case.name} {name} emits nothing"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_simulate_signs_what_the_gateway_accepts(client: TestClient, case: Case) -> None:
    integration = CONFIG.integrations[case.name]
    for name, example in integration.examples.items():
        request = signed_example(
            integration,
            example,
            f"http://testserver/webhooks/{case.name}",
            SecretLookup(case.name, {}, ENV),
            private_key=PLAID_PEM,
        )
        response = client.request(
            request.method, request.url, headers=request.headers, content=request.body
        )
        assert response.status_code == 200, (name, response.text)


# ---- Plaid's keys: fetched through the outbound engine, cached, failing closed ---------------


@pytest.fixture
def fresh(tmp_path: Any) -> Iterator[tuple[TestClient, PlaidKeyEndpoint]]:
    """An app of its own (an empty key cache) and the key endpoint it fetches from."""
    endpoint = PlaidKeyEndpoint({PLAID_KID: PLAID_KEY}, LoopbackOnly())
    for client in _app(endpoint, tmp_path):
        yield client, endpoint


PLAID = CASES[2]


def _plaid(client: TestClient, kid: str, key: ec.EllipticCurvePrivateKey, note: str) -> int:
    body = json.dumps({"webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE",
                       "item_id": f"item-{note}", "environment": "sandbox"}).encode()  # fmt: skip
    token = plaid_token(body, key, kid, int(time.time()))
    status: int = _post(client, PLAID, body, {"Plaid-Verification": token}).status_code
    return status


def test_the_key_is_fetched_once_with_the_credentials_and_then_cached(
    fresh: tuple[TestClient, PlaidKeyEndpoint],
) -> None:
    client, endpoint = fresh
    assert _plaid(client, PLAID_KID, PLAID_KEY, "one") == 200
    assert _plaid(client, PLAID_KID, PLAID_KEY, "two") == 200
    assert endpoint.calls == [
        {"key_id": PLAID_KID, "client_id": ENV["PLAID_CLIENT_ID"], "secret": ENV["PLAID_SECRET"]}
    ]


def test_an_unknown_kid_is_fetched_once_then_refused(
    fresh: tuple[TestClient, PlaidKeyEndpoint],
) -> None:
    client, endpoint = fresh
    assert _plaid(client, "no-such-kid", PLAID_KEY, "one") == 401
    assert _plaid(client, "no-such-kid", PLAID_KEY, "two") == 401
    assert [call["key_id"] for call in endpoint.calls] == ["no-such-kid"]
    # a key Plaid rotates in is fetched when first named, beside the cached one
    endpoint.keys["rotated-kid"] = OTHER_KEY
    assert _plaid(client, PLAID_KID, PLAID_KEY, "three") == 200
    assert _plaid(client, "rotated-kid", OTHER_KEY, "four") == 200
    assert _plaid(client, "rotated-kid", PLAID_KEY, "five") == 401  # signed by another key
    assert [call["key_id"] for call in endpoint.calls] == ["no-such-kid", PLAID_KID, "rotated-kid"]


def test_a_key_plaid_has_expired_is_not_used(
    fresh: tuple[TestClient, PlaidKeyEndpoint],
) -> None:
    client, endpoint = fresh
    endpoint.expired.add(PLAID_KID)
    assert _plaid(client, PLAID_KID, PLAID_KEY, "one") == 401
    assert len(endpoint.calls) == 1


def test_a_failing_key_endpoint_fails_closed_and_is_asked_again(
    fresh: tuple[TestClient, PlaidKeyEndpoint],
) -> None:
    client, endpoint = fresh
    endpoint.failing = True
    assert _plaid(client, PLAID_KID, PLAID_KEY, "one") == 401
    endpoint.failing = False
    assert _plaid(client, PLAID_KID, PLAID_KEY, "two") == 200
    assert len(endpoint.calls) == 2


def test_the_sandbox_serves_the_key_of_the_shipped_sandbox_key(tmp_path: Any) -> None:
    """`gateway simulate plaid ... --private-key sandbox/plaid-webhook-key.pem` against a
    gateway whose PLAID_BASE_URL is the sandbox: the sandbox's key endpoint verifies it."""
    import httpx

    from gateway.config.settings import Settings
    from gateway.sandbox.app import create_sandbox_app
    from gateway.sandbox.loading import load_rules
    from gateway.store import SQLiteStore
    from gateway.web.application import create_app

    sandbox = create_sandbox_app(load_rules(REPO / "sandbox" / "responses.yaml"))
    env = {**ENV, "PLAID_BASE_URL": "http://sandbox.test/plaid"}
    config = load_config(SHIPPED, env)
    app = create_app(
        config,
        SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}"),
        Settings.from_env(env),
        env,
        transport=httpx.ASGITransport(app=sandbox),
    )
    integration = config.integrations["plaid"]
    pem = (REPO / "sandbox" / "plaid-webhook-key.pem").read_bytes()
    with TestClient(app, raise_server_exceptions=False) as client:
        for key, expected in ((pem, 200), (PLAID_PEM, 401)):
            example = integration.example("item_login_required")
            assert example is not None
            request = signed_example(
                integration,
                example,
                "http://testserver/webhooks/plaid",
                SecretLookup("plaid", {}, env),
                private_key=key,
            )
            response = client.request(
                request.method, request.url, headers=request.headers, content=request.body
            )
            assert response.status_code == expected, response.text
