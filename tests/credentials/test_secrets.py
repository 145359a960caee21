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

    async def tenants_with_credentials(self) -> set[str]:
        self.reads += 1
        return {tenant for tenant, value in self.values.items() if value}


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


def test_a_first_credential_and_its_deletion_count_within_the_ttl_without_the_environment() -> None:
    async def scenario() -> list[tuple[bool, list[str]]]:
        source, rows = _source(ttl=0.05)

        async def seen() -> tuple[bool, list[str]]:
            own = await source.has_own("clinic", "acme")
            return own, (await source.lookup("clinic", "acme", shared=False))(REF)

        states = [await seen()]  # nothing stored: not the environment's secret either
        rows.values["clinic"] = "first"
        await asyncio.sleep(0.06)
        states.append(await seen())
        assert not await source.has_own("clinic", "other")  # acme's, not other's
        del rows.values["clinic"]
        await asyncio.sleep(0.06)
        states.append(await seen())
        states.append((False, (await source.lookup("clinic", "acme"))(REF)))  # shared: allowed
        return states

    assert asyncio.run(scenario()) == [
        (False, []),
        (True, ["first"]),
        (False, []),
        (False, ["from-env"]),
    ]


def test_without_shared_secrets_a_value_written_in_the_config_does_not_count() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        source, _rows = _source(ttl=60)
        own = await source.lookup("clinic", "acme", shared=False)
        shared = await source.lookup("clinic", "acme")
        return own(["literal", REF]), shared(["literal", REF])

    assert asyncio.run(scenario()) == ([], ["literal", "from-env"])


def test_which_tenants_hold_credentials_is_one_read_per_ttl_whatever_the_names() -> None:
    async def scenario() -> int:
        source, rows = _source(ttl=60)
        for n in range(50):  # made-up tenants cost no read of their own
            assert not await source.has_own(f"made-up-{n}", "acme")
        return rows.reads

    assert asyncio.run(scenario()) == 1
