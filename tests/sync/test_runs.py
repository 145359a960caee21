"""Runs: commit per page and resume after a failure, the cursor moving only on success, the
lease against overlapping runs, conflicts, unchanged records, retries, sync events for flows,
and errors that name what went wrong."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from gateway.processing.dispatcher import Dispatcher
from gateway.store.entities import EventQuery, JobQuery
from tests.helpers.sync_harness import T0, Harness, query, thing

CURSOR_SINCE = """
    endpoint: list_things
    schedule: {every: 15m}
    paginate:
      style: cursor
      cursor_param: after
      cursor: "{{ response.next | default('') }}"
    records: "{{ response.data }}"
    record: {id: "{{ record.id }}", updated_at: "{{ record.updated }}"}
    incremental: {style: since, param: since}
    conflict: CONFLICT
"""


class Pages:
    """Records changed since `since`, two a page, cursor = index; `fail` makes pages fail."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.fail: set[str] = set()  # cursors whose page answers 500

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = query(request)
        after = params.get("after", "0")
        if after in self.fail:
            return httpx.Response(500, json={"error": "boom"})
        since = params.get("since")
        rows = [r for r in self.records if since is None or r["updated"] >= since]
        start = int(after)
        answer: dict[str, Any] = {"data": rows[start : start + 2]}
        if start + 2 < len(rows):
            answer["next"] = str(start + 2)
        return httpx.Response(200, json=answer)


def sync(conflict: str = "last_write_wins") -> str:
    return CURSOR_SINCE.replace("CONFLICT", conflict)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_failed_run_keeps_its_pages_and_the_next_run_resumes_there(tmp_path: Path) -> None:
    provider = Pages([thing(1), thing(2)])

    async def main() -> None:
        async with Harness(tmp_path, sync(), provider) as h:
            assert (await h.run()).status == "succeeded"
            committed = await h.cursor()
            assert committed["since"] == thing(2)["updated"]

            provider.records += [thing(n) for n in range(3, 9)]  # t3..t8 changed since
            provider.fail = {"4"}  # the third page (t6, t7) fails, retries included
            h.requests.clear()
            failed = await h.run()
            assert failed.status == "failed"
            assert "HTTP 500" in (failed.error or "")
            assert failed.counts.pages == 2 and failed.counts.created == 3  # t3..t5 (t2 again)
            assert len(h.sleeps) == 2  # three attempts at the failing page
            assert await h.cursor() == committed  # the cursor moves only when a run commits
            resume = json.loads((await h.state()).resume or "{}")
            assert resume["position"] == {"cursor": "4"}
            assert (await h.state()).run_id is None  # the lease was given up
            assert await h.record("t5") is not None and await h.record("t6") is None
            [logged, _] = await h.runs()
            assert (logged.status, logged.counts.pages, logged.counts.created) == ("failed", 2, 3)

            provider.fail = set()
            h.requests.clear()
            resumed = await h.run()
            assert resumed.status == "succeeded" and resumed.resumed
            first = query(h.requests[0])
            assert first == {"after": "4", "since": committed["since"]}  # same state as before
            assert (resumed.counts.created, resumed.counts.pages) == (3, 2)  # t6, t7, t8
            assert await h.counts() == (8, 0)
            assert (await h.cursor())["since"] == thing(8)["updated"]
            assert (await h.state()).resume is None

    run(main())


def test_a_forced_full_run_ignores_the_resume_point(tmp_path: Path) -> None:
    provider = Pages([thing(n) for n in range(1, 6)])
    provider.fail = {"2"}

    async def main() -> None:
        async with Harness(tmp_path, sync(), provider) as h:
            assert (await h.run()).status == "failed"
            provider.fail = set()
            h.requests.clear()
            full = await h.run(full=True)
            assert full.status == "succeeded" and full.full and not full.resumed
            assert query(h.requests[0]) == {}
            assert (full.counts.unchanged, full.counts.created) == (2, 3)

    run(main())


