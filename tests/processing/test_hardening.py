"""Regressions of a review: one bad job, event or request never harms the others, secrets at a
token body path are not stored, stale outcomes are not recorded."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from gateway.config.flows import Flow
from gateway.config.model import load_config
from gateway.processing.dispatcher import Dispatcher
from gateway.processing.worker import Worker
from gateway.replies import BodyTooLarge, read_body
from gateway.store import SQLiteStore
from gateway.store.entities import (
    Dispatch,
    Inserted,
    Job,
    JobOutcome,
    NewEvent,
    NewJob,
    StoredEvent,
)
from gateway.store.writer import EventWriter
from tests.helpers import REPO
from tests.helpers.app import ADMIN_TOKEN, AppFactory, admin
from tests.helpers.integrations import TOKEN_VERIFY, acme, webhook

CONFIG = load_config(REPO / "integrations.d", {})


def _job(attempts: int, max_attempts: int = 5) -> Job:
    spec = json.dumps({"endpoint": "calcom.get_booking", "params": {"uid": "x"}})
    return Job(
        "job_1", "k", "evt_1", "flow", "a", "call", "calcom", "default", None, spec, "{}",
        "running", attempts, max_attempts, 0.0, None, None, 0.0, 0.0,
    )  # fmt: skip


class _Exploding:
    async def call(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")


@pytest.mark.parametrize(("attempts", "status"), [(1, "queued"), (5, "dead")])
def test_an_unexpected_error_in_a_job_is_an_outcome_not_a_lost_batch(
    attempts: int, status: str
) -> None:
    worker = Worker(CONFIG, store=None, caller=_Exploding())  # type: ignore[arg-type]
    outcome = asyncio.run(worker.execute(_job(attempts)))
    assert outcome.status == status
    assert outcome.error is not None and "RuntimeError: boom" in outcome.error
    assert outcome.attempt == attempts


def test_one_event_that_breaks_dispatch_does_not_hold_up_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dispatcher = Dispatcher(CONFIG, store=None)  # type: ignore[arg-type]

    def explode(*_args: Any) -> Any:
        raise OSError("unexpected")

    monkeypatch.setattr("gateway.processing.dispatcher.map_stored", explode)
    event = StoredEvent(
        "evt_1", "calcom", "default", None, "BOOKING_CREATED", 0.0, "pending", {}, b"{}"
    )
    result = dispatcher.dispatch(event)
    assert (result.status, result.error) == ("failed", "OSError: unexpected")


def _receive(chunks: Sequence[bytes], *, complete: bool = True) -> Any:
    """An ASGI receive giving `chunks`; then, unless `complete`, the client goes away."""
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1 or not complete}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


def test_the_body_limit_counts_bytes_whatever_content_length_claims() -> None:
    with pytest.raises(BodyTooLarge):
        asyncio.run(read_body(_receive([b"x" * 400, b"x" * 400]), 512, "10"))
    assert asyncio.run(read_body(_receive([b"ab", b"c"]), 512, None)) == b"abc"
    with pytest.raises(BodyTooLarge):  # a declared length over the limit: nothing is read
        asyncio.run(read_body(_receive([b"ab"]), 512, "513"))


def test_a_client_that_goes_away_mid_body_is_not_an_error() -> None:
    with pytest.raises(ClientDisconnect):
        asyncio.run(read_body(_receive([b"ab", b"c"], complete=False), 512))


class _PickyStore:
    """Fails any batch holding the event with id evt_bad."""

    async def insert_events(self, events: Sequence[NewEvent]) -> list[Inserted]:
        if any(e.id == "evt_bad" for e in events):
            raise ValueError("cannot store evt_bad")
        return [Inserted(e.id, duplicate=False) for e in events]


def _event(event_id: str) -> NewEvent:
    return NewEvent(event_id, "acme", "default", event_id, None, None, 0.0, "{}", b"{}")


def test_a_batch_that_fails_is_retried_request_by_request() -> None:
    async def scenario() -> list[Any]:
        writer = EventWriter(_PickyStore())  # type: ignore[arg-type]
        writer.start()
        results = await asyncio.gather(
            *(writer.submit([_event(i)]) for i in ("evt_1", "evt_bad", "evt_2")),
            return_exceptions=True,
        )
        await writer.stop()
        return results

    first, bad, second = asyncio.run(scenario())
    assert isinstance(bad, ValueError)
    assert first == [Inserted("evt_1", duplicate=False)]
    assert second == [Inserted("evt_2", duplicate=False)]


def test_requests_repeating_each_other_in_one_commit_store_one_event(tmp_path: Path) -> None:
    """A provider retrying while its first delivery is still being committed: both requests
    land in the same group commit; one event is stored and both name it."""

    async def scenario() -> tuple[list[list[Inserted]], int]:
        store = SQLiteStore(f"sqlite:///{tmp_path / 'g.db'}")
        await store.open()
        writer = EventWriter(store)
        writer.start()
        results = await asyncio.gather(
            writer.submit([_event("evt_a")]),
            writer.submit([_event("evt_b")._replace(dedup_key="evt_a")]),
            writer.submit([_event("evt_c"), _event("evt_d")._replace(dedup_key="evt_c")]),
        )
        await writer.stop()
        count = await store.count_events()
        await store.close()
        return results, count

    results, count = asyncio.run(scenario())
    assert results == [
        [Inserted("evt_a", duplicate=False)],
        [Inserted("evt_a", duplicate=True)],
        [Inserted("evt_c", duplicate=False), Inserted("evt_c", duplicate=True)],
    ]
    assert count == 2


class _CountingStore:
    def __init__(self) -> None:
        self.batches: list[int] = []

    async def insert_events(self, events: Sequence[NewEvent]) -> list[Inserted]:
        self.batches.append(len(events))
        await asyncio.sleep(0.01)  # a commit takes a while: requests keep arriving meanwhile
        return [Inserted(e.id, duplicate=False) for e in events]


def test_requests_still_on_their_way_join_the_commit_a_single_request_starts() -> None:
    """Requests reach the writer a few loop turns apart (reading, verifying, parsing): one
    commit takes all those already under way, and a lone request is not kept waiting."""

    async def scenario() -> list[int]:
        store = _CountingStore()
        writer = EventWriter(store)  # type: ignore[arg-type]
        writer.start()

        async def request(turns: int, name: str) -> None:
            for _ in range(turns):
                await asyncio.sleep(0)
            await writer.submit([_event(name)])

        await asyncio.gather(*(request(turns, f"evt_{turns}") for turns in range(6)))
        started = time.monotonic()
        await request(0, "evt_alone")
        alone = time.monotonic() - started
        await writer.stop()
        assert alone < 0.5
        return store.batches

    assert asyncio.run(scenario()) == [6, 1]


OUTLOOKISH = """\
kind: integration
name: graphy
webhook:
  verify: {scheme: token, secret: "${secret:STATE}", body_path: "value[*].clientState"}
  split: "{{ body.value }}"
  event: {id: "{{ body.id }}", type: "{{ body.changeType }}"}
