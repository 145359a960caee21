"""`as_webhook`: a sync's records delivered as the webhooks they stand for, on both stores.

Through the whole app (signed webhooks, the admin API's sync run, the dispatcher and worker),
on SQLite and on PostgreSQL: a record delivered by the sync is answered as a duplicate when its
webhook comes; a webhook that came first is not delivered again by the sync; repeated runs
deliver nothing twice. Then the pieces: `when`, `max_age`, declared headers and bodies, and a
record the wrapping fails on failing the run (nothing of its page committed).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.config.model import load_config
from gateway.config.settings import Settings
from gateway.store import open_store
from gateway.store.entities import EventQuery, NewEvent
from gateway.web.application import create_app
from tests.helpers.app import ADMIN_TOKEN
from tests.helpers.integrations import BEARER, acme, api, webhook
from tests.helpers.postgres import fresh_schema
from tests.helpers.signatures import stripe_header
from tests.helpers.sync_harness import Harness

SECRET = "whsec_as_webhook"
ENV = {"ACME_SECRET": SECRET, "ACME_KEY": "sk_acme", "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MAP = {"thing.made": '{emit: thing.made, data: {name: "{{ body.name }}"}}'}
SYNC = """\
syncs:
  things:
    endpoint: list_things
    schedule: {every: 1h}
    records: "{{ response.data }}"
    record: {id: "{{ record.id }}", updated_at: "{{ record.created }}"}
    as_webhook: {max_age: 1d}
    examples:
      made: {record: {id: evt_1, type: thing.made, name: Ada, created: 1750000000}}
"""
FLOW = """\
kind: flow
name: tell-acme
event: thing.made
actions:
  - name: ping
    call: {endpoint: acme.ping, body: {name: "{{ event.data.name }}"}}
"""


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    with fresh_schema() as url:
        yield url


class Provider:
    """The acme API: lists `listed` as its records, counts the pings flows make."""

    def __init__(self) -> None:
        self.listed: list[dict[str, Any]] = []
        self.pings: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/things":
            return httpx.Response(200, json={"data": self.listed})
        self.pings.append(json.loads(request.content)["name"])
        return httpx.Response(200, json={"ok": True})


def thing(n: int, name: str) -> dict[str, Any]:
    return {"id": f"evt_{n}", "type": "thing.made", "name": name, "created": int(time.time())}


def post(client: TestClient, record: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(record).encode()
    response = client.post(
        "/webhooks/acme", content=body, headers={"Acme-Signature": stripe_header(body, SECRET)}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def run_sync(client: TestClient) -> dict[str, Any]:
    response = client.post("/admin/api/syncs/acme/things/run?wait=true", headers=AUTH)
    assert response.status_code == 200, response.text
    summary: dict[str, Any] = response.json()
    assert summary["status"] == "succeeded", summary
    return summary


def events(client: TestClient, provider_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/admin/api/events?provider_event_id={provider_id}", headers=AUTH)
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def wait_for_pings(provider: Provider, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(provider.pings) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(provider.pings) >= count, provider.pings


def settle(client: TestClient, event_id: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = client.get(f"/admin/api/events/{event_id}", headers=AUTH).json()
        if detail["jobs"] and all(j["status"] in ("succeeded", "dead") for j in detail["jobs"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"the jobs of {event_id} did not finish")


def test_deliveries_and_webhooks_are_one_event_whichever_comes_first(
    database: str, tmp_path: Path
) -> None:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    endpoints = {
        "list_things": "{method: GET, path: /things}",
        "ping": "{method: POST, path: /ping}",
    }
    (folder / "acme.yaml").write_text(
        acme(api(auth=BEARER, endpoints=endpoints), webhook(map=MAP), SYNC)
    )
    (folder / "flow.yaml").write_text(FLOW)
    config = load_config(folder, ENV)
    provider = Provider()
    app = create_app(
        config, open_store(database), Settings.from_env(ENV), ENV,
        transport=httpx.MockTransport(provider),
    )  # fmt: skip
    with TestClient(app, raise_server_exceptions=False) as client:
        # the sync sees a record whose webhook never came: delivered once, mapped, acted on
        missed = thing(1, "Ada")
        provider.listed = [missed]
        assert run_sync(client)["created"] == 1
        (delivered,) = events(client, "evt_1")
        assert delivered["type"] == "thing.made"
        settle(client, delivered["id"])
        assert run_sync(client)["unchanged"] == 1  # again: nothing new
        assert post(client, missed) == {"status": "duplicate", "event_id": delivered["id"]}

        # a webhook that came first: the sync's copy is the same event
        first = thing(2, "Grace")
        accepted = post(client, first)
        assert accepted["status"] == "accepted"
        settle(client, accepted["event_id"])
        provider.listed = [missed, first]
        summary = run_sync(client)
        assert (summary["created"], summary["unchanged"]) == (1, 1)
        assert [e["id"] for e in events(client, "evt_2")] == [accepted["event_id"]]
        wait_for_pings(provider, 2)
    assert sorted(provider.pings) == ["Ada", "Grace"]  # each acted on exactly once


# ---- the pieces, on the sync harness (SQLite, a mock provider, a fake clock) ----------------

WEBHOOK = webhook(
    map={
        "made": '{emit: thing.made, data: {name: "{{ body.thing.name }}"}}',
        "gone": '{emit: thing.gone, data: {name: "{{ body.thing.name }}"}}',
    }
).replace('type: "{{ body.type }}"', "type: \"{{ headers['x-kind'] }}\"")
ACME_WITH_WEBHOOK = (
    acme(api(auth=BEARER, endpoints={"list_things": "{method: GET, path: /things}"}), WEBHOOK)
    + "syncs:\n  things:\n"
)
WRAPPED = """
    endpoint: list_things
    schedule: {every: 1h}
    records: "{{ response.data }}"
    record:
      id: "{{ record.id }}"
      updated_at: "{{ record.updated }}"
    as_webhook:
      when: "{{ record.state != 'draft' }}"
      max_age: 1h
      headers: {X-Kind: "{{ record.state if record.state in ['other'] else 'gone' if record.state == 'deleted' else 'made' }}"}
      body: {id: "{{ record.state }}-{{ record.id }}", thing: {name: "{{ record.name }}"}}
    examples:
      made: {record: {id: t1, name: Ada, state: live, updated: "2025-06-10T14:00:00Z"}}
