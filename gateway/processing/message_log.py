"""The message log: every send recorded as a message, and statuses reported for it.

A send is recorded `sending` before its request goes out and `sent`, with the provider's id
read from the answer as its channel declares, once the provider took it; a send that dies is
`failed` with the reason. Delivery events update a message through a flow's `update_message`
action: found by the gateway's id (carried back by providers that echo one) or by the
provider's id.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway.config.channels import Channel
from gateway.config.model import Config
from gateway.expr.expressions import RENDER_ERRORS, render_value
from gateway.outbound.caller import Response
from gateway.processing.follow_ups import fallbacks
from gateway.processing.messaging import ChannelCall, normalise_recipient
from gateway.store.entities import Job, JobOutcome, Message, MessageStep, MessageUpdate
from gateway.store.interfaces import JobsAndMessages

log = logging.getLogger("gateway.processing.message_log")
DETAIL_LIMIT = 500


def message_id(job: Job) -> str:
    """The gateway's id of the message a send job sends: the same on every attempt."""
    return f"msg_{job.id.removeprefix('job_')}"


def provider_message_id(channel: Channel, answer: Response) -> str | None:
    """The provider's id of the sent message, where the channel declares it in the answer."""
    if channel.message_id is None:
        return None
    try:
        body = answer.json()
    except ValueError:
        body = None
    variables = {
        "status": getattr(answer, "status", None),
        "headers": {k.lower(): v for k, v in answer.headers.items()},
        "body": body,
    }
    try:
        found = channel.message_id.render(variables)
    except RENDER_ERRORS as exc:
        log.warning("the message id of a %s answer could not be read: %s", channel.name, exc)
        return None
    return str(found) if found not in (None, "") else None


def opt_out_key(kind: str, address: str) -> str:
    """How an opt-out list holds an address: phones in E.164, email in lower case."""
    if kind == "email":
        return address.lower()
    return address if address.startswith("+") else f"+{address}"


class MessageLog:
    def __init__(
        self, config: Config, store: JobsAndMessages, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock

    async def sending(self, job: Job, call: ChannelCall) -> str | None:
        """Record the message about to be sent; to a recipient who opted out, record it
        `skipped` with the reason and say so (the job's result): nothing is sent."""
        now = self.clock()
        kind = call.channel.kind
        # E.164 for every phone, so one look-up by number finds SMS and WhatsApp
        recipient = f"+{call.recipient}" if kind == "whatsapp" else call.recipient
        reason = await self.store.opt_out_reason(job.tenant, kind, opt_out_key(kind, recipient))
        status = "sending" if reason is None else "skipped"
        detail = "" if reason is None else f"opted out: {reason}"
        await self.store.record_message(
            Message(
                id=message_id(job),
                tenant=job.tenant,
                channel=f"{call.integration}.{call.channel.name}",
                kind=kind,
                provider=call.integration,
                recipient=recipient,
                template=call.template,
                status=status,
                created_at=now,
                job_id=job.id,
                timeline=(MessageStep(status, now, detail),),
            )
        )
        return None if reason is None else json.dumps({"skipped": detail})

    async def sent(self, job: Job, call: ChannelCall, answer: Response) -> None:
        provider_id = provider_message_id(call.channel, answer)
        update = MessageUpdate(
            "sent", self.clock(), id=message_id(job), provider_id_set=provider_id
        )
        await self.store.update_message(update)

    def _max_attempts(self, integration: str) -> int:
        return self.config.retry_policy(integration).max_attempts

    async def _fall_back(self, job_id: str, why: str) -> None:
        """The on_failure actions of the send whose message reported failed."""
        sent = await self.store.get_job(job_id)
        if sent is not None:
            made = fallbacks(sent, why, self.clock(), self._max_attempts)
            if made:
                await self.store.add_jobs(made)

    async def failures(self, jobs: Sequence[Job], outcomes: Sequence[JobOutcome]) -> None:
        """Mark the messages of send jobs that went dead `failed`, with the reason."""
        for job, outcome in zip(jobs, outcomes, strict=True):
            if job.kind != "send" or outcome.status != "dead":
                continue
            detail = (outcome.error or "")[:DETAIL_LIMIT]
            try:
                update = MessageUpdate("failed", self.clock(), id=message_id(job), detail=detail)
                if await self.store.update_message(update) is None:
                    await self.store.record_message(self._unsent(job, detail))
            except Exception:  # the job's outcome is recorded whatever happens here
                log.exception("the failure of message %s could not be recorded", message_id(job))

    def _unsent(self, job: Job, detail: str) -> Message:
        """A send that failed before its message was built (an invalid recipient)."""
        spec = json.loads(job.spec)
        now = self.clock()
        channel = str(spec.get("channel", ""))
        integration, _, name = channel.partition(".")
        declared = self.config.integrations.get(integration)
        found = declared.channels.get(name) if declared else None
        return Message(
            id=message_id(job),
            tenant=job.tenant,
            channel=channel,
            kind=found.kind if found else "",
            provider=integration,
            recipient=_recipient(spec, job),
            template=str(spec.get("template") or "inline"),
            status="failed",
            created_at=now,
            job_id=job.id,
            timeline=(MessageStep("failed", now, detail),),
        )

    async def record(self, job: Job, spec: Mapping[str, Any], variables: Mapping[str, Any]) -> str:
        """A flow's update_message, opt_out or opt_in, rendered and applied: the job's result."""
        declared = render_value(dict(spec[job.kind]), variables)
        if job.kind == "update_message":
            return await self._update(job, declared)
        kind = str(declared["kind"])
        address = opt_out_key(kind, normalise_recipient(kind, declared["address"]))
        if job.kind == "opt_out":
            reason = str(declared.get("reason") or "opted out")[:DETAIL_LIMIT]
            new = await self.store.set_opt_out(job.tenant, kind, address, reason, self.clock())
            return json.dumps({"opted_out": kind, "new": new})
        removed = await self.store.clear_opt_out(job.tenant, kind, address)
        return json.dumps({"opted_in": kind, "was_out": removed})

    async def _update(self, job: Job, declared: Mapping[str, Any]) -> str:
        """The status an update_message declares added to the message it names."""
        update = MessageUpdate(
            status=str(declared["status"]),
            at=self.clock(),
            id=str(declared.get("id") or "") or None,
            provider=job.integration,
            provider_id=str(declared.get("provider_id") or "") or None,
            detail=str(declared.get("detail") or "")[:DETAIL_LIMIT],
        )
        message = await self.store.update_message(update)
        if message is None:
            return json.dumps({"skipped": "no message sent by the gateway has this id"})
        if message.status == "failed" and message.job_id:
            await self._fall_back(message.job_id, update.detail or "failed")
        return json.dumps({"message": message.id, "status": message.status})


def _recipient(spec: Mapping[str, Any], job: Job) -> str:
    try:
        return str(render_value(spec.get("to", ""), {"event": json.loads(job.context)}))
    except RENDER_ERRORS:
        return str(spec.get("to", ""))
