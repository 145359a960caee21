"""Every pagination style and incremental scheme, end to end: a declared sync runs against a
mock provider and its records, sync log and cursor land in SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.sync_harness import BASE, Harness, body, query, thing

RECORDS = [thing(n) for n in range(1, 6)]  # t1..t5, updated at minutes 1..5


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_page_numbers_until_a_short_page(tmp_path: Path) -> None:
    sync = """
        endpoint: list_things
        schedule: {every: 15m}
        paginate: {style: page, page_param: page, size_param: per_page, size: 2}
        records: "{{ response.results }}"
        record: {id: "{{ record.id }}", updated_at: "{{ record.updated }}"}
    """

    def handler(request: httpx.Request) -> httpx.Response:
        page, size = int(query(request)["page"]), int(query(request)["per_page"])
        return httpx.Response(200, json={"results": RECORDS[(page - 1) * size : page * size]})

    async def main() -> None:
        async with Harness(tmp_path, sync, handler) as h:
            summary = await h.run()
            assert summary.status == "succeeded", summary.error
            assert summary.counts.as_dict() == {
                "fetched": 5, "created": 5, "updated": 0, "unchanged": 0, "deleted": 0,
                "conflicts": 0, "pages": 3,
            }  # fmt: skip
            assert [query(r)["page"] for r in h.requests] == ["1", "2", "3"]
            assert h.requests[0].headers["authorization"] == "Bearer sk_test_acme"
            assert await h.counts() == (5, 0)
            assert (await h.data("t3"))["name"] == "thing 3"
            [logged] = await h.runs()
            assert (logged.status, logged.counts.pages, logged.full) == ("succeeded", 3, True)

    run(main())


PAGE_WITH_HAS_MORE = """
    endpoint: list_things
    schedule: {every: 1h}
    paginate: {style: page, page_param: p, first_page: 0, has_more: "{{ response.more }}"}
    records: "{{ response.results }}"
    record: {id: "{{ record.id }}"}
"""


def pages_from_zero_while_more(request: httpx.Request) -> httpx.Response:
    page = int(query(request)["p"])
    chunk = RECORDS[page * 2 : page * 2 + 2]
    return httpx.Response(200, json={"results": chunk, "more": page < 2})


CALCOM_TAKE_AND_SKIP = """
    endpoint: list_things
    schedule: {every: 15m}
    paginate:
      style: offset
      offset_param: skip
      limit_param: take
      limit: 2
      has_more: "{{ response.pagination.hasNextPage }}"
    records: "{{ response.data }}"
    record: {id: "{{ record.id }}", updated_at: "{{ record.updated }}"}
