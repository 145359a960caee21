"""The message log: a send that dies is a failed message with its reason; a status for a
message the gateway never sent changes nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from gateway.config.model import load_config
from gateway.processing.worker import Worker
from gateway.store import SQLiteStore
from gateway.store.entities import Dispatch, JobOutcome, JobQuery, MessageQuery, NewEvent, NewJob
from tests.helpers import REPO

CONFIG = load_config(REPO / "integrations.d", {"TWILIO_FROM_NUMBER": "+15005550006"})
NOW = 1_750_000_000.0


class _NeverCalled:
    async def call(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("nothing may be sent")

    def retry_policy(self, integration: str) -> Any:
        raise AssertionError


def _job(id: str, kind: str, spec: dict[str, Any]) -> NewJob:
    return NewJob(
        id=id,
        idempotency_key=f"evt_1/0/0/flow/{id}",
        event_id="evt_1",
        flow="flow",
        action=id,
        kind=kind,
        integration="twilio",
        tenant="demo",
        schedule_key=None,
        spec=json.dumps(spec),
        context=json.dumps({"name": "message.delivered", "data": {"message_id": "SMX"}}),
        run_at=NOW,
        max_attempts=1,
        created_at=NOW,
    )


def test_a_dead_send_is_a_failed_message_and_an_unknown_status_changes_nothing(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
        await store.open()
        try:
            event = NewEvent("evt_1", "twilio", "demo", "k", None, "x", NOW, "{}", b"{}")
            await store.insert_events([event])
            send = {"channel": "twilio.sms", "to": "not a number", "text": "Hi"}
            update = {
                "update_message": {
                    "provider_id": "{{ event.data.message_id }}",
                    "status": "delivered",
                }
            }
            jobs = [_job("job_1", "send", send), _job("job_2", "update_message", update)]
            await store.commit_dispatches([Dispatch("evt_1", "dispatched", jobs)])
            worker = Worker(CONFIG, store, _NeverCalled(), clock=lambda: NOW + 1)
            assert await worker.run_once() == 2
            (failed,) = await store.list_messages(MessageQuery(status="failed"))
            assert (failed.id, failed.job_id, failed.channel) == ("msg_1", "job_1", "twilio.sms")
            assert failed.recipient == "not a number"
            assert "is not a phone number" in failed.timeline[-1].detail
            updated = await store.get_job("job_2")
            assert updated is not None and updated.status == "succeeded"
            assert "no message sent by the gateway" in (updated.result or "")
            assert len(await store.list_messages(MessageQuery())) == 1
        finally:
            await store.close()

    asyncio.run(main())


def test_a_send_to_an_opted_out_address_is_skipped_with_the_reason(tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
        await store.open()
        try:
            event = NewEvent("evt_1", "sendgrid", "demo", "k", None, "x", NOW, "{}", b"{}")
            await store.insert_events([event])
            suppress = {
                "opt_out": {"kind": "email", "address": "Jane@Example.com", "reason": "bounced"}
            }
            await store.commit_dispatches(
                [Dispatch("evt_1", "dispatched", [_job("job_1", "opt_out", suppress)])]
            )
            worker = Worker(CONFIG, store, _NeverCalled(), clock=lambda: NOW + 1)
            assert await worker.run_once() == 1
            assert await store.opt_out_reason("demo", "email", "jane@example.com") == "bounced"
            send = {
                "channel": "sendgrid.email",
                "to": "Jane@Example.com",
                "subject": "Hi",
                "text": "Hi",
            }
            await store.add_jobs([_job("job_2", "send", send)])
            assert await worker.run_once() == 1  # _NeverCalled: nothing was sent
            sent = await store.get_job("job_2")
            assert sent is not None and sent.status == "succeeded"
            (skipped,) = await store.list_messages(MessageQuery(status="skipped"))
            assert skipped.timeline[-1].detail == "opted out: bounced"
        finally:
            await store.close()

    asyncio.run(main())


def test_a_dead_send_runs_its_on_failure_actions_once(tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
        await store.open()
        try:
            event = NewEvent("evt_1", "twilio", "demo", "k", None, "x", NOW, "{}", b"{}")
            await store.insert_events([event])
            fallback = {"name": "note", "opt_out": {"kind": "email", "address": "a@example.com"}}
            send = {"channel": "twilio.sms", "to": "nope", "text": "Hi", "on_failure": [fallback]}
            await store.commit_dispatches(
                [Dispatch("evt_1", "dispatched", [_job("job_1", "send", send)])]
            )
            worker = Worker(CONFIG, store, _NeverCalled(), clock=lambda: NOW + 1)
            assert await worker.run_once() == 1  # the send dies, its fallback is enqueued
            dead = await store.get_job("job_1")
            assert dead is not None and dead.status == "dead"
            assert await worker.run_once() == 1  # the fallback
            jobs = await store.list_jobs(JobQuery(event_id="evt_1"))
            assert sorted(j.action for j in jobs) == ["job_1", "job_1/note"]
            assert await store.opt_out_reason("demo", "email", "a@example.com") == "opted out"
            # the same failure reported again (a worker retrying the batch) adds nothing
            assert dead is not None
            await worker.enqueue_fallbacks([dead], [JobOutcome("job_1", "dead", error="again")])
            assert len(await store.list_jobs(JobQuery(event_id="evt_1"))) == 2
        finally:
            await store.close()

    asyncio.run(main())