def test_an_older_incoming_record_is_a_conflict_and_is_not_applied(tmp_path: Path) -> None:
    provider = Pages([thing(1, updated=50, name="newest")])

    async def main() -> None:
        async with Harness(tmp_path, sync(), provider) as h:
            assert (await h.run()).counts.created == 1
            provider.records = [thing(1, updated=20, name="stale")]
            stale = await h.run(full=True)
            assert (stale.status, stale.counts.conflicts, stale.counts.updated) == (
                "succeeded", 1, 0,
            )  # fmt: skip
            assert (await h.data("t1"))["name"] == "newest"
            [logged, _] = await h.runs()
            assert logged.counts.conflicts == 1

            provider.records = [thing(1, updated=60, name="newer still")]
            newer = await h.run(full=True)
            assert (newer.counts.conflicts, newer.counts.updated) == (0, 1)
            assert (await h.data("t1"))["name"] == "newer still"

    run(main())


def test_provider_wins_applies_an_older_record_and_still_counts_it(tmp_path: Path) -> None:
    provider = Pages([thing(1, updated=50, name="newest")])

    async def main() -> None:
        async with Harness(tmp_path, sync("provider_wins"), provider) as h:
            await h.run()
            provider.records = [thing(1, updated=20, name="stale")]
            stale = await h.run(full=True)
            assert (stale.counts.conflicts, stale.counts.updated) == (1, 1)
            assert (await h.data("t1"))["name"] == "stale"

    run(main())


def test_unchanged_records_are_not_rewritten(tmp_path: Path) -> None:
    provider = Pages([thing(1), thing(2), thing(3)])

    async def main() -> None:
        async with Harness(tmp_path, sync(), provider) as h:
            await h.run()
            before = await h.store.reader.execute_fetchall(
                "SELECT record_id, synced_at FROM records"
            )
            h.clock.now += 3600
            again = await h.run(full=True)
            assert (again.counts.unchanged, again.counts.updated, again.counts.created) == (3, 0, 0)
            after = await h.store.reader.execute_fetchall(
                "SELECT record_id, synced_at FROM records"
            )
            assert sorted(before) == sorted(after)

    run(main())


def test_two_runs_of_one_sync_never_overlap(tmp_path: Path) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(_request: httpx.Request) -> httpx.Response:
        entered.set()
        await release.wait()
        return httpx.Response(200, json={"data": [thing(1)]})

    async def main() -> None:
        async with Harness(tmp_path, sync(), slow) as h:
            first = asyncio.create_task(h.run())
            await entered.wait()
            second = await h.run()
            assert second.status == "skipped" and second.run_id is None
            other_tenant = asyncio.create_task(h.run(tenant="demo"))  # another sync key
            await asyncio.sleep(0.05)
            release.set()
            assert (await first).status == "succeeded"
            assert (await other_tenant).status == "succeeded"
            assert len(await h.runs()) == 2  # a skipped run is not logged
            assert (await h.run()).status == "succeeded"  # the lease was given back

    run(main())


def test_a_run_whose_process_died_is_taken_over_after_its_lease(tmp_path: Path) -> None:
    provider = Pages([thing(1)])

    async def main() -> None:
        async with Harness(tmp_path, sync(), provider, lease=60) as h:
            held = await h.store.acquire_sync(h.key, "run_dead", now=T0, lease_until=T0 + 60)
            assert held is not None
            assert (await h.run()).status == "skipped"
            h.clock.now += 61
            taken = await h.run()
            assert taken.status == "succeeded"
            dead = await h.store.get_sync_run("run_dead")
            assert dead is not None and dead.status == "failed"
            assert "interrupted" in (dead.error or "")

    run(main())


def test_transient_errors_are_retried_with_the_integrations_backoff(tmp_path: Path) -> None:
    answers = [
        httpx.Response(503, json={}),
        httpx.Response(429, json={}, headers={"Retry-After": "7"}),
        httpx.Response(200, json={"data": [thing(1)]}),
    ]

    async def main() -> None:
        async with Harness(tmp_path, sync(), lambda _r: answers.pop(0)) as h:
            summary = await h.run()
            assert summary.status == "succeeded"
            assert h.sleeps == [2.0, 7.0]

    run(main())


