"""(b) What one would write by hand for one provider: Stripe SDK verification, then an aiosqlite
insert and commit per request (WAL, synchronous=FULL) before answering 200.

Configured by env: ``STRIPE_WEBHOOK_SECRET`` and ``BENCH_DB`` (path of the SQLite file).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosqlite
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SECRET = os.environ["STRIPE_WEBHOOK_SECRET"]
DB_PATH = os.environ["BENCH_DB"]
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, type TEXT NOT NULL,"
    " received_at REAL NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL)"
)
_db: aiosqlite.Connection | None = None


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global _db
    _db = await aiosqlite.connect(DB_PATH)
    await _db.execute("PRAGMA journal_mode=WAL")
    await _db.execute("PRAGMA synchronous=FULL")
    await _db.execute(_SCHEMA)
    await _db.commit()
    try:
        yield
    finally:
        await _db.close()


async def stripe_webhook(request: Request) -> JSONResponse:
    payload = await request.body()
    header = request.headers.get("stripe-signature")
    try:
        stripe.WebhookSignature.verify_header(payload, header, SECRET, tolerance=300)
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError):
        return JSONResponse({"error": "invalid signature"}, status_code=401)
    assert _db is not None
    headers = json.dumps(
        {"stripe-signature": header, "content-type": request.headers.get("content-type")}
    )
    try:
        await _db.execute(
            "INSERT INTO events (id, type, received_at, headers, body) VALUES (?, ?, ?, ?, ?)",
            (event["id"], event["type"], time.time(), headers, payload),
        )
        await _db.commit()
    except aiosqlite.IntegrityError:
        return JSONResponse({"status": "duplicate", "id": event["id"]})
    return JSONResponse({"status": "accepted", "id": event["id"]})


app = Starlette(
    routes=[Route("/webhooks/stripe", stripe_webhook, methods=["POST"])], lifespan=lifespan
)
