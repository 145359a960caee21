"""The gateway on PostgreSQL, end to end: a signed webhook is stored, dispatched and its job run;
a repeat is a duplicate; the CLI reaches the same database. Skipped, saying why, when no
PostgreSQL is reachable (see tests/helpers/postgres.py)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.cli.main import main
from gateway.config.model import load_config
from gateway.config.settings import Settings
from gateway.errors import UsageError
from gateway.store import open_store
from gateway.store.postgres_base import pool_sizes
from gateway.web.application import create_app
from tests.helpers.app import ADMIN_TOKEN
from tests.helpers.integrations import BEARER, acme, api, webhook
from tests.helpers.postgres import fresh_schema
from tests.helpers.signatures import stripe_header

SECRET = "whsec_pg"
ACME = acme(
    api(auth=BEARER, endpoints={"ping": "{method: POST, path: /ping}"}),
    webhook(map={"thing.made": '{emit: thing.made, data: {name: "{{ body.name }}"}}'}),
)
FLOW = """\
kind: flow
name: tell-acme
event: thing.made
actions:
  - name: ping
    call: {endpoint: acme.ping, body: {name: "{{ event.data.name }}"}}
"""
ENV = {"ACME_SECRET": SECRET, "ACME_KEY": "sk_acme", "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


def _wait_for_job(client: TestClient, event_id: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    detail: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(
            f"/admin/api/events/{event_id}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        detail = response.json()
        jobs = detail.get("jobs") or []
        if jobs and jobs[0]["status"] in ("succeeded", "dead"):
            return detail
        time.sleep(0.05)
    raise AssertionError(f"the event's job did not finish: {detail}")


def test_a_signed_webhook_is_stored_dispatched_and_run_on_postgres(
    database: str, tmp_path: Path
) -> None:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "acme.yaml").write_text(ACME)
    (folder / "flow.yaml").write_text(FLOW)
    config = load_config(folder, ENV)
    calls: list[httpx.Request] = []

    def provider(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"ok": True})

    store = open_store(database)
    assert type(store).__name__ == "PostgresStore"
    app = create_app(
        config, store, Settings.from_env(ENV), ENV, transport=httpx.MockTransport(provider)
    )
    body = json.dumps({"id": "evt_pg_1", "type": "thing.made", "name": "Ada"}).encode()
    with TestClient(app, raise_server_exceptions=False) as client:
        first = client.post(
            "/webhooks/acme", content=body, headers={"Acme-Signature": stripe_header(body, SECRET)}
        )
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "accepted"
        event_id = first.json()["event_id"]

        detail = _wait_for_job(client, event_id)
        assert detail["status"] == "dispatched"
        assert [(j["action"], j["status"]) for j in detail["jobs"]] == [("ping", "succeeded")]

        repeat = client.post(
            "/webhooks/acme", content=body, headers={"Acme-Signature": stripe_header(body, SECRET)}
        )
        assert repeat.json() == {"status": "duplicate", "event_id": event_id}

    assert len(calls) == 1
    assert json.loads(calls[0].content) == {"name": "Ada"}
    assert calls[0].headers["authorization"] == "Bearer sk_acme"


def test_the_cli_works_on_postgres(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "--db", database]) == 0
    assert main(["replay", "evt_missing", "--db", database]) == 2
    assert "no event evt_missing" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p%40ss@h/db", ("postgresql://u:p%40ss@h/db", (1, 10))),
        (
            "postgresql://u@h/db?search_path=gw&pool_max=40&pool_min=4",
            ("postgresql://u@h/db?search_path=gw", (4, 40)),
        ),
        ("postgres://h/db?pool_max=2", ("postgres://h/db", (1, 2))),
    ],
)
def test_pool_bounds_come_off_the_url(url: str, expected: tuple[str, tuple[int, int]]) -> None:
    assert pool_sizes(url, 1, 10) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("pool_max=0", "pool_max='0' in the database URL: expected 1 to 1000"),
        ("pool_max=lots", "pool_max='lots'"),
        ("pool_min=5&pool_max=2", "pool_min=5 is above pool_max=2"),
    ],
)
def test_bad_pool_bounds_are_usage_errors(query: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        pool_sizes(f"postgresql://h/db?{query}", 1, 10)


def test_the_pool_opens_with_the_bounds_of_the_url(database: str) -> None:
    store = open_store(f"{database}&pool_min=2&pool_max=3")

    async def sizes() -> tuple[int, int]:
        await store.open()
        try:
            pool = store.pool  # type: ignore[attr-defined]
            return pool.get_min_size(), pool.get_max_size()
        finally:
            await store.close()

    assert asyncio.run(sizes()) == (2, 3)
