"""The admin API under /admin/api (bearer GATEWAY_ADMIN_TOKEN; off when no token is set)."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.config.envsubst import Secret
from gateway.counters import Counters
from gateway.expr.filters import to_datetime
from gateway.store.entities import (
    EVENT_STATUSES,
    FUNCTION_OUTCOMES,
    JOB_STATUSES,
    MESSAGE_STATUSES,
    REPLAY_LIMIT,
    EventQuery,
    FunctionCallQuery,
    Job,
    JobAttempt,
    JobQuery,
    Message,
    MessageQuery,
    StoredEvent,
)
from gateway.store.interfaces import EventsJobsAndMessages, FunctionStore
from gateway.web import metrics_page as metrics
from gateway.web.error_handlers import error_response

Endpoint = Callable[[Request], Awaitable[Response]]
MAX_LIMIT = 500
# What POST /admin/api/events/replay filters by (besides "dry_run").
REPLAY_FILTERS = ("status", "integration", "tenant", "type", "since", "until")


class OutboundHealth(Protocol):
    def health(self) -> dict[str, dict[str, Any]]: ...


class ProbeReport(Protocol):
    async def report(self) -> list[dict[str, Any]]: ...


def _job_json(job: Job, history: Sequence[JobAttempt]) -> dict[str, Any]:
    """A job as the API shows it alone or under its event: `attempts` counts the attempts of
    its budget, `attempt_history` lists the recorded ones, oldest first."""
    return {**job.summary(), "attempt_history": [a.summary() for a in history]}


def guarded(token: Secret | None, endpoint: Endpoint) -> Endpoint:
    async def guard(request: Request) -> Response:
        if token is None:
            return error_response(
                404, "the admin API is off: set GATEWAY_ADMIN_TOKEN to turn it on"
            )
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.encode(), token.reveal().encode()
        ):
            return error_response(401, "missing or wrong admin token", "unauthorized")
        return await endpoint(request)

    return guard


def _event_json(event: StoredEvent) -> dict[str, object]:
    detail = event.summary()
    detail["headers"] = event.headers
    try:
        detail["body"] = event.body.decode("utf-8")
        detail["body_encoding"] = "utf-8"
    except UnicodeDecodeError:
        detail["body"] = base64.b64encode(event.body).decode()
        detail["body_encoding"] = "base64"
    return detail


def message_json(message: Message) -> dict[str, object]:
    return {
        "id": message.id,
        "tenant": message.tenant,
        "channel": message.channel,
        "kind": message.kind,
        "provider": message.provider,
        "recipient": message.recipient,
        "template": message.template,
        "status": message.status,
        "provider_id": message.provider_id,
        "job_id": message.job_id,
        "created_at": message.created_at,
        "timeline": [
            {"status": s.status, "at": s.at, "detail": s.detail} for s in message.timeline
        ],
    }


def _whole(raw: str) -> bool:
    """ASCII digits only: int() and float() also take `²`-like and non-Latin digits."""
    return raw.isascii() and raw.isdecimal()


def parse_limit(raw: str, most: int = MAX_LIMIT) -> int | None:
    """A query's `limit`: a whole number from 1 to `most`, else None."""
    return int(raw) if _whole(raw) and len(raw) <= 6 and 1 <= int(raw) <= most else None


