"""The test integration `acme`, built from its parts: one builder instead of a hand-written copy
per test file. A test names only what it varies (the verify scheme, endpoints, a map, syncs).

    acme(api(endpoints={"ping": "{method: POST, path: /ping}"}), webhook(max_body="2KiB"))
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

BASE_URL = "https://api.acme.test"
BEARER = '{type: bearer, token: "${secret:ACME_KEY}"}'

STRIPE_LIKE_VERIFY = """\
verify:
  scheme: hmac
  algorithm: sha256
  secret: ${secret:ACME_SECRET}
  signature: {header: Acme-Signature, format: pairs, key: v1}
  timestamp: {param: t, tolerance: 5m, direction: past}
  signed: "{timestamp}.{body}"
"""
"""Signed like Stripe (``tests.helpers.signatures.stripe_header``) with ACME_SECRET."""

TOKEN_VERIFY = 'verify: {scheme: token, secret: "${secret:TOKEN}", header: X-Token}\n'
"""The secret TOKEN sent as is in the X-Token header."""

EVENT = 'event: {id: "{{ body.id }}", type: "{{ body.type }}"}\n'


def section(key: str, entries: Mapping[str, str] | str) -> str:
    """``key:`` then its entries indented; an entry whose value has several lines is a block."""
    if isinstance(entries, str):
        return f"{key}:\n" + textwrap.indent(entries, "  ")
    lines = []
    for name, value in entries.items():
        if "\n" in value:
            lines.append(f"{name}:\n" + textwrap.indent(value, "  "))
        else:
            lines.append(f"{name}: {value}\n")
    return f"{key}:\n" + textwrap.indent("".join(lines), "  ")


def api(
    *,
    endpoints: Mapping[str, str],
    base_url: str = BASE_URL,
    auth: str | None = None,
    retry: str | None = None,
) -> str:
    """The ``api:`` section: its base URL, then auth and retry when given, then endpoints."""
    lines = f"base_url: {base_url}\n"
    if auth is not None:
        lines += f"auth: {auth}\n"
    if retry is not None:
        lines += f"retry: {retry}\n"
    return section("api", lines + section("endpoints", endpoints))


def webhook(
    *,
    verify: str = STRIPE_LIKE_VERIFY,
    max_body: str | None = None,
    map: Mapping[str, str] | None = None,
) -> str:
    """The ``webhook:`` section: verify, the event id and type from the body, and the map."""
    lines = "" if max_body is None else f"max_body: {max_body}\n"
    lines += verify + EVENT
    if map is not None:
        lines += section("map", map)
    return section("webhook", lines)


def acme(*sections: str) -> str:
    """The integration `acme` made of the given top-level sections, in their order."""
    return "kind: integration\nname: acme\n" + "".join(sections)
