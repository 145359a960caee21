"""Who is served under ``/webhooks/{integration}/{tenant}``, and with which secrets: a tenant that
declares the integration or holds its own credential for it, verified with its own secrets
(the shared ones only when its document says so); credentials set or deleted on a running
server count within the TTL."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from gateway.credentials.secrets import Cipher
from gateway.store import SQLiteStore
from tests.helpers.app import AppFactory, admin
from tests.helpers.integrations import acme, webhook
from tests.helpers.signatures import stripe_header

ENV_SECRET = "whsec_shared_env"
BETA_SECRET = "whsec_beta_own"
KEY = Fernet.generate_key().decode()
ENV = {"ACME_SECRET": ENV_SECRET, "BATCH_TOKEN": "tok", "GATEWAY_SECRET_KEY": KEY}
TTL = 10.0  # SecretSource's default, the one the README documents
BATCH = """\
kind: integration
name: batchy
webhook:
  verify: {scheme: token, secret: "${secret:BATCH_TOKEN}", header: X-Token}
  event: {id: "{{ body.id }}", type: "{{ body.type }}"}
"""
DEMO = "kind: tenant\nname: demo\n"  # every integration, no secret of its own
SHARED = "kind: tenant\nname: shared\nintegrations: [acme]\nshared_secrets: true\n"
FILES = {"acme.yaml": acme(webhook()), "b.yaml": BATCH, "demo.yaml": DEMO}


class Clock:
    """Moves the credential cache's clock on, so that a TTL passes without waiting for it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = 0.0
        monkeypatch.setattr(
            "gateway.credentials.secrets.monotonic",
            lambda: time.monotonic() + self.offset,
            raising=False,
        )

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def post(client: Any, path: str, body: bytes, secret: str) -> Any:
    headers = {"Acme-Signature": stripe_header(body, secret), "Content-Type": "application/json"}
    return client.post(path, content=body, headers=headers)


def credentials(
    tmp_path: Path, action: str, tenant: str, integration: str, value: str = ""
) -> None:
    """A credential set or deleted in the running app's database, as `gateway credentials` does
    (another process, another connection)."""

    async def change() -> None:
        store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
        await store.open()
        try:
            name = f"{integration.upper()}_SECRET" if integration == "acme" else "BATCH_TOKEN"
            if action == "set":
                token = Cipher([KEY]).encrypt(value)
                await store.set_credential(tenant, integration, name, token)
            else:
                assert await store.delete_credential(tenant, integration, name)
        finally:
            await store.close()

    asyncio.run(change())


def test_one_delivery_signed_with_the_shared_secret_is_one_event(make_client: AppFactory) -> None:
    client = make_client(FILES, ENV)
    body = b'{"id":"evt_once","type":"paid"}'
    statuses = {
        path: post(client, path, body, ENV_SECRET).status_code
        for path in (
            "/webhooks/acme",  # the default tenant: the gateway's own, shared secrets
            "/webhooks/acme/demo",  # declared (every integration), no secret of its own
            "/webhooks/acme/beta",  # neither declared nor holding a credential
        )
    }
    assert statuses == {
        "/webhooks/acme": 200,
        "/webhooks/acme/demo": 401,
        "/webhooks/acme/beta": 404,
    }
    listed = admin(client, "/admin/api/events")
    assert [(e["tenant"], e["provider_event_id"]) for e in listed["events"]] == [
        ("default", "evt_once")
    ]


def test_shared_secrets_is_an_explicit_choice_of_the_tenant(make_client: AppFactory) -> None:
    client = make_client({**FILES, "shared.yaml": SHARED}, ENV)
    body = b'{"id":"evt_shared","type":"paid"}'
    assert post(client, "/webhooks/acme/shared", body, ENV_SECRET).status_code == 200
    assert post(client, "/webhooks/acme/shared", body, "whsec_other").status_code == 401


def test_a_credential_for_another_integration_opens_no_url_for_this_one(
    make_client: AppFactory, tmp_path: Path
) -> None:
    client = make_client(FILES, ENV)
    credentials(tmp_path, "set", "beta", "batchy", "beta-tok")
    body = b'{"id":"evt_b","type":"paid"}'
    assert post(client, "/webhooks/acme/beta", body, ENV_SECRET).status_code == 404
    own = client.post("/webhooks/batchy/beta", content=body, headers={"X-Token": "beta-tok"})
    assert own.status_code == 200
    shared = client.post("/webhooks/batchy/beta", content=body, headers={"X-Token": "tok"})
    assert shared.status_code == 401  # the environment's token is not beta's


def test_a_credential_set_then_deleted_on_a_running_server_counts_within_the_ttl(
    make_client: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    client = make_client(FILES, ENV)
    body = b'{"id":"evt_beta","type":"paid"}'
    assert post(client, "/webhooks/acme/beta", body, BETA_SECRET).status_code == 404
    credentials(tmp_path, "set", "beta", "acme", BETA_SECRET)
    clock.advance(TTL + 0.5)
    accepted = post(client, "/webhooks/acme/beta", body, BETA_SECRET)
    assert accepted.status_code == 200, accepted.text
    assert post(client, "/webhooks/acme/beta", body, ENV_SECRET).status_code == 401
    credentials(tmp_path, "delete", "beta", "acme")
    clock.advance(TTL + 0.5)
    again = b'{"id":"evt_beta_2","type":"paid"}'
    assert post(client, "/webhooks/acme/beta", again, BETA_SECRET).status_code == 404
    assert post(client, "/webhooks/acme/beta", again, ENV_SECRET).status_code == 404
    events = admin(client, "/admin/api/events")["events"]
    assert [json.loads(admin(client, f"/admin/api/events/{e['id']}")["body"]) for e in events] == [
        {"id": "evt_beta", "type": "paid"}
    ]


def test_a_declared_tenant_whose_credential_is_deleted_does_not_fall_back_to_the_environment(
    make_client: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    client = make_client(FILES, ENV)
    credentials(tmp_path, "set", "demo", "acme", BETA_SECRET)
    clock.advance(TTL + 0.5)
    assert post(client, "/webhooks/acme/demo", b'{"id":"d1"}', BETA_SECRET).status_code == 200
    credentials(tmp_path, "delete", "demo", "acme")
    clock.advance(TTL + 0.5)
    assert post(client, "/webhooks/acme/demo", b'{"id":"d2"}', BETA_SECRET).status_code == 401
    assert post(client, "/webhooks/acme/demo", b'{"id":"d3"}', ENV_SECRET).status_code == 401
