"""Ingest first: while webhooks arrive, processing rests after each slice so that it keeps to
its share of the loop; without webhooks it never rests. The dispatcher commits slice by slice
under pressure (its jobs stay durable) and all at once otherwise."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.config.model import load_config
from gateway.processing.dispatcher import Dispatcher
from gateway.processing.pacing import MAX_REST, Pacer
from gateway.processing.worker import Worker
from gateway.store import SQLiteStore
from gateway.store.entities import Dispatch, NewEvent, NewJob
from tests.helpers.integrations import acme, api, webhook


class Clock:
    """A clock that moves only when told (or by `step` each time it is read)."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 100.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Arrivals:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        return self.count


def _rest(pacer: Pacer, spent: float) -> None:
    asyncio.run(pacer.rest(spent))


def test_without_webhooks_processing_never_rests() -> None:
    arrivals, clock = Arrivals(), Clock()
    pacer = Pacer(arrivals, share=0.25, clock=clock)
    _rest(pacer, 0.01)
    assert pacer.rested == 0.0
    arrivals.count = 5  # webhooks came, but longer ago than `quiet`
    assert pacer.busy()
    clock.now += pacer.quiet + 0.001
    assert not pacer.busy()
    _rest(pacer, 0.01)
    assert pacer.rested == 0.0


def test_while_webhooks_arrive_slices_rest_to_keep_the_share_and_add_up() -> None:
    arrivals, clock = Arrivals(), Clock()
    pacer = Pacer(arrivals, share=0.25, clock=clock)
    arrivals.count = 1
    _rest(pacer, 0.002)  # a quarter of the time: rest three times as long as the slice took
    assert pacer.rested == pytest.approx(0.006)
    arrivals.count = 2
    _rest(pacer, 0.004)  # the clock stood still: this one waits behind the first one's rest
    assert pacer.rested == pytest.approx(0.006 + 0.018)


def test_a_rest_is_bounded_so_a_stop_never_waits_long() -> None:
    arrivals, clock = Arrivals(), Clock()
    pacer = Pacer(arrivals, share=0.1, clock=clock)
    arrivals.count = 1
    _rest(pacer, 10.0)
    assert pacer.rested == pytest.approx(MAX_REST)


def test_share_one_is_no_pacing() -> None:
    arrivals = Arrivals()
    pacer = Pacer(arrivals, share=1.0, clock=Clock())
    arrivals.count = 1
    _rest(pacer, 1.0)
    assert pacer.rested == 0.0
    with pytest.raises(ValueError, match="share"):
        Pacer(arrivals, share=0.0)


ACME = acme(
    api(endpoints={"ping": "{method: POST, path: /ping}"}),
    webhook(map={"thing.made": "{emit: thing.made, data: {id: '{{ body.id }}'}}"}),
)
FLOW = """\
kind: flow
name: forward
event: thing.made
actions:
  - call: {endpoint: acme.ping, body: {id: "{{ event.data.id }}"}}
"""


class CountingStore(SQLiteStore):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.commits: list[int] = []

    async def commit_dispatches(self, dispatches: Sequence[Dispatch]) -> None:
        self.commits.append(len(dispatches))
        await super().commit_dispatches(dispatches)


def _row(n: int) -> tuple[str, str, str, str, str, str]:
    return (f"evt_{n:02d}", "acme", "default", f"k{n}", f"k{n}", "thing.made")