"""


def take_and_skip(request: httpx.Request) -> httpx.Response:
    skip, take = int(query(request)["skip"]), int(query(request)["take"])
    chunk = RECORDS[skip : skip + take]
    more = skip + take < len(RECORDS)
    return httpx.Response(200, json={"data": chunk, "pagination": {"hasNextPage": more}})


@pytest.mark.parametrize(
    ("sync", "handler", "param", "sent"),
    [
        pytest.param(
            PAGE_WITH_HAS_MORE, pages_from_zero_while_more, "p", ["0", "1", "2"],
            id="page-numbers-with-has-more-and-first-page-zero",
        ),
        pytest.param(
            CALCOM_TAKE_AND_SKIP, take_and_skip, "skip", ["0", "2", "4"],
            id="offset-and-limit-like-calcom-take-and-skip",
        ),
    ],
)  # fmt: skip
def test_three_pages_of_five_records(
    tmp_path: Path,
    sync: str,
    handler: Callable[[httpx.Request], httpx.Response],
    param: str,
    sent: list[str],
) -> None:
    async def main() -> None:
        async with Harness(tmp_path, sync, handler) as h:
            summary = await h.run()
            assert (summary.status, summary.counts.pages, summary.counts.created) == (
                "succeeded", 3, 5,
            )  # fmt: skip
            assert [query(r)[param] for r in h.requests] == sent

    run(main())


def test_cursor_in_the_query_like_stripe_starting_after(tmp_path: Path) -> None:
    sync = """
        endpoint: list_things
        schedule: {every: 1h}
        query: {limit: 2}
        paginate:
          style: cursor
          cursor_param: starting_after
          cursor: "{{ response.data[-1].id if response.data else '' }}"
          has_more: "{{ response.has_more }}"
        records: "{{ response.data }}"
        record: {id: "{{ record.id }}"}
    """

    def handler(request: httpx.Request) -> httpx.Response:
        after = query(request).get("starting_after")
        start = next(i + 1 for i, r in enumerate(RECORDS) if r["id"] == after) if after else 0
        chunk = RECORDS[start : start + 2]
        return httpx.Response(200, json={"data": chunk, "has_more": start + 2 < len(RECORDS)})

    async def main() -> None:
        async with Harness(tmp_path, sync, handler) as h:
            summary = await h.run()
            assert (summary.status, summary.counts.created) == ("succeeded", 5)
            assert [query(r).get("starting_after") for r in h.requests] == [None, "t2", "t4"]
            assert all(query(r)["limit"] == "2" for r in h.requests)

    run(main())


def test_cursor_in_the_body_like_retell_pagination_key(tmp_path: Path) -> None:
    sync = """
        endpoint: search_things
        schedule: {every: 1h}
        body: {sort_order: ascending, filter: {kind: call}}
        paginate:
          style: cursor
          in: body
          cursor_param: page.key
          size_param: limit
          size: 2
          cursor: "{{ response.pagination_key | default('', true) }}"
          has_more: "{{ response.has_more }}"
        records: "{{ response['items'] }}"
        record: {id: "{{ record.id }}"}
    """

    def handler(request: httpx.Request) -> httpx.Response:
        sent = body(request)
        start = int((sent.get("page") or {}).get("key", "0"))
        more = start + 2 < len(RECORDS)
        answer = {"items": RECORDS[start : start + 2], "has_more": more}
        answer["pagination_key"] = str(start + 2) if more else None
        return httpx.Response(200, json=answer)

    async def main() -> None:
        async with Harness(tmp_path, sync, handler) as h:
            summary = await h.run()
            assert (summary.status, summary.counts.created) == ("succeeded", 5)
            sent = [body(r) for r in h.requests]
            assert [s.get("page") for s in sent] == [None, {"key": "2"}, {"key": "4"}]
            assert sent[1] == {
                "sort_order": "ascending", "filter": {"kind": "call"}, "limit": 2,
                "page": {"key": "2"},
            }  # fmt: skip
            assert all(r.method == "POST" and r.url.path == "/things/search" for r in h.requests)

    run(main())


def test_link_header_next(tmp_path: Path) -> None:
    sync = """
        endpoint: list_things
        schedule: {every: 1h}
        query: {per_page: 2}
        paginate: {style: link_header}
        records: "{{ response }}"
        record: {id: "{{ record.id }}"}
    """

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(query(request).get("page", "1"))
        links = [f'<{BASE}/things?page=1&per_page=2>; rel="first"']
        if page * 2 < len(RECORDS):
            links.append(f'<{BASE}/things?page={page + 1}&per_page=2>; rel="next last"')
        chunk = RECORDS[(page - 1) * 2 : page * 2]
        return httpx.Response(200, json=chunk, headers={"Link": ", ".join(links)})

    async def main() -> None:
        async with Harness(tmp_path, sync, handler) as h:
            summary = await h.run()
            assert (summary.status, summary.counts.created, summary.counts.pages) == (
                "succeeded", 5, 3,
            )  # fmt: skip
            assert [str(r.url) for r in h.requests] == [
                f"{BASE}/things?per_page=2",
                f"{BASE}/things?page=2&per_page=2",
                f"{BASE}/things?page=3&per_page=2",
            ]
            assert all(r.headers["authorization"] == "Bearer sk_test_acme" for r in h.requests)

    run(main())


GRAPH_SYNC = """
    endpoint: calendar
    params: {user: "{{ tenant.vars.user | default('me') }}"}
    query: {startDateTime: "{{ (now | shift('-30d') | isoformat)[:10] }}"}
    schedule: {every: 30m}
    paginate: {style: next_url, next: "{{ response['@odata.nextLink'] | default('') }}"}
    records: "{{ response.value }}"
    record:
      id: "{{ record.id }}"
      updated_at: "{{ record.lastModifiedDateTime | default('') }}"
      deleted: "{{ '@removed' in record }}"
    incremental:
      style: token
      token: "{{ response['@odata.deltaLink'] | default('') }}"
      token_is_url: true
      expired_status: 410
