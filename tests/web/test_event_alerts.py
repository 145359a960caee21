"""Failures alert: the dispatch failures counter, failures logged at ERROR, events filtered by
status and time (store, admin API, `gateway events`), and bulk replay (store, API, CLI).

The store cases run on SQLite and PostgreSQL (skipped, saying why, when none is reachable).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.cli.main import main
from gateway.config.model import load_config
from gateway.config.pipeline import Mapped
from gateway.counters import Counters
from gateway.processing.dispatcher import Dispatcher, DispatchError
from gateway.processing.worker import LOG_LIMIT, Worker
from gateway.store import open_store
from gateway.store.entities import (
    Dispatch,
    EventQuery,
    Job,
    NewEvent,
    NewJob,
    StoredEvent,
)
from gateway.store.interfaces import Store
from gateway.web import metrics_page
from tests.helpers import REPO
from tests.helpers.app import ADMIN_TOKEN, AppFactory, admin
from tests.helpers.postgres import fresh_schema

NOW = 1_750_000_000.0
HOUR = 3600.0
ACME = """\
kind: integration
name: acme
webhook:
  verify: {scheme: token, secret: "${secret:ACME_TOKEN}", header: X-Token}
  event: {id: "{{ body.id }}", type: "{{ body.type }}"}
"""
ENV = {"ACME_TOKEN": "tok"}


def new_event(
    id: str, *, integration: str = "acme", tenant: str = "default", received_at: float = NOW
) -> NewEvent:
    body = json.dumps({"id": id, "type": "thing.made", "nested": {"n": 1}}).encode()
    return NewEvent(
        id, integration, tenant, id, f"p-{id}", "thing.made", received_at, '{"x-id": "7"}', body
    )


# evt_1 .. evt_6: what each became, an hour apart
STATUSES = {
    "evt_1": ("acme", "failed"),
    "evt_2": ("acme", "partial"),
    "evt_3": ("other", "failed"),
    "evt_4": ("acme", "dispatched"),
    "evt_5": ("acme", "failed"),
    "evt_6": ("acme", "ignored"),
}


def received(event_id: str, base: float = NOW) -> float:
    return base + HOUR * int(event_id.split("_")[1])


async def seed(store: Store, base: float = NOW) -> None:
    await store.insert_events(
        [
            new_event(id, integration=integration, received_at=received(id, base))
            for id, (integration, _) in STATUSES.items()
        ]
    )
    await store.commit_dispatches(
        [
            Dispatch(id, status, error=f"{id} broke" if status in ("failed", "partial") else None)
            for id, (_, status) in STATUSES.items()
        ]
    )


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    store = open_store(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    with fresh_schema() as url:
        yield url


# ---- the store ------------------------------------------------------------------------------


def test_events_are_listed_and_counted_by_status_and_time(database: str) -> None:
    async def main_() -> None:
        async with opened(database) as store:
            await seed(store)

            async def ids(**query: Any) -> list[str]:
                return [e.id for e in await store.list_events(EventQuery(**query))]

            assert await ids(status="failed") == ["evt_5", "evt_3", "evt_1"]
            assert await ids(status="partial") == ["evt_2"]
            assert await ids(status="failed", integration="acme") == ["evt_5", "evt_1"]
            assert await ids(since=received("evt_3")) == ["evt_6", "evt_5", "evt_4", "evt_3"]
            assert await ids(until=received("evt_3")) == ["evt_2", "evt_1"]  # before: exclusive
            assert await ids(status="failed", since=received("evt_2"), until=received("evt_5")) == [
                "evt_3"
            ]
            assert await ids(status="pending") == []
            assert await store.count_events() == 6
            assert await store.count_events(EventQuery(status="failed")) == 3
            assert await store.count_events(EventQuery(status="failed", integration="acme")) == 2
            assert await store.count_events(EventQuery(since=received("evt_5"), limit=1)) == 2

    asyncio.run(main_())


def test_bulk_replay_marks_what_matches_pending_again_in_one_call(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main_() -> None:
        async with opened(database) as store:
            await seed(store)
            query = EventQuery(status="failed", integration="acme", limit=10_000)
            assert await store.replay_events(query) == 2
            for id in ("evt_1", "evt_5"):
                got = await store.get_event(id)
                assert got is not None
                assert (got.status, got.replays, got.error) == ("pending", 1, None)
            untouched = {e.id: (e.status, e.replays) for e in await store.list_events(EventQuery())}
            assert untouched["evt_3"] == ("failed", 0)  # another integration
            assert untouched["evt_2"] == ("partial", 0)
            assert await store.replay_events(query) == 0  # nothing failed is left
            assert [e.id for e in await store.pending_events(10)] == ["evt_1", "evt_5"]

            # capped: the oldest first, never more than REPLAY_LIMIT in one call
            monkeypatch.setattr("gateway.store.rows.REPLAY_LIMIT", 2)
            everything = EventQuery(since=NOW, limit=10_000)
            assert await store.replay_events(everything) == 2
            replays = {e.id: e.replays for e in await store.list_events(EventQuery())}
            assert replays == {
                "evt_1": 2,
                "evt_2": 1,
                "evt_3": 0,
                "evt_4": 0,
                "evt_5": 1,
                "evt_6": 0,
            }
            assert await store.replay_events(EventQuery(since=NOW, limit=1)) == 1

    asyncio.run(main_())


# ---- the dispatcher and the worker: counted, logged at ERROR ---------------------------------


class _Queue:
    """Just what Dispatcher.run_once uses of a store."""

    def __init__(self, events: Sequence[StoredEvent]) -> None:
        self.events = list(events)
        self.committed: list[Dispatch] = []

    async def pending_events(self, limit: int) -> list[StoredEvent]:
        return self.events[:limit]

    async def commit_dispatches(self, dispatches: Sequence[Dispatch]) -> None:
        self.committed.extend(dispatches)


def _stored(id: str, integration: str, type: str = "thing.made") -> StoredEvent:
    return StoredEvent(id, integration, "default", None, type, NOW, "pending", {}, b"{}")


def _config(tmp_path: Path) -> Any:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "acme.yaml").write_text(ACME)
    return load_config(folder, ENV, templates_dir=tmp_path / "templates")


def test_dispatch_failures_are_counted_by_category_and_logged_at_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    failures = {
        "evt_map": DispatchError("rule thing.made: data.x: 'dict object' has no attribute 'x'"),
        "evt_flow": DispatchError("flow receipt action send: 'to' is undefined"),
        "evt_bug": KeyError("surprise"),
    }

    def map_stored(_integration: Any, event: StoredEvent) -> Any:
        if event.id in failures:
            raise failures[event.id]
        return Mapped([], [])  # nothing emitted: ignored, not a failure

    monkeypatch.setattr("gateway.processing.dispatcher.map_stored", map_stored)
    counters = Counters()
    events = [
        _stored("evt_gone", "gone"),
        *(_stored(id, "acme") for id in failures),
        _stored("evt_fine", "acme"),
    ]
    queue = _Queue(events)
    dispatcher = Dispatcher(_config(tmp_path), queue, counters=counters)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="gateway.processing.dispatcher"):
        assert asyncio.run(dispatcher.run_once()) == 5
    assert [(d.event_id, d.status, d.reason) for d in queue.committed] == [
        ("evt_gone", "failed", "integration_gone"),
        ("evt_map", "failed", "mapping"),
        ("evt_flow", "failed", "flow"),
        ("evt_bug", "failed", "internal"),
        ("evt_fine", "ignored", None),
    ]
    assert counters.dispatch_failures == {
        ("gone", "integration_gone"): 1,
        ("acme", "mapping"): 1,
        ("acme", "flow"): 1,
        ("acme", "internal"): 1,
    }
    failed = [r for r in caplog.records if "could not be dispatched" in r.getMessage()]
    assert len(failed) == 4
    assert {r.levelno for r in failed} == {logging.ERROR}


def test_partial_dispatches_count_and_a_reason_is_always_a_known_category(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    decided = {
        "evt_1": Dispatch("evt_1", "partial", error="rule x: data.y missing", reason="contract"),
        "evt_2": Dispatch("evt_2", "partial", error="flow f failed"),  # no category given
        "evt_3": Dispatch("evt_3", "failed", error="?", reason="the body said: secret-ish text"),
        "evt_4": Dispatch("evt_4", "dispatched"),
    }
    counters = Counters()
    queue = _Queue([_stored(id, "acme") for id in decided])
    dispatcher = Dispatcher(_config(tmp_path), queue, counters=counters)  # type: ignore[arg-type]
    dispatcher.dispatch = lambda event: decided[event.id]  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="gateway.processing.dispatcher"):
        asyncio.run(dispatcher.run_once())
    assert counters.dispatch_failures == {("acme", "contract"): 1, ("acme", "internal"): 2}
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "event evt_1 was dispatched in part: rule x: data.y missing"),
        (logging.ERROR, "event evt_2 was dispatched in part: flow f failed"),
    ]


def test_the_failures_counter_is_on_the_metrics_page() -> None:
    counters = Counters()
    counters.dispatch_failures[("calcom", "mapping")] += 3
    counters.dispatch_failures[("stripe", "flow")] += 1
    text = metrics_page.render(counters, job_counts={}, outbound={}).decode()
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    name = "gateway_dispatch_failures_total"
    assert found[(name, (("integration", "calcom"), ("reason", "mapping")))] == 3
    assert found[(name, (("integration", "stripe"), ("reason", "flow")))] == 1


def test_a_dead_job_is_logged_at_error_with_its_reason_cut_short(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = load_config(REPO / "integrations.d", {})
    worker = Worker(config, store=None, caller=None)  # type: ignore[arg-type]
    job = Job(
        "job_1", "k", "evt_1", "flow", "a", "call", "calcom", "default", None, "{}", "{}",
        "running", 5, 5, 0.0, None, None, 0.0, 0.0,
    )  # fmt: skip
    answer = "x" * 5000  # a provider's long answer
    with caplog.at_level(logging.WARNING, logger="gateway.processing.worker"):
        outcome = worker._dead(job, f"HTTP 422: {answer}")
    assert outcome.status == "dead"
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert "job job_1 (flow/a) is dead: HTTP 422: xxx" in record.getMessage()
    assert len(record.getMessage()) < LOG_LIMIT + 100


# ---- the admin API --------------------------------------------------------------------------


# a day ago (the gateway purges what is older than its retention when it starts)
RECENT = float(int(time.time()) // 60 * 60) - 24 * HOUR


def _seeded_client(make_client: AppFactory, tmp_path: Path) -> Any:
    """A gateway whose database already holds the seeded events (the app's store file)."""

    async def prepare() -> None:
        async with opened(f"sqlite:///{tmp_path / 'gateway.db'}") as store:
            await seed(store, RECENT)

    asyncio.run(prepare())
    return make_client({"acme.yaml": ACME}, ENV)


def _post(client: Any, path: str, body: object) -> Any:
    return client.post(
        path, content=json.dumps(body), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )


def _get(client: Any, path: str) -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


def test_the_admin_api_filters_events_by_status_and_time(
    make_client: AppFactory, tmp_path: Path
) -> None:
    client = _seeded_client(make_client, tmp_path)

    def ids(params: str) -> list[str]:
        page = admin(client, f"/admin/api/events?{params}")
        assert isinstance(page, dict)
        return [e["id"] for e in page["events"]]

    assert ids("status=failed") == ["evt_5", "evt_3", "evt_1"]
    assert ids("status=partial") == ["evt_2"]
    assert ids("status=failed&integration=acme") == ["evt_5", "evt_1"]
    since = datetime.fromtimestamp(received("evt_1", RECENT), UTC).isoformat()  # ISO 8601
    assert ids(f"since={quote(since)}&until={received('evt_3', RECENT)}") == ["evt_2", "evt_1"]
    for bad, names in [
        ("status=broken", "status must be one of pending, dispatched, partial"),
        ("since=yesterday", "since must be an ISO 8601 time"),
        ("until=nan", "until must be an ISO 8601 time"),
    ]:
        response = _get(client, f"/admin/api/events?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "bad_request"
        assert names in response.json()["error"]["message"]


def test_the_admin_api_replays_in_bulk_counting_first_on_a_dry_run(
    make_client: AppFactory, tmp_path: Path
) -> None:
    client = _seeded_client(make_client, tmp_path)
    replay = "/admin/api/events/replay"
    dry = _post(client, replay, {"status": "failed", "integration": "acme", "dry_run": True})
    assert (dry.status_code, dry.json()) == (200, {"matched": 2})
    assert ids_with(client, "failed") == ["evt_5", "evt_3", "evt_1"]  # a dry run changes nothing

    done = _post(client, replay, {"status": "failed", "integration": "acme"})
    assert (done.status_code, done.json()) == (200, {"replayed": 2})
    # re-mapped from the current configuration (acme maps nothing now): ignored, replayed once
    deadline = time.monotonic() + 10
    event: dict[str, Any] = {}
    while time.monotonic() < deadline:
        found = admin(client, "/admin/api/events/evt_1")
        assert isinstance(found, dict)
        event = found
        if event["status"] != "pending":
            break
        time.sleep(0.05)
    assert (event["status"], event["replays"], event["error"]) == ("ignored", 1, None)
    assert ids_with(client, "failed") == ["evt_3"]

    for body, message in [
        ({}, "name at least one filter"),
        ({"dry_run": True}, "name at least one filter"),
        ({"status": None, "integration": ""}, "name at least one filter"),
        ({"status": "nope"}, "status must be one of"),
        ({"status": "failed", "color": "red"}, "unknown filter 'color'"),
        ({"since": "soon"}, "since must be an ISO 8601 time"),
        ({"status": "failed", "dry_run": "yes"}, "dry_run must be true or false"),
        (["failed"], "the body must be a JSON object"),
    ]:
        response = _post(client, replay, body)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "bad_request"
        assert message in response.json()["error"]["message"], body
    assert _post(client, replay, {"status": "failed", "dry_run": True}).json() == {"matched": 1}
    # the single event's replay is still where it was
    single = client.post(
        "/admin/api/events/evt_3/replay", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert single.json() == {"status": "replaying", "event_id": "evt_3"}


def ids_with(client: Any, status: str) -> list[str]:
    page = admin(client, f"/admin/api/events?status={status}")
    assert isinstance(page, dict)
    return [e["id"] for e in page["events"]]


# ---- the CLI: gateway events, gateway replay --------------------------------------------------


@pytest.fixture
def seeded_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    async def prepare() -> None:
        async with opened(url) as store:
            await seed(store)
            job = NewJob(
                id="job_1",
                idempotency_key="evt_2/0/0/receipt/send",
                event_id="evt_2",
                flow="receipt",
                action="send",
                kind="send",
                integration="twilio",
                tenant="default",
                schedule_key=None,
                spec="{}",
                context="{}",
                run_at=NOW,
                max_attempts=5,
                created_at=NOW,
            )
            await store.commit_dispatches([Dispatch("evt_2", "partial", [job], error="half")])

    asyncio.run(prepare())
    return url


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _state(url: str) -> dict[str, tuple[str, int]]:
    async def read() -> dict[str, tuple[str, int]]:
        async with opened(url) as store:
            return {e.id: (e.status, e.replays) for e in await store.list_events(EventQuery())}

    return asyncio.run(read())


def test_events_list_filters_and_show_prints_the_whole_event(
    seeded_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["events", "list", "--status", "failed", "--db", seeded_db], capsys)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["evt_5", "evt_3", "evt_1"]
    assert "acme/default  thing.made  received=2025-06-15T16:06:40Z  replays=0  evt_1 broke" in out
    code, out, _ = _run(
        ["events", "--status", "failed", "--integration", "other", "--db", seeded_db], capsys
    )
    assert (code, [line.split()[0] for line in out.splitlines()]) == (0, ["evt_3"])
    code, out, _ = _run(
        ["events", "list", "--since", "2025-06-15T19:00Z", "--limit", "2", "--db", seeded_db],
        capsys,
    )
    assert (code, [line.split()[0] for line in out.splitlines()]) == (0, ["evt_6", "evt_5"])

    code, out, _ = _run(["events", "show", "evt_2", "--db", seeded_db], capsys)
    assert code == 0
    assert "status: partial" in out
    assert "error: half" in out
    assert "  x-id: 7" in out  # the headers as stored
    assert '{\n  "id": "evt_2",\n  "type": "thing.made",\n  "nested": {\n    "n": 1\n  }\n}' in out
    assert "jobs: 1" in out
    assert "job_1  queued" in out and "receipt/send" in out


def test_events_command_errors_are_usage_errors(
    seeded_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, message in [
        (["events", "show"], "events show needs an EVENT_ID"),
        (["events", "show", "evt_99"], "no event evt_99"),
        (["events", "list", "evt_1"], "gateway events show evt_1"),
        (["events", "--since", "last week"], "'last week' is not a time"),
    ]:
        code, _, err = _run([*argv, "--db", seeded_db], capsys)
        assert code == 2, argv
        assert err.startswith("gateway events: ") and message in err, argv
        assert "Traceback" not in err
    with pytest.raises(SystemExit) as exited:
        main(["events", "--status", "lost", "--db", seeded_db])
    assert exited.value.code == 2


def test_replay_by_filter_counts_on_a_dry_run_then_queues(
    seeded_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _state(seeded_db)
    argv = ["replay", "--status", "failed", "--integration", "acme", "--db", seeded_db]
    since = ["--since", "2025-06-15T17:00Z"]  # after evt_1
    code, out, _ = _run([*argv, *since, "--dry-run"], capsys)
    assert (code, out) == (0, "1 event(s) match; nothing changed\n")
    code, out, _ = _run([*argv, "--dry-run"], capsys)
    assert (code, out) == (0, "2 event(s) match; nothing changed\n")
    assert _state(seeded_db) == before

    code, out, _ = _run([*argv, *since], capsys)
    assert (code, out) == (0, "queued 1 event(s) for dispatch again\n")
    after = _state(seeded_db)
    assert after["evt_5"] == ("pending", 1)
    assert after["evt_1"] == ("failed", 0)
    assert {k: v for k, v in after.items() if k != "evt_5"} == {
        k: v for k, v in before.items() if k != "evt_5"
    }

    code, out, _ = _run(["replay", "evt_1", "evt_3", "--db", seeded_db], capsys)  # by id, still
    assert code == 0 and "evt_3: queued for dispatch again" in out
    assert _state(seeded_db)["evt_3"] == ("pending", 1)


def test_replay_takes_ids_or_a_filter(seeded_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = _state(seeded_db)
    for argv, message in [
        (["replay", "evt_1", "--status", "failed"], "not both"),
        (["replay"], "name EVENT_IDs, or filter"),
        (["replay", "--dry-run"], "name EVENT_IDs, or filter"),
        (["replay", "evt_1", "--dry-run"], "--dry-run goes with a filter"),
        (["replay", "--since", "noon"], "'noon' is not a time"),
        (["replay", "evt_404"], "no event evt_404"),
    ]:
        code, _, err = _run([*argv, "--db", seeded_db], capsys)
        assert code == 2, argv
        assert err.startswith("gateway replay: ") and message in err, argv
    assert _state(seeded_db) == before
    with pytest.raises(SystemExit):
        main(["replay", "--status", "lost", "--db", seeded_db])
