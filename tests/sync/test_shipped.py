"""The five shipped syncs, as shipped, against the provider sandbox over loopback: each pages
through two pages, stores its records and cursor, and its next run is incremental the way the
real API wants it (Cal.com afterUpdatedAt, Google syncToken, Graph deltaLink, Stripe
created[gte], Retell filter_criteria); Google's 410 starts a full sync over."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.model import Config, load_config
from gateway.credentials.secrets import SecretSource
from gateway.outbound import MemoryTokenStore, OutboundClient
from gateway.sandbox.recording import RecordedRequest
from gateway.sandbox.server import SandboxHandle, running_sandbox
from gateway.store import SQLiteStore
from gateway.store.sync_model import SyncKey
from gateway.sync.runner import RunSummary, SyncRunner
from tests.helpers import REPO

SECRETS = {
    name: f"test-{name.lower()}"
    for name in (
        "CALCOM_API_KEY", "STRIPE_API_KEY", "RETELL_API_KEY", "GOOGLE_CLIENT_SECRET",
        "GOOGLE_REFRESH_TOKEN", "OUTLOOK_CLIENT_SECRET",
    )
}  # fmt: skip
HOST = "{{ request.headers.host }}"


def booking(uid: str, updated: str, status: str = "accepted") -> dict[str, Any]:
    return {"id": 1, "uid": uid, "title": uid, "status": status, "updatedAt": updated}


def event(n: int, status: str = "confirmed") -> dict[str, Any]:
    return {"id": f"ev{n}", "status": status, "updated": f"2026-01-0{n}T10:00:00.000Z"}


def call(n: int) -> dict[str, Any]:
    return {
        "call_id": f"call_{n}",
        "call_status": "ended",
        "start_timestamp": 1_749_542_400_000 + n,
    }


def stripe_event(n: int) -> dict[str, Any]:
    return {
        "id": f"evt_{n}",
        "object": "event",
        "type": "charge.refunded",
        "created": 1_724_000_000 + n,
    }


GRAPH = "/outlook/users/bookings@praxis-weber.onmicrosoft.com/calendarView/delta"
RULES: list[dict[str, Any]] = [
    # Cal.com: take/skip, hasNextPage; afterUpdatedAt on the next run
    {"path": "/calcom/v2/bookings", "method": "GET", "when": {"query": {"afterUpdatedAt": "2026-01-02T00:00:00.000Z"}},
     "json": {"status": "success", "data": [booking("b2", "2026-01-03T00:00:00.000Z", "cancelled")],
              "pagination": {"hasNextPage": False}}},
    {"path": "/calcom/v2/bookings", "method": "GET", "when": {"query": {"skip": "2"}},
     "json": {"status": "success", "data": [booking("b3", "2026-01-02T00:00:00.000Z")],
              "pagination": {"hasNextPage": False}}},
    {"path": "/calcom/v2/bookings", "method": "GET", "when": {"query": {"skip": "0"}},
     "json": {"status": "success", "data": [booking("b1", "2026-01-01T00:00:00.000Z"),
                                             booking("b2", "2026-01-01T12:00:00.000Z")],
              "pagination": {"hasNextPage": True}}},
    # Google Calendar: pageToken, nextSyncToken on the last page; 410 for an expired token
    {"path": "/google_calendar/calendars/primary/events", "method": "GET",
     "when": {"query": {"syncToken": "expired"}}, "status": 410,
     "json": {"error": {"code": 410, "message": "Sync token is no longer valid."}}},
    {"path": "/google_calendar/calendars/primary/events", "method": "GET",
     "when": {"query": {"syncToken": "sync-1"}},
     "json": {"items": [event(1, "cancelled")], "nextSyncToken": "sync-2"}},
    {"path": "/google_calendar/calendars/primary/events", "method": "GET",
     "when": {"query": {"pageToken": "p2"}}, "json": {"items": [event(3)], "nextSyncToken": "sync-1"}},
    {"path": "/google_calendar/calendars/primary/events", "method": "GET",
     "json": {"items": [event(1), event(2)], "nextPageToken": "p2"}},
    # Graph: nextLink, then deltaLink; the delta link returns changes and @removed
    {"path": GRAPH, "method": "GET", "when": {"query": {"$deltatoken": "d1"}},
     "json": {"value": [{"id": "o1", "@removed": {"reason": "deleted"}}],
              "@odata.deltaLink": f"http://{HOST}{GRAPH}?$deltatoken=d2"}},
    {"path": GRAPH, "method": "GET", "when": {"query": {"$skiptoken": "s2"}},
     "json": {"value": [{"id": "o3", "subject": "three", "lastModifiedDateTime": "2026-01-03T00:00:00Z"}],
              "@odata.deltaLink": f"http://{HOST}{GRAPH}?$deltatoken=d1"}},
    {"path": GRAPH, "method": "GET",
     "json": {"value": [{"id": "o1", "subject": "one", "lastModifiedDateTime": "2026-01-01T00:00:00Z"},
                        {"id": "o2", "subject": "two", "lastModifiedDateTime": "2026-01-02T00:00:00Z"}],
              "@odata.nextLink": f"http://{HOST}{GRAPH}?$skiptoken=s2"}},
    # Stripe: newest first, starting_after, has_more; created[gte] on the next run
    {"path": "/stripe/v1/events", "method": "GET", "when": {"query": {"created[gte]": "1724000003"}},
     "json": {"object": "list", "data": [stripe_event(4), stripe_event(3)], "has_more": False}},
    {"path": "/stripe/v1/events", "method": "GET", "when": {"query": {"starting_after": "evt_2"}},
     "json": {"object": "list", "data": [stripe_event(1)], "has_more": False}},
    {"path": "/stripe/v1/events", "method": "GET",
     "json": {"object": "list", "data": [stripe_event(3), stripe_event(2)], "has_more": True}},
    # Retell: POST list-calls, pagination_key in the body; filter_criteria on the next run
    {"path": "/retell/v3/list-calls", "method": "POST", "when": {"json": {"filter_criteria.start_timestamp.op": "ge"}},
     "json": {"items": [call(3), call(4)], "has_more": False, "pagination_key": None}},
    {"path": "/retell/v3/list-calls", "method": "POST", "when": {"json": {"pagination_key": "k2"}},
     "json": {"items": [call(3)], "has_more": False, "pagination_key": None}},
    {"path": "/retell/v3/list-calls", "method": "POST",
     "json": {"items": [call(1), call(2)], "has_more": True, "pagination_key": "k2"}},
]  # fmt: skip


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(REPO / "sandbox" / "responses.yaml") as handle:
        yield handle


class Shipped:
    def __init__(self, sandbox: SandboxHandle, tmp_path: Path) -> None:
        sandbox.reset()
        sandbox.add_rules(RULES)
        self.sandbox = sandbox
        self.environ = {
            **SECRETS,
            **sandbox.base_urls("calcom", "google_calendar", "outlook", "stripe", "retell"),
            "GOOGLE_OAUTH_TOKEN_URL": sandbox.url_for("google_oauth/token"),
            "OUTLOOK_LOGIN_URL": sandbox.url_for("microsoft_login"),
            "GOOGLE_CLIENT_ID": "test-google-client",
            "OUTLOOK_CLIENT_ID": "test-outlook-client",
        }
        self.config: Config = load_config(REPO / "integrations.d", self.environ)
        self.store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
        self.outbound = OutboundClient(self.config, SecretSource(self.environ), MemoryTokenStore())
        self.runner = SyncRunner(self.config, self.store, self.outbound)

    async def run(self, integration: str, sync: str, tenant: str = "default") -> RunSummary:
        summary = await self.runner.run(integration, sync, tenant)
        assert summary.status == "succeeded", summary.error
        return summary

    async def cursor(self, integration: str, sync: str, tenant: str = "default") -> Any:
        state = await self.store.get_sync_state(SyncKey(integration, tenant, sync))
        assert state is not None and state.cursor is not None
        return json.loads(state.cursor)

    async def deleted(
        self, integration: str, sync: str, record: str, tenant: str = "default"
    ) -> bool:
        found = await self.store.get_sync_record(SyncKey(integration, tenant, sync), record)
        assert found is not None
        return found.deleted

    def requests(self, prefix: str) -> list[RecordedRequest]:
        return self.sandbox.requests(path_prefix=prefix)


def scenario(sandbox: SandboxHandle, tmp_path: Path, test: Any) -> None:
    async def main() -> None:
        shipped = Shipped(sandbox, tmp_path)
        await shipped.store.open()
        try:
            await test(shipped)
        finally:
            await shipped.outbound.aclose()
            await shipped.store.close()

    asyncio.run(main())


def test_calcom_bookings(sandbox: SandboxHandle, tmp_path: Path) -> None:
    async def test(s: Shipped) -> None:
        first = await s.run("calcom", "bookings")
        assert (first.counts.created, first.counts.pages) == (3, 2)
        sent = [r.query_params for r in s.requests("/calcom/v2/bookings")]
        assert sent == [
            {"sortUpdatedAt": "asc", "take": "100", "skip": "0"},
            {"sortUpdatedAt": "asc", "take": "100", "skip": "2"},
        ]
        request = s.requests("/calcom/v2/bookings")[0]
        assert request.headers["cal-api-version"] == "2024-08-13"
        assert request.headers["authorization"] == "Bearer test-calcom_api_key"
        assert await s.cursor("calcom", "bookings") == {
            "since": "2026-01-02T00:00:00.000Z", "since_ts": 1767312000.0,
        }  # fmt: skip
        second = await s.run("calcom", "bookings")
        assert s.requests("/calcom/v2/bookings")[-1].query_params["afterUpdatedAt"] == (
            "2026-01-02T00:00:00.000Z"
        )
        assert second.counts.deleted == 1 and await s.deleted("calcom", "bookings", "b2")

    scenario(sandbox, tmp_path, test)


def test_google_calendar_events(sandbox: SandboxHandle, tmp_path: Path) -> None:
    async def test(s: Shipped) -> None:
        first = await s.run("google_calendar", "events")
        assert (first.counts.created, first.counts.pages) == (3, 2)
        listed = [r for r in s.requests("/google_calendar/calendars") if r.method == "GET"]
        assert [r.query_params.get("pageToken") for r in listed] == [None, "p2"]
        assert listed[0].query_params["showDeleted"] == "true"
        assert listed[0].headers["authorization"].startswith("Bearer ya29.sandbox-")
        assert await s.cursor("google_calendar", "events") == {"token": "sync-1"}

        second = await s.run("google_calendar", "events")
        assert second.counts.deleted == 1 and await s.deleted("google_calendar", "events", "ev1")
        assert await s.cursor("google_calendar", "events") == {"token": "sync-2"}

        # the stored token expired: 410 Gone, and the run starts over with a full sync
        key = SyncKey("google_calendar", "default", "events")
        await s.store.acquire_sync(key, "run_x", now=0, lease_until=0)
        await s.store.finish_sync_run(
            key, "run_x", status="failed", error="test", now=0, full=False, resumed=False
        )
        await s.store.write(
            lambda db: db.execute(
                "UPDATE sync_state SET cursor = ? WHERE integration = 'google_calendar'",
                (json.dumps({"token": "expired"}),),
            )
        )
        third = await s.run("google_calendar", "events")
        assert third.full and third.counts.pages == 2
        assert third.counts.created == 1  # ev1 comes back confirmed: it exists again
        assert await s.cursor("google_calendar", "events") == {"token": "sync-1"}

    scenario(sandbox, tmp_path, test)


def test_outlook_calendar_view_delta(sandbox: SandboxHandle, tmp_path: Path) -> None:
    async def test(s: Shipped) -> None:
        first = await s.run("outlook", "events", tenant="demo")
        assert (first.counts.created, first.counts.pages) == (3, 2)
        listed = s.requests(GRAPH)
        assert listed[0].query_params["startDateTime"] == "2025-01-01T00:00:00Z"  # tenant vars
        assert listed[1].query_params == {"$skiptoken": "s2"}
        assert all(r.headers["prefer"] == "odata.maxpagesize=100" for r in listed)
        assert all(r.headers["authorization"].startswith("Bearer eyJ") for r in listed)
        token = (await s.cursor("outlook", "events", "demo"))["token"]
        assert token.endswith(f"{GRAPH}?$deltatoken=d1")

        second = await s.run("outlook", "events", tenant="demo")
        assert s.requests(GRAPH)[-1].query_params == {"$deltatoken": "d1"}
        assert second.counts.deleted == 1
        assert await s.deleted("outlook", "events", "o1", tenant="demo")

    scenario(sandbox, tmp_path, test)


def test_stripe_events(sandbox: SandboxHandle, tmp_path: Path) -> None:
    async def test(s: Shipped) -> None:
        first = await s.run("stripe", "events")
        assert (first.counts.created, first.counts.pages) == (3, 2)
        sent = [r.query_params for r in s.requests("/stripe/v1/events")]
        assert sent == [{"limit": "100"}, {"limit": "100", "starting_after": "evt_2"}]
        assert await s.cursor("stripe", "events") == {
            "since": 1_724_000_003,
            "since_ts": 1_724_000_003.0,
        }
        second = await s.run("stripe", "events")
        assert s.requests("/stripe/v1/events")[-1].query_params == {
            "limit": "100", "created[gte]": "1724000003",
        }  # fmt: skip
        assert (second.counts.created, second.counts.unchanged) == (1, 1)

    scenario(sandbox, tmp_path, test)


def test_retell_calls(sandbox: SandboxHandle, tmp_path: Path) -> None:
    async def test(s: Shipped) -> None:
        first = await s.run("retell", "calls")
        assert (first.counts.created, first.counts.pages) == (3, 2)
        sent = [r.json for r in s.requests("/retell/v3/list-calls")]
        assert sent == [
            {"sort_order": "ascending", "limit": 1000},
            {"sort_order": "ascending", "limit": 1000, "pagination_key": "k2"},
        ]
        second = await s.run("retell", "calls")
        assert s.requests("/retell/v3/list-calls")[-1].json == {
            "sort_order": "ascending",
            "limit": 1000,
            "filter_criteria": {
                "start_timestamp": {"op": "ge", "type": "number", "value": 1_749_538_800_003}
            },
        }
        assert (second.counts.created, second.counts.unchanged) == (1, 1)

    scenario(sandbox, tmp_path, test)
