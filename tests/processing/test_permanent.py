"""One "do not retry" base: whatever `Permanent` an action raises, its job is dead at once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.config.model import load_config
from gateway.errors import Permanent
from gateway.outbound.failures import PermanentError, RetryableError
from gateway.processing.dispatcher import DispatchError
from gateway.processing.messaging import InvalidMessage
from gateway.processing.worker import Worker
from gateway.store.entities import Job
from tests.helpers import REPO

CONFIG = load_config(REPO / "integrations.d", {})


def _job(attempts: int = 1) -> Job:
    spec = json.dumps({"endpoint": "calcom.get_booking", "params": {"uid": "x"}})
    return Job(
        "job_1", "k", "evt_1", "flow", "a", "call", "calcom", "default", None, spec, "{}",
        "running", attempts, 5, 0.0, None, None, 0.0, 0.0,
    )  # fmt: skip


class _Raising:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def call(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (Permanent("the provider refused"), "the provider refused"),
        (Permanent("HTTP 422", status=422, body='{"no": 1}'), 'HTTP 422: {"no": 1}'),
        (PermanentError("HTTP 404", 404, body="gone"), "HTTP 404: gone"),
        (PermanentError("HTTP 400", 400), "HTTP 400"),
        (InvalidMessage("recipient 'x' is not an email address"), "recipient 'x' is not"),
        (DispatchError("condition: no such field"), "condition: no such field"),
    ],
)
def test_a_permanent_failure_makes_the_job_dead_at_its_first_attempt(
    exc: Permanent, error: str
) -> None:
    worker = Worker(CONFIG, store=None, caller=_Raising(exc))  # type: ignore[arg-type]
    outcome = asyncio.run(worker.execute(_job(attempts=1)))
    assert (outcome.status, outcome.attempt) == ("dead", 1)
    assert outcome.error is not None and outcome.error.startswith(error)
    assert "gave up" not in outcome.error  # dead at once, not after the retries


def test_the_permanent_kinds_carry_reason_status_and_body() -> None:
    for exc in (PermanentError("r", 400, "b"), InvalidMessage("r"), DispatchError("r")):
        assert isinstance(exc, Permanent) and exc.reason == "r" and str(exc) == "r"
    found = PermanentError("r", 400, "b")
    assert (found.status, found.body) == (400, "b")
    assert not isinstance(RetryableError("r"), Permanent)


def test_a_retryable_failure_is_queued_again() -> None:
    caller = _Raising(RetryableError("HTTP 503", status=503))
    worker = Worker(CONFIG, store=None, caller=caller)  # type: ignore[arg-type]
    outcome = asyncio.run(worker.execute(_job(attempts=1)))
    assert (outcome.status, outcome.error) == ("queued", "HTTP 503")
