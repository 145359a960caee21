"""Authentication of outbound calls, for every auth type of the schema."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from cryptography.fernet import Fernet

from gateway.config.envsubst import SecretRef
from gateway.config.model import Config, build_config
from gateway.credentials.secrets import Cipher, SecretSource
from gateway.outbound import (
    MemoryTokenStore,
    MissingSecretError,
    OutboundClient,
    PermanentError,
    RetryableError,
)

Handler = Callable[[httpx.Request], httpx.Response]
TOKEN_URL = "https://login.example.test/oauth2/token"


def config(auth: Mapping[str, Any] | None) -> Config:
    api: dict[str, Any] = {
        "base_url": "https://api.example.test",
        "endpoints": {"me": {"method": "GET", "path": "/me"}},
    }
    if auth is not None:
        api["auth"] = dict(auth)
    spec = {"kind": "integration", "name": "acme", "api": api}
    return build_config([("integration", "acme.yaml", spec)], Path("templates"), {})


def secret_auth(kind: str, **secret_fields: str) -> dict[str, Any]:
    """An auth mapping whose fields are ${secret:NAME} references, as the YAML loads them."""
    return {"type": kind, **{k: SecretRef(v) for k, v in secret_fields.items()}}


class WallClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Provider:
    """A token endpoint and an API in one MockTransport, recording every request."""

    def __init__(self, api: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.token_answers: list[httpx.Response] = []
        self.issued = 0
        self.valid: set[str] = set()
        self.api = api

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if str(request.url) == TOKEN_URL:
            if self.token_answers:
                return self.token_answers.pop(0)
            self.issued += 1
            token = f"access-{self.issued}"
            self.valid.add(token)
            answer = {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
            if dict(parse_qsl(request.content.decode())).get("grant_type") == "refresh_token":
                answer["refresh_token"] = f"refresh-{self.issued}"
            return httpx.Response(200, json=answer)
        if self.api is not None:
            return self.api(request)
        authorization = request.headers.get("authorization", "")
        if authorization.startswith("Bearer access-") and authorization[7:] not in self.valid:
            return httpx.Response(401, json={"error": "invalid_token"})
        return httpx.Response(200, json={"ok": True})

    def token_forms(self) -> list[dict[str, str]]:
        return [
            dict(parse_qsl(r.content.decode())) for r in self.requests if str(r.url) == TOKEN_URL
        ]

    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if str(r.url) != TOKEN_URL]


def client(
    auth: Mapping[str, Any] | None,
    provider: Provider,
    environ: Mapping[str, str],
    *,
    secrets: SecretSource | None = None,
    tokens: MemoryTokenStore | None = None,
    wall: WallClock | None = None,
) -> OutboundClient:
    return OutboundClient(
        config(auth),
        secrets or SecretSource(environ),
        tokens if tokens is not None else MemoryTokenStore(),
        transport=httpx.MockTransport(provider),
        wall_clock=wall or WallClock(),
    )


def run_calls(outbound: OutboundClient, count: int = 1, tenant: str = "default") -> list[Any]:
    async def calls() -> list[Any]:
        try:
            return [await outbound.call("acme", "me", tenant=tenant) for _ in range(count)]
        finally:
            await outbound.aclose()

    return asyncio.run(calls())


def test_none_sends_no_credentials() -> None:
    provider = Provider()
    run_calls(client({"type": "none"}, provider, {}))
    run_calls(client(None, provider, {}))
    assert all("authorization" not in r.headers for r in provider.requests)


def test_bearer_from_the_environment() -> None:
    provider = Provider()
    run_calls(
        client({"type": "bearer", "token": "${secret:ACME_KEY}"}, provider, {})
        if False
        else client(secret_auth("bearer", token="ACME_KEY"), provider, {"ACME_KEY": "sk_1"})
    )
    assert provider.requests[0].headers["authorization"] == "Bearer sk_1"


class CredentialRows:
    """The one method of `Store` that SecretSource reads."""

    def __init__(self, cipher: Cipher, rows: dict[str, list[tuple[str, str, str]]]) -> None:
        self.cipher = cipher
        self.rows = rows

    async def credential_tokens(self, tenant: str) -> list[tuple[str, str, bytes]]:
        return [(i, n, self.cipher.encrypt(v)) for i, n, v in self.rows.get(tenant, [])]


def test_a_tenants_stored_credential_wins_over_the_environment() -> None:
    cipher = Cipher([Fernet.generate_key().decode()])
    rows = CredentialRows(cipher, {"demo": [("acme", "ACME_KEY", "sk_demo")]})
    secrets = SecretSource({"ACME_KEY": "sk_env"}, rows, cipher)  # type: ignore[arg-type]
    provider = Provider()
    outbound = client(secret_auth("bearer", token="ACME_KEY"), provider, {}, secrets=secrets)

    async def calls() -> None:
        await outbound.call("acme", "me", tenant="demo")
        await outbound.call("acme", "me", tenant="other")  # falls back to the environment
        await outbound.aclose()

    asyncio.run(calls())
    assert [r.headers["authorization"] for r in provider.requests] == [
        "Bearer sk_demo",
        "Bearer sk_env",
    ]


def test_basic_with_and_without_password() -> None:
    provider = Provider()
    auth = secret_auth("basic", username="SID", password="AUTH_TOKEN")
    run_calls(client(auth, provider, {"SID": "AC123", "AUTH_TOKEN": "tok"}))
    run_calls(client({"type": "basic", "username": "plain-user"}, provider, {}))
    expected = [base64.b64encode(b"AC123:tok").decode(), base64.b64encode(b"plain-user:").decode()]
    assert [r.headers["authorization"] for r in provider.requests] == [
        f"Basic {e}" for e in expected
    ]


def test_api_key_in_a_header_with_prefix_and_in_the_query() -> None:
    provider = Provider()
    header = {
        **secret_auth("api_key", key="KEY"),
        "name": "X-Api-Key",
        "in": "header",
        "prefix": "Token ",
    }
    query = {**secret_auth("api_key", key="KEY"), "name": "api_key", "in": "query"}
    run_calls(client(header, provider, {"KEY": "k-1"}))
    run_calls(client(query, provider, {"KEY": "k/2"}))
    assert provider.requests[0].headers["x-api-key"] == "Token k-1"
    assert provider.requests[1].url.params["api_key"] == "k/2"
    assert "authorization" not in provider.requests[1].headers


def client_credentials(**extra: Any) -> dict[str, Any]:
    return {
        **secret_auth("oauth2_client_credentials", client_secret="CLIENT_SECRET"),
        "token_url": TOKEN_URL,
        "client_id": "client-1",
        "scope": "https://graph.example.test/.default",
        **extra,
    }


def test_client_credentials_token_is_cached_per_tenant_until_near_expiry() -> None:
    provider = Provider()
    wall = WallClock()
    outbound = client(client_credentials(), provider, {"CLIENT_SECRET": "s3cr3t"}, wall=wall)

    async def calls() -> None:
        await asyncio.gather(*(outbound.call("acme", "me", tenant="demo") for _ in range(5)))
        await outbound.call("acme", "me", tenant="other")  # another tenant: its own token
        wall.now += 3600 - 61
        await outbound.call("acme", "me", tenant="demo")  # still valid
        wall.now += 2  # within a minute of expiry: fetch a new one first
        await outbound.call("acme", "me", tenant="demo")
        await outbound.aclose()

    asyncio.run(calls())
    assert (
        provider.token_forms()
        == [
            {
                "grant_type": "client_credentials",
                "scope": "https://graph.example.test/.default",
                "client_id": "client-1",
                "client_secret": "s3cr3t",
            }
        ]
        * 3
    )
    assert [r.headers["authorization"] for r in provider.api_requests()] == [
        "Bearer access-1"
    ] * 5 + ["Bearer access-2", "Bearer access-1", "Bearer access-3"]


def test_client_credentials_with_basic_client_auth() -> None:
    provider = Provider()
    run_calls(client(client_credentials(client_auth="basic"), provider, {"CLIENT_SECRET": "a:b"}))
    token_request = provider.requests[0]
    assert (
        token_request.headers["authorization"]
        == "Basic " + base64.b64encode(b"client-1:a%3Ab").decode()
    )
    assert provider.token_forms()[0] == {
        "grant_type": "client_credentials",
        "scope": "https://graph.example.test/.default",
    }


def test_a_401_fetches_a_new_token_once_and_retries() -> None:
    provider = Provider()
    outbound = client(client_credentials(), provider, {"CLIENT_SECRET": "s3cr3t"})

    async def calls() -> None:
        await outbound.call("acme", "me", tenant="demo")
        provider.valid.clear()  # the provider revoked access-1
        result = await outbound.call("acme", "me", tenant="demo")
        assert result.status == 200
        await outbound.aclose()

    asyncio.run(calls())
    assert [r.headers["authorization"] for r in provider.api_requests()] == [
        "Bearer access-1",
        "Bearer access-1",
        "Bearer access-2",
    ]


def test_a_second_401_is_permanent() -> None:
    provider = Provider(api=lambda r: httpx.Response(401, json={"error": "nope"}))
    outbound = client(client_credentials(), provider, {"CLIENT_SECRET": "s3cr3t"})
    with pytest.raises(PermanentError) as caught:
        run_calls(outbound)
    assert caught.value.status == 401
    assert len(provider.api_requests()) == 2 and len(provider.token_forms()) == 2


def test_static_credentials_are_not_retried_on_401() -> None:
    provider = Provider(api=lambda r: httpx.Response(401, text="bad key"))
    with pytest.raises(PermanentError, match="HTTP 401"):
        run_calls(client(secret_auth("bearer", token="K"), provider, {"K": "sk_x"}))
    assert len(provider.requests) == 1


def test_token_endpoint_errors() -> None:
    provider = Provider()
    provider.token_answers.append(
        httpx.Response(400, json={"error": "invalid_client", "error_description": "bad secret"})
    )
    outbound = client(client_credentials(), provider, {"CLIENT_SECRET": "s3cr3t"})
    with pytest.raises(PermanentError, match=r"invalid_client \(bad secret\)") as caught:
        run_calls(outbound)
    assert caught.value.status == 400
    assert not provider.api_requests()

    provider = Provider()
    provider.token_answers.append(httpx.Response(503, headers={"Retry-After": "9"}))
    with pytest.raises(RetryableError) as retry:
        run_calls(client(client_credentials(), provider, {"CLIENT_SECRET": "s3cr3t"}))
    assert (retry.value.status, retry.value.retry_after) == (503, 9.0)

    provider = Provider()
    provider.token_answers.append(httpx.Response(200, json={"token_type": "Bearer"}))
    with pytest.raises(PermanentError, match="has no access_token"):
        run_calls(client(client_credentials(), provider, {"CLIENT_SECRET": "s3cr3t"}))

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    outbound = OutboundClient(
        config(client_credentials()),
        SecretSource({"CLIENT_SECRET": "s3cr3t"}),
        MemoryTokenStore(),
        transport=httpx.MockTransport(unreachable),
    )
    with pytest.raises(RetryableError, match="connection refused") as network:
        run_calls(outbound)
    assert network.value.kind == "network"


def refresh_auth(**extra: Any) -> dict[str, Any]:
    return {
        **secret_auth(
            "oauth2_refresh_token", client_secret="GOOGLE_CLIENT_SECRET", refresh_token="REFRESH"
        ),
        "token_url": TOKEN_URL,
        "client_id": "google-client",
        "scope": "calendar.events",
        **extra,
    }


def test_refresh_token_rotation_is_stored_back_per_tenant() -> None:
    provider = Provider()
    tokens = MemoryTokenStore()
    wall = WallClock()
    env = {"GOOGLE_CLIENT_SECRET": "gsecret", "REFRESH": "refresh-initial"}
    outbound = client(refresh_auth(), provider, env, tokens=tokens, wall=wall)

    async def calls() -> dict[str, Any] | None:
        await outbound.call("acme", "me", tenant="demo")
        await outbound.call("acme", "me", tenant="demo")  # cached access token
        wall.now += 3600
        await outbound.call("acme", "me", tenant="demo")  # expired: refresh with the rotated one
        await outbound.aclose()
        return await tokens.get("acme", "demo")

    stored = asyncio.run(calls())
    forms = provider.token_forms()
    assert [f["refresh_token"] for f in forms] == ["refresh-initial", "refresh-1"]
    assert forms[0] == {
        "grant_type": "refresh_token",
        "refresh_token": "refresh-initial",
        "scope": "calendar.events",
        "client_id": "google-client",
        "client_secret": "gsecret",
    }
    assert stored is not None
    assert stored["refresh_token"] == "refresh-2" and stored["access_token"] == "access-2"
    assert stored["expires_at"] == pytest.approx(wall.now + 3600 - 60)
    assert [r.headers["authorization"] for r in provider.api_requests()] == [
        "Bearer access-1",
        "Bearer access-1",
        "Bearer access-2",
    ]


def test_refresh_token_state_is_shared_through_the_store() -> None:
    provider = Provider()
    tokens = MemoryTokenStore()
    env = {"GOOGLE_CLIENT_SECRET": "gsecret", "REFRESH": "refresh-initial"}
    first = client(refresh_auth(), provider, env, tokens=tokens)
    second = client(refresh_auth(), provider, env, tokens=tokens)  # another replica

    async def calls() -> None:
        await first.call("acme", "me", tenant="demo")
        await second.call("acme", "me", tenant="demo")  # reads access-1 from the store
        provider.valid.clear()
        await second.call("acme", "me", tenant="demo")  # 401: refresh with refresh-1
        await first.aclose()
        await second.aclose()

    asyncio.run(calls())
    assert [f["refresh_token"] for f in provider.token_forms()] == ["refresh-initial", "refresh-1"]


def test_a_newly_configured_refresh_token_takes_over_from_the_stored_one() -> None:
    provider = Provider()
    tokens = MemoryTokenStore()
    run_calls(
        client(
            refresh_auth(),
            provider,
            {"GOOGLE_CLIENT_SECRET": "g", "REFRESH": "old-grant"},
            tokens=tokens,
        )
    )
    provider.valid.clear()
    run_calls(
        client(
            refresh_auth(),
            provider,
            {"GOOGLE_CLIENT_SECRET": "g", "REFRESH": "new-grant"},
            tokens=tokens,
        )
    )
    assert [f["refresh_token"] for f in provider.token_forms()] == ["old-grant", "new-grant"]


def test_refresh_token_only_in_the_store_is_enough() -> None:
    provider = Provider()
    tokens = MemoryTokenStore()
    asyncio.run(tokens.put("acme", "demo", {"refresh_token": "seeded", "initial_sha256": None}))
    outbound = client(refresh_auth(), provider, {"GOOGLE_CLIENT_SECRET": "g"}, tokens=tokens)
    run_calls(outbound, tenant="demo")
    assert provider.token_forms()[0]["refresh_token"] == "seeded"


def test_revoked_refresh_token_is_permanent() -> None:
    provider = Provider()
    provider.token_answers.append(
        httpx.Response(400, json={"error": "invalid_grant", "error_description": "revoked"})
    )
    env = {"GOOGLE_CLIENT_SECRET": "gsecret", "REFRESH": "refresh-initial"}
    with pytest.raises(
        PermanentError, match="refresh token request failed: HTTP 400: invalid_grant"
    ):
        run_calls(client(refresh_auth(), provider, env))


@pytest.mark.parametrize(
    ("auth", "missing"),
    [
        (secret_auth("bearer", token="STRIPE_API_KEY"), "STRIPE_API_KEY"),
        (secret_auth("basic", username="TWILIO_ACCOUNT_SID"), "TWILIO_ACCOUNT_SID"),
        (
            {**secret_auth("api_key", key="SEGMENT_WRITE_KEY"), "name": "k", "in": "query"},
            "SEGMENT_WRITE_KEY",
        ),
        (client_credentials(), "CLIENT_SECRET"),
        (refresh_auth(), "REFRESH"),
    ],
)
def test_a_missing_secret_is_a_clear_permanent_error(auth: dict[str, Any], missing: str) -> None:
    provider = Provider()
    env = {"GOOGLE_CLIENT_SECRET": "present"} if missing == "REFRESH" else {}
    with pytest.raises(MissingSecretError) as caught:
        run_calls(client(auth, provider, env), tenant="demo")
    message = str(caught.value)
    assert f"secret {missing} " in message and "tenant 'demo'" in message
    assert f"gateway credentials set demo acme {missing}" in message
    assert not provider.api_requests()


def test_an_empty_plain_credential_names_the_field() -> None:
    with pytest.raises(MissingSecretError, match=r"acme: auth\.username is empty"):
        run_calls(client({"type": "basic", "username": ""}, Provider(), {}))


def test_token_answers_in_form_encoding_are_read() -> None:
    provider = Provider()
    provider.token_answers.append(
        httpx.Response(
            200,
            content=b"access_token=form-token&expires_in=100",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    )
    provider.valid.add("form-token")
    run_calls(client(client_credentials(), provider, {"CLIENT_SECRET": "s"}))
    assert provider.api_requests()[0].headers["authorization"] == "Bearer form-token"