"""


class Graph:
    """calendarView/delta: next links, then a delta link that knows what changed since."""

    def __init__(self) -> None:
        self.events = {f"e{n}": {"id": f"e{n}", "subject": f"event {n}"} for n in range(1, 4)}
        self.changes: list[dict[str, Any]] = []
        self.expired = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = query(request)
        if "$deltatoken" in params:
            if self.expired:
                return httpx.Response(410, json={"error": {"code": "syncStateNotFound"}})
            return httpx.Response(200, json={"value": self.changes, **self._delta()})
        if "$skiptoken" in params:
            return httpx.Response(200, json={"value": [self.events["e3"]], **self._delta()})
        first = [self.events["e1"], self.events["e2"]]
        nxt = f"{BASE}/users/me/delta?$skiptoken=page2"
        return httpx.Response(200, json={"value": first, "@odata.nextLink": nxt})

    def _delta(self) -> dict[str, str]:
        return {"@odata.deltaLink": f"{BASE}/users/me/delta?$deltatoken=d{len(self.changes)}"}


def test_next_url_in_the_body_then_delta_link_like_graph(tmp_path: Path) -> None:
    graph = Graph()

    async def main() -> None:
        async with Harness(tmp_path, GRAPH_SYNC, graph) as h:
            first = await h.run()
            assert (first.status, first.counts.created, first.counts.pages) == ("succeeded", 3, 2)
            assert first.full
            assert await h.cursor() == {"token": f"{BASE}/users/me/delta?$deltatoken=d0"}
            assert "startDateTime" in query(h.requests[0])
            assert h.requests[1].url.params["$skiptoken"] == "page2"
            assert "startDateTime" not in query(h.requests[1])  # the link carries its own
            assert h.requests[1].headers["prefer"] == "odata.maxpagesize=2"

            graph.changes = [
                {"id": "e2", "@removed": {"reason": "deleted"}},
                {"id": "e4", "subject": "event 4"},
            ]
            h.requests.clear()
            second = await h.run()
            assert second.status == "succeeded" and not second.full
            assert str(h.requests[0].url) == f"{BASE}/users/me/delta?$deltatoken=d0"
            assert (second.counts.created, second.counts.deleted) == (1, 1)
            removed = await h.record("e2")
            assert removed is not None and removed.deleted
            assert await h.counts() == (3, 1)
            assert await h.cursor() == {"token": f"{BASE}/users/me/delta?$deltatoken=d2"}

    run(main())


def test_an_expired_delta_link_410_forces_a_full_resync(tmp_path: Path) -> None:
    graph = Graph()

    async def main() -> None:
        async with Harness(tmp_path, GRAPH_SYNC, graph) as h:
            assert (await h.run()).status == "succeeded"
            graph.expired = True
            h.requests.clear()
            again = await h.run()
            assert again.status == "succeeded", again.error
            assert again.full
            assert [r.url.params.get("$deltatoken") for r in h.requests] == ["d0", None, None]
            assert "startDateTime" in query(h.requests[1])  # started over from the endpoint
            assert (again.counts.unchanged, again.counts.pages) == (3, 2)
            assert await h.cursor() == {"token": f"{BASE}/users/me/delta?$deltatoken=d0"}
            [latest, _first] = await h.runs()
            assert latest.full and latest.status == "succeeded"

    run(main())


GOOGLE_SYNC = """
    endpoint: list_things
    schedule: {every: 30m}
    query: {maxResults: 2, showDeleted: "true"}
    paginate:
      style: cursor
      cursor_param: pageToken
      cursor: "{{ response.nextPageToken | default('') }}"
    records: "{{ response['items'] | default([]) }}"
    record:
      id: "{{ record.id }}"
      updated_at: "{{ record.updated | default('') }}"
      deleted: "{{ record.status == 'cancelled' }}"
    incremental:
      style: token
      param: syncToken
      token: "{{ response.nextSyncToken | default('') }}"
      expired_status: 410
