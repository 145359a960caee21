"""CPU per event and per job, in process: the shipped Cal.com booking through the dispatcher
and the workers, against a stand-in that answers at once (no network, no provider time).

CPU time (`time.process_time`: every thread of the process, so the SQLite writer thread and
the reader's thread count too) rather than wall time: the figures hold on a busy machine,
and they are what processing takes from the core that also answers webhooks.

- dispatch (pure): `Dispatcher.dispatch` on a stored event: mapping, flows, four jobs built.
- dispatch (stored): a whole dispatcher pass per event: read pending events, dispatch, commit
  the jobs and the events' status (SQLite, the default store).
- job: a worker pass per job run: claim, render, the outbound engine (auth, limiter, breaker,
  request and answer through httpx to an in-process transport), the message log, the outcome
  committed. `of which transport` is what httpx alone costs for the same calls (the same
  transport, no engine), to say how much of the job is the HTTP client.

Each figure is the best of a few rounds (other load on the machine only ever adds).
`python -m bench.cpu_costs [--profile pure|dispatch|jobs] [--baseline REV]` prints the
figures (or a cProfile), and with `--baseline` the same harness over another revision's code.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import bookings
from gateway.config.model import Config, load_config
from gateway.credentials.secrets import SecretSource
from gateway.ids import new_id
from gateway.outbound.client import OutboundClient
from gateway.outbound.tokens import MemoryTokenStore
from gateway.processing.dispatcher import Dispatcher
from gateway.processing.worker import Worker
from gateway.store import SQLiteStore
from gateway.store.entities import NewEvent, StoredEvent

TARGET_DISPATCH_US = 50.0
TARGET_JOB_US = 100.0
STAND_IN = "http://stand-in.bench"
HEADERS = {"content-type": "application/json"}
CODE_ENV = "BENCH_BASELINE_CODE"  # a baseline's checkout: its flows and templates are used
ROUNDS = 8  # each figure is the best round's: other load on the machine only ever adds


def _handler(request: httpx.Request) -> httpx.Response:
    status, headers, content = bookings.answer(request.method, request.url.path)
    return httpx.Response(status, headers=headers, content=content)


def transport() -> httpx.MockTransport:
    """The stand-in: answers every provider call at once, in process."""
    return httpx.MockTransport(_handler)


def config(folder: Path) -> tuple[Config, dict[str, str]]:
    code = Path(os.environ[CODE_ENV]) if os.environ.get(CODE_ENV) else None
    urls = {name: f"{STAND_IN}/{name}" for name in bookings.PROVIDERS}
    env = bookings.environment(urls, f"{STAND_IN}/google_oauth/token", code)
    loaded = load_config(
        bookings.integrations(folder, code), env, templates_dir=bookings.shipped(code)[1]
    )
    return loaded, env


def new_events(count: int, tag: str) -> list[NewEvent]:
    made = bookings.Bookings(tag)
    now = time.time()
    headers = json.dumps(HEADERS)
    events = []
    for n in range(count):
        body = made.body(n)
        key = f"BOOKING_CREATED:{tag}{n:08d}"
        row = (new_id("evt"), "calcom", bookings.TENANT, key, key, "BOOKING_CREATED")
        events.append(NewEvent(*row, now, headers, body))
    return events


def stored(event: NewEvent) -> StoredEvent:
    return StoredEvent(
        id=event.id,
        integration=event.integration,
        tenant=event.tenant,
        provider_id=event.provider_id,
        type=event.type,
        received_at=event.received_at,
        status="pending",
        headers=json.loads(event.headers),
        body=event.body,
    )


@contextmanager
def _profiled(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(45)


def dispatch_pure(cfg: Config, count: int, *, profile: bool = False) -> dict[str, Any]:
    dispatcher = Dispatcher(cfg, store=None)  # type: ignore[arg-type]  # dispatch() reads none
    events = [stored(e) for e in new_events(count + 100, "p")]
    for event in events[:100]:  # warm: templates compiled, caches filled
        dispatcher.dispatch(event)
    measured = events[100:]
    best = float("inf")  # the least disturbed of the rounds: other load only adds
    done = []
    with _profiled(profile):
        for round_ in range(ROUNDS):
            part = measured[round_::ROUNDS]
            started = time.process_time()
            done += [dispatcher.dispatch(event) for event in part]
            best = min(best, (time.process_time() - started) / len(part))
    statuses = {d.status for d in done}
    jobs = sum(len(d.jobs) for d in done)
    if statuses != {"dispatched"} or jobs != bookings.JOBS_PER_BOOKING * count:
        raise RuntimeError(f"dispatch went wrong: statuses {statuses}, {jobs} jobs")
    return {"events": count, "us_per_event": round(best * 1e6, 1)}


async def _drain(step: Callable[[], Any]) -> int:
    total = 0
    while True:
        done = int(await step())
        if not done:
            return total
        total += done


async def _stored_and_jobs(
    cfg: Config, env: dict[str, str], folder: Path, count: int, profile: str | None
) -> dict[str, Any]:
    store = SQLiteStore(f"sqlite:///{folder / 'costs.db'}")
    await store.open()
    outbound = OutboundClient(cfg, SecretSource(env), MemoryTokenStore(), transport=transport())
    dispatcher = Dispatcher(cfg, store)
    worker = Worker(cfg, store, outbound)
    try:
        # warm up: one pass of each over a few bookings (token fetched, templates compiled)
        await store.insert_events(new_events(50, "w"))
        await _drain(dispatcher.run_once)
        await _drain(worker.run_once)

        dispatched = ran = 0
        dispatch_best = job_best = float("inf")  # per event, per job: the best round's
        for round_ in range(ROUNDS):
            size = count // ROUNDS + (round_ < count % ROUNDS)
            await store.insert_events(new_events(size, f"s{round_}"))
            with _profiled(profile == "dispatch"):
                started = time.process_time()
                made = await _drain(dispatcher.run_once)
                dispatch_best = min(dispatch_best, (time.process_time() - started) / made)
            with _profiled(profile == "jobs"):
                started = time.process_time()
                done = await _drain(worker.run_once)
                job_best = min(job_best, (time.process_time() - started) / done)
            dispatched, ran = dispatched + made, ran + done
        counts = await store.job_counts()
        transport_us = await _transport_only(ran)
    finally:
        await outbound.aclose()
        await store.close()
    if dispatched != count or ran != bookings.JOBS_RUN_NOW * count:
        raise RuntimeError(f"{dispatched} events dispatched, {ran} jobs run of {count} bookings")
    if counts.get("dead") or counts.get("queued", 0) != count + 50:
        raise RuntimeError(f"jobs did not all succeed: {counts}")
    job_us = job_best * 1e6
    return {
        "events": count,
        "dispatch_us_per_event": round(dispatch_best * 1e6, 1),
        "jobs": ran,
        "job_us": round(job_us, 1),
        "transport_us_per_call": round(transport_us, 1),
        "job_us_without_transport": round(job_us - transport_us, 1),
    }


async def _transport_only(calls: int) -> float:
    """CPU of httpx alone per call through the same stand-in transport (a POST with a small
    JSON body, the answer read), sequential as the cheapest case."""
    async with httpx.AsyncClient(transport=transport()) as client:
        url = f"{STAND_IN}/twilio/2010-04-01/Accounts/AC1/Messages.json"
        for _ in range(50):
            (await client.post(url, data={"To": "+1", "Body": "x"})).raise_for_status()
        started = time.process_time()
        for _ in range(calls):
            (await client.post(url, data={"To": "+1", "Body": "x"})).raise_for_status()
        return (time.process_time() - started) / calls * 1e6


def measure(count: int = 1000, profile: str | None = None) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-costs-"))
    try:
        cfg, env = config(folder)
        pure = dispatch_pure(cfg, count, profile=profile == "pure")
        rest = asyncio.run(_stored_and_jobs(cfg, env, folder, count, profile))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "bookings": count,
        "dispatch_pure_us": pure["us_per_event"],
        "dispatch_stored_us": rest["dispatch_us_per_event"],
        "jobs": rest["jobs"],
        "job_us": rest["job_us"],
        "transport_us_per_call": rest["transport_us_per_call"],
        "job_us_without_transport": rest["job_us_without_transport"],
        "target_dispatch_us": TARGET_DISPATCH_US,
        "target_job_us": TARGET_JOB_US,
    }


def checkout(revision: str, folder: Path) -> Path:
    """The gateway package (its schemas, flows and templates) of `revision` extracted into
    `folder`: put it first on PYTHONPATH to run that code with this bench."""
    parts = ("gateway", "schemas", "integrations.d", "templates")
    archive = subprocess.run(
        ["git", "-C", str(bookings.REPO), "archive", revision, *parts],
        capture_output=True,
        check=True,
    )
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def at_revision(revision: str, count: int = 1000) -> dict[str, Any]:
    """The same figures for the gateway package of another git revision (this harness, that
    code), in a subprocess: a baseline measured in the same run."""
    folder = checkout(revision, Path(tempfile.mkdtemp(prefix="bench-baseline-")))
    try:
        path = os.pathsep.join([str(folder), str(bookings.REPO)])
        env = {**os.environ, "PYTHONPATH": path, CODE_ENV: str(folder)}
        done = subprocess.run(
            [sys.executable, "-m", "bench.cpu_costs", "--bookings", str(count)],
            capture_output=True,
            text=True,
            env=env,
            cwd=folder,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the baseline at {revision} failed:\n{done.stderr[-1500:]}")
        found: dict[str, Any] = json.loads(done.stdout)
        found["revision"] = revision
        return found
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_costs", description=__doc__)
    parser.add_argument("--bookings", type=int, default=1000)
    parser.add_argument("--profile", choices=("pure", "dispatch", "jobs"))
    parser.add_argument("--baseline", help="also measure the gateway of this git revision")
    args = parser.parse_args()
    found = measure(args.bookings, args.profile)
    if args.baseline:
        found["baseline"] = at_revision(args.baseline, args.bookings)
    print(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
