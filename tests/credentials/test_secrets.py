"""Secrets resolved per tenant and integration, remembered between requests but never stale
beyond the stored-credential TTL, and never mixed up between tenants."""

from __future__ import annotations

import asyncio
import time

from cryptography.fernet import Fernet

from gateway.config.envsubst import SecretRef
from gateway.credentials.secrets import Cipher, SecretSource
from gateway.verify import build_verifier
from gateway.verify.verifier import VerificationFailed, WebhookRequest
from tests.helpers.signatures import stripe_header

REF = SecretRef("ACME_SECRET")
SPEC = {
    "scheme": "hmac",
    "algorithm": "sha256",
    "secret": REF,
    "signature": {"header": "Acme-Signature", "format": "pairs", "key": "v1"},
    "timestamp": {"param": "t", "tolerance": "5m", "direction": "past"},
    "signed": "{timestamp}.{body}",
}


class Rows:
    def __init__(self, cipher: Cipher) -> None:
        self.cipher = cipher
        self.values: dict[str, str] = {}
        self.reads = 0

    async def credential_tokens(self, tenant: str) -> list[tuple[str, str, bytes]]:
        self.reads += 1
        value = self.values.get(tenant)
        return [("acme", "ACME_SECRET", self.cipher.encrypt(value))] if value else []


def _source(ttl: float) -> tuple[SecretSource, Rows]:
    cipher = Cipher([Fernet.generate_key().decode()])
    rows = Rows(cipher)
    return SecretSource({"ACME_SECRET": "from-env"}, rows, cipher, ttl=ttl), rows  # type: ignore[arg-type]


def test_a_changed_credential_is_used_once_the_ttl_has_passed() -> None:
    async def scenario() -> list[list[str]]:
        source, rows = _source(ttl=0.05)
        rows.values["clinic"] = "first"
        seen = [(await source.lookup("clinic", "acme"))(REF)]
        rows.values["clinic"] = "second"
        seen.append((await source.lookup("clinic", "acme"))(REF))  # within the TTL
        await asyncio.sleep(0.06)
        seen.append((await source.lookup("clinic", "acme"))(REF))
        del rows.values["clinic"]
        await asyncio.sleep(0.06)
        seen.append((await source.lookup("clinic", "acme"))(REF))  # back to the environment
        return seen

    assert asyncio.run(scenario()) == [["first"], ["first"], ["second"], ["from-env"]]


def test_lookups_are_remembered_per_tenant_and_integration() -> None:
    async def scenario() -> tuple[list[list[str]], int]:
        source, rows = _source(ttl=60)
        rows.values["clinic"] = "clinic-secret"
        seen = []
        for tenant in ("clinic", "default", "clinic", "default"):
            lookup = await source.lookup(tenant, "acme")
            seen.append(lookup([REF, "literal", REF]))
        other = await source.lookup("clinic", "other")
        seen.append(other(REF))  # another integration's stored credential is not this one
        return seen, rows.reads

    seen, reads = asyncio.run(scenario())
    assert seen == [
        ["clinic-secret", "literal", "clinic-secret"],
        ["from-env", "literal", "from-env"],
        ["clinic-secret", "literal", "clinic-secret"],
        ["from-env", "literal", "from-env"],
        ["from-env"],
    ]
    assert reads == 2  # once per tenant within the TTL


def test_one_verifier_checks_each_tenant_against_its_own_secret() -> None:
    verifier = build_verifier(SPEC)
    source, rows = _source(ttl=60)
    rows.values["a"] = "secret-a"
    rows.values["b"] = "secret-b"
    body = b'{"id":"evt_1"}'

    def request(secret: str) -> WebhookRequest:
        header = stripe_header(body, secret)
        return WebhookRequest("POST", "", {"acme-signature": header}, [], body)

    async def verdicts() -> list[bool]:
        out = []
        for tenant, secret in [("a", "secret-a"), ("b", "secret-a"), ("b", "secret-b")] * 2:
            lookup = await source.lookup(tenant, "acme")
            try:
                verifier.verify(request(secret), lookup, time.time())
                out.append(True)
            except VerificationFailed:
                out.append(False)
        return out

    assert asyncio.run(verdicts()) == [True, False, True] * 2
