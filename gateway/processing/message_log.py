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
from gateway.processing.messaging import ChannelCall
from gateway.store.entities import Job, JobOutcome, Message, MessageStep, MessageUpdate
from gateway.store.interfaces import MessageStore

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


class MessageLog:
    def __init__(
        self, config: Config, store: MessageStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock

    async def sending(self, job: Job, call: ChannelCall) -> None:
        now = self.clock()
        await self.store.record_message(
            Message(
                id=message_id(job),
                tenant=job.tenant,
                channel=f"{call.integration}.{call.channel.name}",
                kind=call.channel.kind,
                provider=call.integration,
                # E.164 for every phone, so one look-up by number finds SMS and WhatsApp
                recipient=f"+{call.recipient}"
                if call.channel.kind == "whatsapp"
                else call.recipient,
                template=call.template,
                status="sending",
                created_at=now,
                job_id=job.id,
                timeline=(MessageStep("sending", now),),
            )
        )

    async def sent(self, job: Job, call: ChannelCall, answer: Response) -> None:
        provider_id = provider_message_id(call.channel, answer)
        update = MessageUpdate(
            "sent", self.clock(), id=message_id(job), provider_id_set=provider_id
        )
        await self.store.update_message(update)

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

    async def update(self, job: Job, spec: Mapping[str, Any], variables: Mapping[str, Any]) -> str:
        """A flow's `update_message`: the status it declares added to the message it names."""
        declared = render_value(dict(spec["update_message"]), variables)
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
        return json.dumps({"message": message.id, "status": message.status})


def _recipient(spec: Mapping[str, Any], job: Job) -> str:
    try:
        return str(render_value(spec.get("to", ""), {"event": json.loads(job.context)}))
    except RENDER_ERRORS:
        return str(spec.get("to", ""))