"""


class Google:
    """events.list: page tokens; the last page has nextSyncToken; 410 for an expired token."""

    def __init__(self) -> None:
        self.items = [dict(thing(n), status="confirmed") for n in range(1, 4)]
        self.changes: list[dict[str, Any]] = []
        self.valid_tokens = {"sync-1"}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = query(request)
        token = params.get("syncToken")
        if token is not None and token not in self.valid_tokens:
            return httpx.Response(410, json={"error": {"code": 410, "message": "Gone"}})
        source = self.changes if token else self.items
        start = int(params.get("pageToken", "0"))
        answer: dict[str, Any] = {"items": source[start : start + 2]}
        if start + 2 < len(source):
            answer["nextPageToken"] = str(start + 2)
        else:
            answer["nextSyncToken"] = "sync-2" if token else "sync-1"
            self.valid_tokens.add(answer["nextSyncToken"])
        return httpx.Response(200, json=answer)


def test_sync_token_like_google_with_cancelled_events(tmp_path: Path) -> None:
    google = Google()

    async def main() -> None:
        async with Harness(tmp_path, GOOGLE_SYNC, google) as h:
            first = await h.run()
            assert (first.status, first.counts.created, first.counts.pages) == ("succeeded", 3, 2)
            assert [query(r).get("pageToken") for r in h.requests] == [None, "2"]
            assert await h.cursor() == {"token": "sync-1"}

            google.changes = [
                dict(thing(1, updated=10), status="cancelled"),
                dict(thing(2, updated=11), status="confirmed", name="renamed"),
                dict(thing(7, updated=12), status="cancelled"),  # never seen: a tombstone
            ]
            h.requests.clear()
            second = await h.run()
            assert second.status == "succeeded" and not second.full
            assert [query(r).get("syncToken") for r in h.requests] == ["sync-1", "sync-1"]
            assert [query(r).get("pageToken") for r in h.requests] == [None, "2"]
            assert (second.counts.updated, second.counts.deleted) == (1, 2)
            assert (await h.record("t1")).deleted  # type: ignore[union-attr]
            assert (await h.data("t2"))["name"] == "renamed"
            assert await h.cursor() == {"token": "sync-2"}

    run(main())


def test_google_410_gone_forces_a_full_resync(tmp_path: Path) -> None:
    google = Google()

    async def main() -> None:
        async with Harness(tmp_path, GOOGLE_SYNC, google) as h:
            assert (await h.run()).status == "succeeded"
            google.valid_tokens.clear()  # the stored token expired
            h.requests.clear()
            again = await h.run()
            assert again.status == "succeeded", again.error
            assert again.full
            assert [query(r).get("syncToken") for r in h.requests] == ["sync-1", None, None]
            assert (again.counts.unchanged, again.counts.created) == (3, 0)
            assert await h.cursor() == {"token": "sync-1"}

    run(main())


def test_410_again_during_the_full_resync_fails_the_run(tmp_path: Path) -> None:
    def gone(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(410, json={"error": "gone"})

    async def main() -> None:
        async with Harness(tmp_path, GOOGLE_SYNC, gone) as h:
            summary = await h.run()
            assert summary.status == "failed"
            assert "410" in (summary.error or "")
            assert len(h.requests) == 2

    run(main())


SINCE_SYNC = """
    endpoint: list_things
    schedule: {every: 15m}
    query: {order: updated, mode: "{{ 'full' if state.full else 'changes' }}"}
    paginate:
      style: offset
      offset_param: skip
      limit_param: take
      limit: 2
    records: "{{ response.data }}"
    record: {id: "{{ record.id }}", updated_at: "{{ record.updated }}"}
    incremental: {style: since, param: updatedSince}