def query_time(raw: str | None, name: str) -> float | None:
    """An ISO 8601 time or epoch seconds; raises ValueError, naming the parameter, for
    anything else."""
    if raw is None or raw == "":
        return None
    whole, dot, fraction = raw.partition(".")
    if _whole(whole) and (not dot or _whole(fraction)) and len(raw) <= 20:
        return float(raw)
    try:
        return to_datetime(raw).timestamp()
    except (ValueError, OverflowError) as exc:
        raise ValueError(
            f"{name} must be an ISO 8601 time (like 2026-11-24T10:00Z) or epoch seconds,"
            f" not {raw[:40]!r}"
        ) from exc


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object body ({} when empty); ValueError for anything else, a body
    nested too deeply for the parser included."""
    body = await request.body()
    if not body:
        return {}
    try:
        value = json.loads(body)
    except RecursionError:
        raise ValueError("the body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body is not JSON") from None
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


def routes(
    store: EventsJobsAndMessages,
    token: Secret | None,
    *,
    outbound: OutboundHealth | None = None,
    wake: asyncio.Event | None = None,
    counters: Counters | None = None,
    probes: ProbeReport | None = None,
    functions: FunctionStore | None = None,
) -> list[Route]:
    async def list_function_calls(request: Request) -> Response:
        if functions is None:
            return error_response(404, "in-call functions are not served here")
        params = request.query_params
        limit = parse_limit(params.get("limit", "50"))
        if limit is None:
            return error_response(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
        outcome = params.get("outcome") or None
        if outcome is not None and outcome not in FUNCTION_OUTCOMES:
            return error_response(
                400, f"outcome must be one of {', '.join(FUNCTION_OUTCOMES)}, not {outcome[:40]!r}"
            )
        query = FunctionCallQuery(
            integration=params.get("integration") or None,
            function=params.get("function") or None,
            tenant=params.get("tenant") or None,
            outcome=outcome,
            limit=limit,
            before=params.get("before") or None,
        )
        calls = await functions.list_function_calls(query)
        page: dict[str, object] = {"calls": [c.summary() for c in calls]}
        if len(calls) == limit:
            page["next_before"] = calls[-1].id
        return JSONResponse(page)

    async def list_events(request: Request) -> Response:
        params = request.query_params
        limit = parse_limit(params.get("limit", "50"))
        if limit is None:
            return error_response(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
        try:
            query = _event_query(params, limit)
        except ValueError as exc:
            return error_response(400, str(exc))
        events = await store.list_events(query)
        page: dict[str, object] = {"events": [e.summary() for e in events]}
        if len(events) == query.limit:
            page["next_before"] = events[-1].id
        return JSONResponse(page)

    async def replay_matching(request: Request) -> Response:
        try:
            filters = await request.json() if await request.body() else {}
            if not isinstance(filters, dict):
                raise ValueError("the body must be a JSON object")
            dry_run = filters.pop("dry_run", False)
            if not isinstance(dry_run, bool):
                raise ValueError("dry_run must be true or false")
            unknown = sorted(set(filters) - set(REPLAY_FILTERS))
            if unknown:
                raise ValueError(
                    f"unknown filter {unknown[0]!r}: expected {', '.join(REPLAY_FILTERS)}"
                )
            if not any(filters.get(name) not in (None, "") for name in filters):
                raise ValueError(f"name at least one filter: {', '.join(REPLAY_FILTERS)}")
            given = {k: "" if v is None else str(v) for k, v in filters.items()}
            query = _event_query(given, REPLAY_LIMIT)
        except ValueError as exc:
            return error_response(400, str(exc))
        if dry_run:
            return JSONResponse({"matched": await store.count_events(query)})
        count = await store.replay_events(query)
        if count and wake is not None:
            wake.set()
        return JSONResponse({"replayed": count})

    async def get_event(request: Request) -> Response:
        event = await store.get_event(request.path_params["event_id"])
        if event is None:
            return error_response(404, "no such event")
        detail = _event_json(event)
        jobs = await store.list_jobs(JobQuery(event_id=event.id, limit=100))
        history = await store.job_attempts([j.id for j in jobs])
        detail["jobs"] = [_job_json(j, history.get(j.id, [])) for j in jobs]
        return JSONResponse(detail)

    async def replay_event(request: Request) -> Response:
        event_id = request.path_params["event_id"]
        if not await store.replay_event(event_id):
            return error_response(404, "no such event")
        if wake is not None:
            wake.set()
        return JSONResponse({"status": "replaying", "event_id": event_id})

    def _event_query(params: Mapping[str, str], limit: int) -> EventQuery:
        status = params.get("status") or None
        if status is not None and status not in EVENT_STATUSES:
            raise ValueError(f"status must be one of {', '.join(EVENT_STATUSES)}")
        return EventQuery(
            integration=params.get("integration") or None,
            tenant=params.get("tenant") or None,
            type=params.get("type") or None,
            status=status,
            since=query_time(params.get("since"), "since"),
            until=query_time(params.get("until"), "until"),
            limit=limit,
            before=params.get("before") or None,
            provider_id=params.get("provider_event_id") or None,
            text=params.get("q") or None,
        )

    def _job_query(params: Mapping[str, str], limit: int) -> JobQuery:
        status = params.get("status") or None
        if status is not None and status not in JOB_STATUSES:
            raise ValueError(f"status must be one of {', '.join(JOB_STATUSES)}")
        return JobQuery(
            status=status,
            integration=params.get("integration") or None,
            tenant=params.get("tenant") or None,
            event_id=params.get("event_id") or None,
            since=query_time(params.get("since"), "since"),
            until=query_time(params.get("until"), "until"),
            limit=limit,
        )

    async def list_jobs(request: Request) -> Response:
        limit = parse_limit(request.query_params.get("limit", "50"))
        if limit is None:
            return error_response(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
        try:
            query = _job_query(request.query_params, limit)
        except ValueError as exc:
            return error_response(400, str(exc))
        return JSONResponse({"jobs": [j.summary() for j in await store.list_jobs(query)]})

    async def get_job(request: Request) -> Response:
        job = await store.get_job(request.path_params["job_id"])
        if job is None:
            return error_response(404, "no such job")
        detail = _job_json(job, (await store.job_attempts([job.id])).get(job.id, []))
        detail["result"] = job.result
        return JSONResponse(detail)

    async def retry_job(request: Request) -> Response:
        job = await store.get_job(request.path_params["job_id"])
        if job is None:
            return error_response(404, "no such job")
        if job.status != "dead":
            return error_response(
                409, f"job is {job.status}: only dead jobs are retried", "conflict"
            )
        await store.retry_jobs(JobQuery(id=job.id))
        return JSONResponse({"status": "queued", "job_id": job.id})

    async def retry_dead(request: Request) -> Response:
        try:
            filters = await json_object(request)
            for key, value in filters.items():
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise ValueError(f"{key[:40]}: expected a string or a number")
            query = _job_query({k: str(v) for k, v in filters.items()}, MAX_LIMIT)
        except ValueError as exc:
            return error_response(400, str(exc))
        count = await store.retry_jobs(query)
        return JSONResponse({"status": "queued", "retried": count})

    async def list_messages(request: Request) -> Response:
        params = request.query_params
        limit = parse_limit(params.get("limit", "50"))
        if limit is None:
            return error_response(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
        status = params.get("status") or None
        if status is not None and status not in MESSAGE_STATUSES:
            return error_response(400, f"status must be one of {', '.join(MESSAGE_STATUSES)}")
        query = MessageQuery(
            tenant=params.get("tenant") or None,
            recipient=params.get("recipient") or None,
            status=status,
            limit=limit,
        )
        messages = await store.list_messages(query)
        return JSONResponse({"messages": [message_json(m) for m in messages]})

    async def get_message(request: Request) -> Response:
        message = await store.get_message(request.path_params["message_id"])
        if message is None:
            return error_response(404, "no such message")
        return JSONResponse(message_json(message))

    async def health(_request: Request) -> Response:
        return JSONResponse(
            {
                "jobs": await store.job_counts(),
                "integrations": outbound.health() if outbound is not None else {},
            }
        )

    async def prometheus(_request: Request) -> Response:
        now = time.time()
        text = metrics.render(
            counters if counters is not None else Counters(),
            job_counts=await store.job_counts(),
            outbound=outbound.health() if outbound is not None else {},
            probes=await probes.report() if probes is not None else [],
            backlog=await store.backlog(now),
            now=now,
        )
        return Response(text, media_type=metrics.CONTENT_TYPE)

    def guard(endpoint: Endpoint) -> Endpoint:
        return guarded(token, endpoint)

    return [
        Route("/admin/api/events", guard(list_events), methods=["GET"]),
        Route("/admin/api/events/replay", guard(replay_matching), methods=["POST"]),
        Route("/admin/api/events/{event_id}", guard(get_event), methods=["GET"]),
        Route("/admin/api/events/{event_id}/replay", guard(replay_event), methods=["POST"]),
        Route("/admin/api/jobs", guard(list_jobs), methods=["GET"]),
        Route("/admin/api/jobs/retry", guard(retry_dead), methods=["POST"]),
        Route("/admin/api/jobs/{job_id}", guard(get_job), methods=["GET"]),
        Route("/admin/api/jobs/{job_id}/retry", guard(retry_job), methods=["POST"]),
        Route("/admin/api/functions/calls", guard(list_function_calls), methods=["GET"]),
        Route("/admin/api/messages", guard(list_messages), methods=["GET"]),
        Route("/admin/api/messages/{message_id}", guard(get_message), methods=["GET"]),
        Route("/admin/api/health", guard(health), methods=["GET"]),
        Route("/metrics", guard(prometheus), methods=["GET"]),
    ]
