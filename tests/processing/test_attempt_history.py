"""Every attempt a worker makes of a job goes in the job's history with the outcome: its start,
duration, outcome, the provider's HTTP status and its answer, redacted. A provider answering
503 twice, then 200, leaves three attempts in order; one answering 400 leaves a dead one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from gateway.config.model import load_config
from gateway.credentials.secrets import SecretSource
from gateway.outbound.client import OutboundClient
from gateway.outbound.tokens import MemoryTokenStore
from gateway.processing.worker import Worker
from gateway.store import SQLiteStore
from gateway.store.entities import Dispatch, JobAttempt, NewEvent, NewJob
from tests.helpers import REPO

KEY = "cal_live_attempt_secret_42"
ENV = {"CALCOM_API_KEY": KEY, "CALCOM_BASE_URL": "https://cal.test"}
CONFIG = load_config(REPO / "integrations.d", ENV)
NOW = 1_750_000_000.0


def _transport(statuses: list[int], seen: list[str]) -> httpx.MockTransport:
    """Answers with `statuses` in turn, each body echoing the request's Authorization header
    (as a careless provider's error page might)."""
    answers = iter(statuses)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        status = next(answers)
        echo = {"status": status, "echo": request.headers["authorization"]}
        return httpx.Response(status, json=echo, request=request)

    return httpx.MockTransport(handle)


def _job(job_id: str) -> NewJob:
    spec = json.dumps({"endpoint": "calcom.get_booking", "params": {"uid": "bk_1"}})
    return NewJob(
        job_id, f"evt_1/{job_id}", "evt_1", "flow", "fetch", "call", "calcom", "default", None,
        spec, "{}", NOW, 5, NOW,
    )  # fmt: skip


def _run(tmp_path: Path, statuses: list[int]) -> tuple[list[JobAttempt], list[str], str]:
    async def scenario() -> tuple[list[JobAttempt], list[str], str]:
        store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
        await store.open()
        seen: list[str] = []
        outbound = OutboundClient(
            CONFIG, SecretSource(ENV), MemoryTokenStore(), transport=_transport(statuses, seen)
        )
        try:
            event = NewEvent("evt_1", "calcom", "default", "k1", None, None, NOW, "{}", b"{}")
            await store.insert_events([event])
            await store.commit_dispatches([Dispatch("evt_1", "dispatched", [_job("job_1")])])
            now = [NOW]
            worker = Worker(CONFIG, store, outbound, clock=lambda: now[0])
            for _ in statuses:
                assert await worker.run_once() == 1
                now[0] += 3600  # past any backoff
            job = await store.get_job("job_1")
            assert job is not None
            history = await store.job_attempts(["job_1"])
            return history["job_1"], seen, job.status
        finally:
            await outbound.aclose()
            await store.close()

    return asyncio.run(scenario())


def test_two_503s_then_a_200_leave_three_attempts_in_order_with_no_secret(
    tmp_path: Path,
) -> None:
    attempts, seen, status = _run(tmp_path, [503, 503, 200])
    assert seen == [f"Bearer {KEY}"] * 3  # the provider was sent the key each time
    assert status == "succeeded"
    assert [(a.attempt, a.outcome, a.http_status) for a in attempts] == [
        (1, "retry", 503),
        (2, "retry", 503),
        (3, "succeeded", 200),
    ]
    assert [a.started_at for a in attempts] == [NOW, NOW + 3600, NOW + 7200]
    for attempt in attempts:
        assert attempt.duration_ms is not None and attempt.duration_ms >= 0
        assert attempt.answer is not None and KEY not in attempt.answer
        assert json.loads(attempt.answer) == {"status": attempt.http_status, "echo": "Bearer ***"}
        assert KEY not in (attempt.error or "")
    assert attempts[0].error is not None and "HTTP 503" in attempts[0].error
    assert attempts[2].error is None


def test_a_400_leaves_one_dead_attempt_with_the_answer(tmp_path: Path) -> None:
    attempts, _, status = _run(tmp_path, [400])
    assert status == "dead"
    [dead] = attempts
    assert (dead.attempt, dead.outcome, dead.http_status) == (1, "dead", 400)
    assert dead.answer is not None and json.loads(dead.answer)["echo"] == "Bearer ***"
    assert dead.error is not None and "HTTP 400" in dead.error and KEY not in dead.error
