"""The three servers under test: how to start each, and where its events end up."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import HOST, pinned
from bench.signed import WEBHOOK_SECRET, write_requests

REPO = Path(__file__).resolve().parent.parent
GATEWAY_BIN = Path(sys.executable).with_name("gateway")  # the venv's console script
SHIPPED_STRIPE = REPO / "integrations.d" / "stripe.yaml"
# The normalised events' contracts the Stripe mapping is written against: without them lint
# (and so `serve`) holds every field the mapping reads required of the examples.
SHIPPED_CONTRACTS = REPO / "integrations.d" / "events.yaml"
SERVER_CPU = 0

# Used only while integrations.d/stripe.yaml does not exist yet.
MINIMAL_STRIPE_YAML = """\
kind: integration
name: stripe
webhook:
  verify:
    scheme: hmac
    algorithm: sha256
    secret: "${secret:STRIPE_WEBHOOK_SECRET}"
    signature: {header: Stripe-Signature, format: pairs, separator: ",", assign: "=", key: v1,
                encoding: hex}
    timestamp: {param: t, unit: s, tolerance: 5m, direction: past}
    signed: "{timestamp}.{body}"
  event:
    id: "{{ body.id }}"
    type: "{{ body.type }}"
"""


LABELS = {
    "raw": "(0) uvicorn alone (plain ASGI app)",
    "bare": "(a) bare Starlette",
    "handwritten": "(b) hand-written Stripe+aiosqlite",
    "gateway": "(c) gateway --role ingest",
    "gateway_pg": "(c-pg) the same on PostgreSQL",
    "gateway_all": "(c') gateway --role all",
}


@dataclass
class Target:
    key: str
    label: str
    argv: list[str]
    env: dict[str, str]
    health_path: str | None = None
    rows: Callable[[], int] | None = None  # events in the store, for the durability check
    notes: list[str] = field(default_factory=list)
    cleanup: Callable[[], object] | None = None
    path: str = "/webhooks/stripe"  # where the load posts
    header: str = "Stripe-Signature"  # the signature header of the lines `write` makes
    write: Callable[[Path, int, str], int] = write_requests  # (file, count, tag) -> body bytes


def _uvicorn(app: str, port: int, cpu: int = SERVER_CPU) -> list[str]:
    """The reference apps on the server settings `gateway serve` uses (uvloop, httptools, no
    access log, no proxy headers, no Server header), so only the app differs."""
    argv = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port)]
    argv += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    argv += ["--no-proxy-headers", "--no-server-header"]
    return pinned(cpu, argv)


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, **extra}


def raw(workdir: Path, port: int) -> Target:
    return Target("raw", LABELS["raw"], _uvicorn("bench.servers.raw:app", port), _env())


def bare(workdir: Path, port: int) -> Target:
    return Target("bare", LABELS["bare"], _uvicorn("bench.servers.bare:app", port), _env())


def handwritten(workdir: Path, port: int) -> Target:
    db = workdir / "handwritten.db"
    return Target(
        "handwritten",
        LABELS["handwritten"],
        _uvicorn("bench.servers.handwritten:app", port),
        _env(BENCH_DB=str(db)),
        rows=lambda: sqlite_rows(db),
    )


def sqlite_rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def gateway(workdir: Path, port: int, role: str = "ingest", db_url: str | None = None) -> Target:
    """The gateway as an ingest node (webhooks only), or with its dispatcher and workers in
    the same process (`all`: every stored event is also mapped and its status committed)."""
    integrations = workdir / "integrations"
    integrations.mkdir(exist_ok=True)
    notes: list[str] = []
    if SHIPPED_STRIPE.is_file():
        shutil.copy(SHIPPED_STRIPE, integrations / "stripe.yaml")
        notes.append("shipped integrations.d/stripe.yaml")
        if SHIPPED_CONTRACTS.is_file():
            shutil.copy(SHIPPED_CONTRACTS, integrations / "events.yaml")
    else:
        (integrations / "stripe.yaml").write_text(MINIMAL_STRIPE_YAML)
        notes.append("minimal stripe.yaml (integrations.d/stripe.yaml missing)")
    db = workdir / f"gateway-{role}.db"
    url = db_url or f"sqlite:///{db}"
    binary = str(GATEWAY_BIN) if GATEWAY_BIN.exists() else shutil.which("gateway") or "gateway"
    argv = [binary, "serve", "--host", HOST, "--port", str(port)]
    argv += ["--integrations", str(integrations), "--db", url]
    argv += ["--log-level", "warning", "--role", role]
    env = _env(STRIPE_API_KEY="sk_test_bench_unused")
    key = "gateway" if role == "ingest" else "gateway_all"
    rows = None if db_url else lambda: sqlite_rows(db)
    return Target(key, LABELS[key], pinned(SERVER_CPU, argv), env, "/healthz", rows, notes)


def gateway_all(workdir: Path, port: int) -> Target:
    return gateway(workdir, port, role="all")