"""


class Since:
    """A list endpoint filtered by updatedSince (inclusive), oldest change first."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = query(request)
        since = params.get("updatedSince")
        rows = sorted(
            (r for r in self.records if since is None or r["updated"] >= since),
            key=lambda r: r["updated"],
        )
        skip, take = int(params["skip"]), int(params["take"])
        return httpx.Response(200, json={"data": rows[skip : skip + take]})


def test_since_timestamp_in_the_query(tmp_path: Path) -> None:
    provider = Since([thing(n) for n in range(1, 4)])

    async def main() -> None:
        async with Harness(tmp_path, SINCE_SYNC, provider) as h:
            first = await h.run()
            assert (first.status, first.counts.created, first.full) == ("succeeded", 3, True)
            assert "updatedSince" not in query(h.requests[0])
            assert query(h.requests[0])["mode"] == "full"  # templates see `state`
            newest = thing(3)["updated"]
            assert (await h.cursor())["since"] == newest

            provider.records[1] = thing(2, updated=9, name="changed")
            h.requests.clear()
            second = await h.run()
            assert second.status == "succeeded" and not second.full
            assert query(h.requests[0])["updatedSince"] == newest
            assert query(h.requests[0])["mode"] == "changes"
            assert (second.counts.fetched, second.counts.updated, second.counts.unchanged) == (
                2, 1, 1,
            )  # fmt: skip
            assert (await h.cursor())["since"] == thing(2, updated=9)["updated"]

            h.requests.clear()
            forced = await h.run(full=True)
            assert forced.full and "updatedSince" not in query(h.requests[0])
            assert forced.counts.unchanged == 3

    run(main())


def test_since_in_the_body_through_a_value_expression_like_retell(tmp_path: Path) -> None:
    sync = """
        endpoint: search_things
        schedule: {every: 1h}
        body: {sort_order: ascending}
        paginate:
          style: cursor
          in: body
          cursor_param: pagination_key
          cursor: "{{ response.pagination_key | default('', true) }}"
        records: "{{ response['items'] }}"
        record: {id: "{{ record.call_id }}", updated_at: "{{ record.start_timestamp }}"}
        incremental:
          style: since
          in: body
          param: filter_criteria.start_timestamp
          value: "{{ {'op': 'ge', 'type': 'number', 'value': state.since - 3600000} }}"
    """
    calls = [{"call_id": f"c{n}", "start_timestamp": 1_749_542_400_000 + n} for n in range(3)]

    def handler(request: httpx.Request) -> httpx.Response:
        criteria = (body(request).get("filter_criteria") or {}).get("start_timestamp")
        low = criteria["value"] if criteria else 0
        return httpx.Response(
            200, json={"items": [c for c in calls if c["start_timestamp"] >= low]}
        )

    async def main() -> None:
        async with Harness(tmp_path, sync, handler) as h:
            assert (await h.run()).counts.created == 3
            assert "filter_criteria" not in body(h.requests[0])
            assert await h.cursor() == {"since": 1_749_542_400_002, "since_ts": 1_749_542_400.002}
            await h.run()
            assert body(h.requests[1]) == {
                "sort_order": "ascending",
                "filter_criteria": {
                    "start_timestamp": {"op": "ge", "type": "number", "value": 1_749_538_800_002}
                },
            }

    run(main())