"""
ACME = acme(webhook(verify=TOKEN_VERIFY))


def test_a_token_at_a_body_path_is_never_stored(make_client: AppFactory) -> None:
    client = make_client({"g.yaml": OUTLOOKISH}, {"STATE": "the-client-state"})
    body = {"value": [{"id": "n1", "changeType": "created", "clientState": "the-client-state"}]}
    accepted = client.post("/webhooks/graphy", json=body).json()
    stored = admin(client, f"/admin/api/events/{accepted['event_id']}")
    assert isinstance(stored, dict)
    assert "the-client-state" not in json.dumps(stored)
    assert json.loads(stored["body"])["id"] == "n1"


def test_odd_but_genuine_requests_get_clear_answers(make_client: AppFactory) -> None:
    client = make_client({"a.yaml": ACME}, {"TOKEN": "t"})
    surrogate = client.post(
        "/webhooks/acme", content=b'{"id": "\\ud800x", "type": "t"}', headers={"X-Token": "t"}
    )
    assert surrogate.status_code == 200  # stored, its id escaped
    deep = client.post(
        "/webhooks/acme", content=b"[" * 100000 + b"]" * 100000, headers={"X-Token": "t"}
    )
    assert (deep.status_code, deep.json()["error"]["code"]) == (400, "invalid_body")
    odd = client.get(
        "/admin/api/events?limit=%C2%B2", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert odd.status_code == 400


async def _store_with_one_job(tmp_path: Path, now: float, max_attempts: int) -> SQLiteStore:
    """An open store holding one queued job (of event evt_1) allowed `max_attempts`."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 'g.db'}")
    await store.open()
    job = NewJob(
        "job_1", "k1", "evt_1", "f", "a", "call", "acme", "default", None, "{}", "{}",
        now, max_attempts, now,
    )  # fmt: skip
    await store.insert_events([_event("evt_1")])
    await store.commit_dispatches([Dispatch("evt_1", "dispatched", [job])])
    return store


def test_a_stale_workers_outcome_is_not_recorded(tmp_path: Path) -> None:
    async def scenario() -> str:
        now = time.time()
        store = await _store_with_one_job(tmp_path, now, max_attempts=5)
        (first,) = await store.claim_jobs(now, 10, lease=1)  # attempt 1; its worker stalls
        (second,) = await store.claim_jobs(now + 2, 10, lease=60)  # lease ran out: attempt 2
        await store.finish_jobs([JobOutcome("job_1", "succeeded", attempt=second.attempts)])
        await store.finish_jobs(
            [JobOutcome("job_1", "queued", error="late", attempt=first.attempts)]
        )
        found = await store.get_job("job_1")
        await store.close()
        assert found is not None
        return found.status

    assert asyncio.run(scenario()) == "succeeded"


def test_a_job_whose_worker_died_on_its_last_attempt_is_dead(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Job], str | None]:
        now = time.time()
        store = await _store_with_one_job(tmp_path, now, max_attempts=1)
        await store.claim_jobs(now, 10, lease=1)  # its only attempt; the worker dies
        again = await store.claim_jobs(now + 2, 10, lease=60)
        found = await store.get_job("job_1")
        await store.close()
        return again, found.status if found else None

    again, status = asyncio.run(scenario())
    assert (again, status) == ([], "dead")


def test_the_same_event_emitted_twice_runs_its_flows_twice() -> None:
    event = StoredEvent("evt_1", "calcom", "default", None, "X", 0.0, "pending", {}, b"{}")
    flow = Flow.build(
        {"name": "f", "event": "a.b", "actions": [{"call": {"endpoint": "calcom.get_booking"}}]}
    )
    dispatcher = Dispatcher(CONFIG, store=None)  # type: ignore[arg-type]
    jobs: list[NewJob] = []
    made = {"name": "a.b", "data": {}}
    for index in range(2):
        dispatcher._run_flow(flow, made, json.dumps(made), index, event, jobs, [])
    assert len({job.idempotency_key for job in jobs}) == 2
