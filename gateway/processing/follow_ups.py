"""A call's `then`: the actions that run once the call succeeded, each a job of its own; a
task's `on_failure`: the actions that run once when it fails (a fallback).

Each follow-up carries the body of the answer it follows from (its expressions see it as
`result`) and an idempotency key made of its parent's and its own name, so a parent attempted
again (a worker that died after the call) enqueues nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway.config.flows import Action
from gateway.ids import new_id
from gateway.outbound.caller import Response
from gateway.store.entities import Job, NewJob


def answer_body(answer: Response) -> Any:
    """The answer's body as expressions see it: parsed JSON, or None."""
    try:
        return answer.json()
    except ValueError:
        return None


def follow_ups(
    job: Job,
    declared: Sequence[Mapping[str, Any]],
    answer: Response,
    now: float,
    max_attempts: Callable[[str], int],
) -> list[NewJob]:
    """The jobs of a call's `then` actions (send, call, update_message, opt_out, opt_in)."""
    return _jobs(job, declared, "then", answer_body(answer), now, max_attempts)


def fallbacks(job: Job, why: str, now: float, max_attempts: Callable[[str], int]) -> list[NewJob]:
    """The jobs of a task's `on_failure` actions (none when it declares none); their
    expressions see `result` as {"error": why}. However often the task is reported failed
    (dead, then an undelivered status; repeated callbacks), they are enqueued once."""
    spec = json.loads(job.spec)
    declared = spec.get("on_failure") or []
    return _jobs(job, declared, "on_failure", {"error": why}, now, max_attempts)


def _jobs(
    job: Job,
    declared: Sequence[Mapping[str, Any]],
    step: str,
    body: Any,
    now: float,
    max_attempts: Callable[[str], int],
) -> list[NewJob]:
    made: list[NewJob] = []
    for index, spec in enumerate(declared):
        action = Action.build(index, spec)
        task = action.task
        if task is None:  # the schema allows only tasks in `then`; a cancel has no job
            continue
        stored = {**task.stored, "result": body}  # with the action's condition, checked as it runs
        target = task.integration or job.integration
        made.append(
            NewJob(
                id=new_id("job"),
                idempotency_key=f"{job.idempotency_key}/{step}/{action.label}",
                event_id=job.event_id,
                flow=job.flow,
                action=f"{job.action}/{action.label}",
                kind=task.kind,
                integration=target,
                tenant=job.tenant,
                schedule_key=None,
                spec=json.dumps(stored, default=str),
                context=job.context,
                run_at=now,
                max_attempts=max_attempts(target),
                created_at=now,
            )
        )
    return made