"""


def _harness(tmp_path: Path, sync: str, records: list[dict[str, Any]]) -> Harness:
    def provider(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": records})

    return Harness(tmp_path, sync, provider, base=ACME_WITH_WEBHOOK)


def stamp(minutes_ago: float, now: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(now - 60 * minutes_ago, UTC).isoformat()


async def _stored(harness: Harness) -> list[Any]:
    return await harness.store.list_events(EventQuery(limit=100))


def test_when_max_age_headers_and_body_decide_what_is_delivered(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        now = 1_750_000_000.0
        records = [
            {"id": "t1", "name": "Ada", "state": "live", "updated": stamp(5, now)},
            {"id": "t2", "name": "Bob", "state": "draft", "updated": stamp(5, now)},  # when
            {"id": "t3", "name": "Cy", "state": "live", "updated": stamp(90, now)},  # too old
            {"id": "t4", "name": "Di", "state": "deleted", "updated": stamp(1, now)},
            {"id": "t5", "name": "Ed", "state": "other", "updated": stamp(1, now)},  # unmapped
        ]
        async with _harness(tmp_path, WRAPPED, records) as h:
            h.clock.now = now
            summary = await h.run()
            assert summary.ok and summary.counts.created == 5, summary.error
            stored = sorted(await _stored(h), key=lambda e: e.provider_id or "")
            assert [(e.provider_id, e.type) for e in stored] == [
                ("deleted-t4", "gone"),
                ("live-t1", "made"),
            ]
            # the webhook of the same provider event (as ingress stores it) is a duplicate
            webhook = NewEvent("evt_hook", "acme", "default", "live-t1", "live-t1", "made",
                               now, "{}", b"{}")  # fmt: skip
            (inserted,) = await h.store.insert_events([webhook])
            assert (inserted.event_id, inserted.duplicate) == (stored[1].id, True)
            assert json.loads(stored[1].body) == {"id": "live-t1", "thing": {"name": "Ada"}}
            assert stored[1].headers == {"x-kind": "made", "x-gateway-sync-delivery": "things"}
            assert h.events_woken == 1

    asyncio.run(main())


def test_a_record_the_wrapping_fails_on_fails_the_run_and_commits_nothing(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        now = 1_750_000_000.0
        records = [
            {"id": "t1", "name": "Ada", "state": "live", "updated": stamp(5, now)},
            {"id": "t2", "state": "live", "updated": stamp(5, now)},  # no name
        ]
        async with _harness(tmp_path, WRAPPED, records) as h:
            h.clock.now = now
            summary = await h.run()
            assert summary.status == "failed"
            assert summary.error == (
                "record 1 (t2): syncs.things.as_webhook.body.thing.name ({{ record.name }}): "
                "it has no field 'name', which this expression reads"
            )
            assert await _stored(h) == []
            assert await h.counts() == (0, 0)

    asyncio.run(main())


def test_a_body_without_a_webhook_event_id_fails_the_run(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        now = 1_750_000_000.0
        records = [{"id": "t1", "name": "Ada", "state": "live", "updated": stamp(5, now)}]
        # the example has a ref (so lint passes); the record the provider lists has none
        sync = WRAPPED.replace(
            'body: {id: "{{ record.state }}-{{ record.id }}"',
            "body: {id: \"{{ record.ref | default('') }}\"",
        ).replace("made: {record: {id: t1,", "made: {record: {ref: r1, id: t1,")
        async with _harness(tmp_path, sync, records) as h:
            h.clock.now = now
            summary = await h.run()
            assert summary.status == "failed"
            assert summary.error == (
                "record 0 (t1): as_webhook: webhook.event.id gives no id for its body, so it "
                "cannot be told apart from the webhook of the same event"
            )
            assert await _stored(h) == []

    asyncio.run(main())
