"""Pre-signed, unique Stripe webhook requests for wrk (whose LuaJIT cannot compute an HMAC)."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

WEBHOOK_SECRET = "whsec_bench_4eC39HqLyjWDarjtT1zdp7dc"

# A compact checkout.session.completed event (~400 bytes; a 200-byte one cannot carry them) with
# every field the shipped Stripe mapping reads, so the gateway runs its normal path, not a
# mapping failure.
_BODY = (
    '{{"id":"evt_{tag}{index:08d}","object":"event","created":{ts},'
    '"type":"checkout.session.completed","livemode":false,"data":{{"object":{{'
    '"id":"cs_{tag}{index:08d}","payment_status":"paid","payment_intent":"pi_{tag}{index:08d}",'
    '"customer":"cus_1","amount_total":4500,"currency":"eur","customer_details":{{'
    '"email":"ann@example.com","name":"Ann","phone":"+4915112345678"}},'
    '"client_reference_id":null,"metadata":{{}}}}}}}}'
)


def signature_header(body: bytes, timestamp: int, secret: str = WEBHOOK_SECRET) -> str:
    """Stripe's scheme: ``t=<unix s>,v1=<hex HMAC-SHA256 of "t.body">``."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def write_requests(path: Path, count: int, tag: str, secret: str = WEBHOOK_SECRET) -> int:
    """Write ``count`` lines ``<Stripe-Signature>\\t<body>``; returns the mean body size in bytes.

    ``tag`` makes event ids unique across files; timestamps are now, so sign right before a run.
    """
    ts = int(time.time())
    keyed = hmac.new(secret.encode(), str(ts).encode() + b".", hashlib.sha256)
    template = _BODY.replace("{ts}", str(ts))
    total = 0
    with path.open("w", encoding="ascii") as out:
        lines: list[str] = []
        for index in range(count):
            body = template.format(tag=tag, index=index)
            mac = keyed.copy()
            mac.update(body.encode())
            digest = mac.hexdigest()
            lines.append(f"t={ts},v1={digest}\t{body}\n")
            total += len(body)
            if len(lines) >= 10_000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)
    return total // max(count, 1)