def _dispatch_all(tmp_path: Path, webhooks_arriving: bool) -> tuple[list[int], int, float]:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "acme.yaml").write_text(ACME)
    (folder / "flow.yaml").write_text(FLOW)
    (tmp_path / "templates").mkdir()
    config = load_config(folder, {}, templates_dir=tmp_path / "templates")
    store = CountingStore(f"sqlite:///{tmp_path / 'gateway.db'}")
    arrivals = Arrivals()
    # each read of the clock is a millisecond: a slice (2 ms) holds a dispatch or two
    pacer = Pacer(arrivals, share=0.5, quiet=1e9, clock=Clock(step=0.001))
    if webhooks_arriving:
        arrivals.count = 1
    dispatcher = Dispatcher(config, store, pacer=pacer)

    async def main() -> tuple[int, int]:
        await store.open()
        try:
            await store.insert_events(
                [
                    NewEvent(*_row(n), 1.0, "{}", b'{"id": "%d", "type": "thing.made"}' % n)
                    for n in range(10)
                ]
            )
            ran = await dispatcher.run_once()
            return ran, len(await store.pending_events(100))
        finally:
            await store.close()

    ran, pending = asyncio.run(main())
    assert (ran, pending) == (10, 0)
    return store.commits, pending, pacer.rested


def test_under_webhooks_the_dispatcher_commits_slice_by_slice_and_rests(tmp_path: Path) -> None:
    commits, _, rested = _dispatch_all(tmp_path, webhooks_arriving=True)
    assert len(commits) > 1 and sum(commits) == 10
    assert rested > 0


def test_without_webhooks_the_dispatcher_commits_its_batch_at_once(tmp_path: Path) -> None:
    commits, _, rested = _dispatch_all(tmp_path, webhooks_arriving=False)
    assert commits == [10]
    assert rested == 0.0


class _NeverCalled:
    async def call(self, *args: object, **kwargs: object) -> object:
        raise AssertionError("record actions call nothing")

    def retry_policy(self, integration: str) -> object:
        raise AssertionError


def _opt_outs(count: int) -> list[NewJob]:
    return [
        NewJob(
            id=f"job_{n}",
            idempotency_key=f"evt_{n}/0/0/flow/a",
            event_id=f"evt_{n}",
            flow="flow",
            action="a",
            kind="opt_out",
            integration="acme",
            tenant="default",
            schedule_key=None,
            spec=json.dumps({"opt_out": {"kind": "email", "address": f"a{n}@example.com"}}),
            context="{}",
            run_at=1.0,
            max_attempts=1,
            created_at=1.0,
        )
        for n in range(count)
    ]


def _pass(tmp_path: Path, *, under_run: bool, webhooks_arriving: bool) -> tuple[int, int]:
    """One worker pass over 5 due jobs with room for 2 at once: (jobs it ran, jobs left)."""
    folder = tmp_path / "integrations.d"
    folder.mkdir(parents=True)
    (folder / "acme.yaml").write_text(ACME)
    (tmp_path / "templates").mkdir()
    config = load_config(folder, {}, templates_dir=tmp_path / "templates")
    store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
    arrivals = Arrivals()
    pacer = Pacer(arrivals, quiet=1e9, clock=Clock())
    arrivals.count = 1 if webhooks_arriving else 0  # arrived after the pacer started
    worker = Worker(config, store, _NeverCalled(), concurrency=2, pacer=pacer)  # type: ignore[arg-type]

    async def main() -> tuple[int, int]:
        await store.open()
        try:
            jobs = _opt_outs(5)
            await store.insert_events(
                [
                    NewEvent(j.event_id, "acme", "default", j.event_id, None, "t", 1.0, "{}", b"{}")
                    for j in jobs
                ]
            )
            await store.commit_dispatches([Dispatch(j.event_id, "dispatched", [j]) for j in jobs])
            if under_run:
                worker._stop = asyncio.Event()  # as run() sets it
            ran = await worker.run_once()
            return ran, (await store.job_counts()).get("queued", 0)
        finally:
            await store.close()

    return asyncio.run(main())


def test_under_run_a_pass_tops_itself_up_from_the_backlog(tmp_path: Path) -> None:
    assert _pass(tmp_path, under_run=True, webhooks_arriving=False) == (5, 0)


def test_a_pass_on_its_own_or_beside_webhooks_is_one_claim(tmp_path: Path) -> None:
    assert _pass(tmp_path / "a", under_run=False, webhooks_arriving=False) == (2, 3)
    assert _pass(tmp_path / "b", under_run=True, webhooks_arriving=True) == (2, 3)