def test_errors_name_what_went_wrong(tmp_path: Path) -> None:
    cases = [
        ('records: "{{ response.data }}"', {"data": {"not": "a list"}}, "expected a list"),
        ('records: "{{ response.data }}"', {"data": [{"name": "no id"}]}, "record 0: id"),
        ('records: "{{ response.missing.deep }}"', {"data": []}, "records"),
    ]
    for index, (records, answer, expected) in enumerate(cases):
        spec = sync().replace('records: "{{ response.data }}"', records)
        folder = tmp_path / str(index)
        folder.mkdir()

        async def main(spec: str = spec, answer: Any = answer, folder: Path = folder) -> str:
            async with Harness(folder, spec, lambda _r: httpx.Response(200, json=answer)) as h:
                summary = await h.run()
                assert summary.status == "failed"
                [logged] = await h.runs()
                assert logged.error == summary.error
                return summary.error or ""

        assert expected in run(main())


def test_pagination_that_does_not_advance_is_an_error(tmp_path: Path) -> None:
    def stuck(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [thing(1)], "next": "2"})

    async def main() -> None:
        async with Harness(tmp_path, sync(), stuck) as h:
            summary = await h.run()
            assert summary.status == "failed"
            assert "does not advance" in (summary.error or "")
            assert len(h.requests) == 2

    run(main())


def test_a_next_url_on_another_host_is_refused(tmp_path: Path) -> None:
    spec = """
        endpoint: list_things
        schedule: {every: 1h}
        paginate: {style: next_url, next: "{{ response.next }}"}
        records: "{{ response.data }}"
        record: {id: "{{ record.id }}"}
    """

    def evil(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [thing(1)], "next": "https://evil.test/steal"})

    async def main() -> None:
        async with Harness(tmp_path, spec, evil) as h:
            summary = await h.run()
            assert summary.status == "failed"
            assert "not the api's host" in (summary.error or "")
            assert len(h.requests) == 1  # the credentials never left for evil.test
            assert await h.counts() == (1, 0)  # the first page was committed

    run(main())


FLOW = """
    kind: flow
    name: notice-things
    event: thing.changed
    actions:
      - name: look-up
        call:
          endpoint: acme.list_things
          query: {id: "{{ event.data.id }}", change: "{{ event.data.change }}"}
"""


def test_sync_events_feed_flows_like_webhooks(tmp_path: Path) -> None:
    spec = """
        endpoint: list_things
        schedule: {every: 15m}
        records: "{{ response.data }}"
        record:
          id: "{{ record.id }}"
          updated_at: "{{ record.updated }}"
          deleted: "{{ record.gone | default(false) }}"
        emit: {created: thing.changed, updated: thing.changed, deleted: thing.gone}
    """
    provider = Pages([thing(1), thing(2)])

    async def main() -> None:
        async with Harness(tmp_path, spec, provider, extra={"flow.yaml": FLOW}) as h:
            first = await h.run()
            assert first.counts.created == 2 and h.events_woken == 1
            provider.records = [thing(1, updated=9, name="renamed"), thing(2, updated=9, gone=True)]
            await h.run()
            again = await h.run(full=True)  # the same versions: no new events
            assert again.counts.unchanged == 2

            events = await h.store.list_events(EventQuery(limit=10))
            assert sorted(e.type or "" for e in events) == [
                "sync.things.created", "sync.things.created", "sync.things.deleted",
                "sync.things.updated",
            ]  # fmt: skip
            updated = next(e for e in events if e.type == "sync.things.updated")
            assert json.loads(updated.body)["record"]["name"] == "renamed"

            dispatcher = Dispatcher(h.config, h.store)
            assert await dispatcher.run_once() == 4
            jobs = await h.store.list_jobs(JobQuery(limit=10))
            assert sorted(json.loads(j.context)["data"]["change"] for j in jobs) == [
                "created",
                "created",
                "updated",
            ]  # fmt: skip (thing.gone has no flow)
            job = jobs[0]
            assert (job.flow, job.integration, job.tenant) == ("notice-things", "acme", "default")
            statuses = {e.status for e in await h.store.list_events(EventQuery(limit=10))}
            assert statuses == {"dispatched"}  # thing.gone is emitted; no flow wants it

    run(main())


def test_a_webhook_event_named_like_a_sync_event_is_not_one(tmp_path: Path) -> None:
    from gateway.config.pipeline import is_sync_event

    assert not is_sync_event("sync.things.created", {})
    assert is_sync_event("sync.things.created", {"x-gateway-sync": "things"})
