"""The admin web UI at /admin/: server-rendered pages (Jinja2, autoescaped), no front-end
build, readable without JavaScript.

Behind the admin token: the login form sets a signed, HttpOnly, SameSite=Strict session
cookie (`gateway.web.sessions`); every POST carries the session's CSRF token; every page is
sent with a Content-Security-Policy that allows nothing but this site's own stylesheet. The
pages read and act through the same store methods as the admin JSON API.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.config.envsubst import Secret
from gateway.config.model import DEFAULT_TENANT, Config
from gateway.credentials.secrets import Cipher
from gateway.health.prober import HealthChecks, summarise
from gateway.resources import admin_ui_dir
from gateway.store.entities import EVENT_STATUSES, JOB_STATUSES, EventQuery, JobQuery, StoredEvent
from gateway.store.interfaces import CredentialStore, EventsAndJobs, SyncStore
from gateway.store.sync_model import SyncRunQuery
from gateway.sync.runner import SyncRunner
from gateway.sync.spec import UnknownSync, declared_syncs
from gateway.web.admin_api import query_time as parse_time
from gateway.web.sessions import (
    LOGIN_COOKIE,
    LOGIN_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Sessions,
)

log = logging.getLogger("gateway")

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'"
)
PAGE_SIZE = 50
MINUTES = 60
FORM_LIMIT = 64 * 1024
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]
NOTICES = {
    "replayed": "The event is being replayed.",
    "retried": "{count} dead job(s) queued again.",
    "retried_one": "The job is queued again.",
    "sync_started": "The sync is running.",
    "sync_busy": "A run of that sync is going on already.",
    "credential_set": "The credential is stored (encrypted).",
    "credential_deleted": "The credential is deleted.",
    "credential_missing": "There is no such credential.",
}


class UiStore(EventsAndJobs, CredentialStore, SyncStore, Protocol):
    """Everything the pages read and change."""


@dataclass
class UiContext:
    config: Config
    store: UiStore
    token: Secret | None
    health: HealthChecks
    runner: SyncRunner
    spawn: Spawn
    cipher: Cipher | None
    wake: asyncio.Event | None = None


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g} ms"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(admin_ui_dir() / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["ms"] = _ms
    return env


def sparkline(
    events: list[int], failures: list[int], width: int = 120, height: int = 28
) -> dict[str, Any]:
    """What the overview's inline SVG of events (and failures) per minute draws: its size,
    both polylines' points, and a text alternative that carries the numbers."""
    top = max([1, *events, *failures])
    step = width / max(1, len(events) - 1)

    def points(values: list[int]) -> str:
        return " ".join(
            f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}"
            for i, v in enumerate(values)
        )

    label = (
        f"{sum(events)} events and {sum(failures)} failures in the last hour,"
        f" at most {max(events, default=0)} events a minute"
    )
    return {
        "width": width,
        "height": height,
        "events": points(events),
        "failures": points(failures),
        "label": label,
    }


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form body (the UI's forms send nothing else)."""
    body = await request.body()
    if len(body) > FORM_LIMIT:
        return {}
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def routes(ui: UiContext) -> list[Route]:
    env = environment()
    sessions = Sessions(ui.token.reveal()) if ui.token is not None else None

    def render(request: Request, template: str, status: int = 200, **values: Any) -> Response:
        nonce = sessions.nonce(request.cookies.get(SESSION_COOKIE)) if sessions else None
        notice = NOTICES.get(request.query_params.get("done", ""), "")
        count = request.query_params.get("count", "")
        html = env.get_template(template).render(
            csrf=sessions.csrf(nonce) if sessions and nonce else "",
            signed_in=nonce is not None,
            notice=notice.format(count=count if count.isdigit() else "some"),
            path=request.url.path,
            **values,
        )
        return secured(HTMLResponse(html, status_code=status))

    def secured(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    def redirect(url: str) -> Response:
        return secured(RedirectResponse(url, status_code=303))

    Page = Callable[[Request], Awaitable[Response]]

    def page(handler: Page) -> Page:
        async def guard(request: Request) -> Response:
            if sessions is None:
                return render(request, "off.html", 404)
            nonce = sessions.nonce(request.cookies.get(SESSION_COOKIE))
            if nonce is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return redirect("/admin/login?" + urlencode({"next": target}))
            if request.method == "POST":
                form = await _form(request)
                if not sessions.csrf_ok(nonce, form.get("csrf", "")):
                    return render(
                        request,
                        "error.html",
                        403,
                        message="The form has expired: reload the page and try again.",
                    )
                request.state.form = form
            return await handler(request)

        return guard

    # ---- login ------------------------------------------------------------------------

    async def login_form(request: Request, error: str = "", status: int = 200) -> Response:
        if sessions is None:
            return render(request, "off.html", 404)
        login = sessions.new_login()
        response = render(
            request,
            "login.html",
            status,
            login_csrf=sessions.csrf(login),
            next=_safe_next(request.query_params.get("next", "")),
            error=error,
        )
        response.set_cookie(
            LOGIN_COOKIE,
            login,
            max_age=LOGIN_SECONDS,
            path="/admin/",
            httponly=True,
            samesite="strict",
        )
        return response

    async def login(request: Request) -> Response:
        if sessions is None:
            return render(request, "off.html", 404)
        form = await _form(request)
        login_nonce = sessions.login_nonce(request.cookies.get(LOGIN_COOKIE))
        if not sessions.csrf_ok(login_nonce, form.get("csrf", "")):
            return await login_form(request, "The form has expired: try again.", 403)
        if not sessions.token_matches(form.get("token", "")):
            return await login_form(request, "That is not the admin token.", 401)
        response = redirect(_safe_next(form.get("next", "")))
        response.set_cookie(
            SESSION_COOKIE,
            sessions.new_session(),
            max_age=SESSION_SECONDS,
            path="/admin/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(LOGIN_COOKIE, path="/admin/")
        return response

    async def logout(request: Request) -> Response:
        response = redirect("/admin/login")
        response.delete_cookie(SESSION_COOKIE, path="/admin/")
        return response

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ("admin.css",):
            return secured(HTMLResponse("not found", status_code=404))
        return secured(FileResponse(admin_ui_dir() / "static" / name, media_type="text/css"))

    # ---- overview ---------------------------------------------------------------------

    async def overview(request: Request) -> Response:
        now = time.time()
        since = now - MINUTES * 60
        rows = summarise(await ui.health.report())
        events = await ui.store.list_events(EventQuery(since=since, limit=5000))
        dead = await ui.store.list_jobs(JobQuery(status="dead", since=now - 86400, limit=5000))
        per_minute: dict[str, Counter[int]] = {}
        failed: dict[str, Counter[int]] = {}
        for event in events:
            minute = int((event.received_at - since) // 60)
            per_minute.setdefault(event.integration, Counter())[minute] += 1
            if event.status == "failed":
                failed.setdefault(event.integration, Counter())[minute] += 1
        for job in dead:
            if job.updated_at >= since:
                minute = int((job.updated_at - since) // 60)
                failed.setdefault(job.integration, Counter())[minute] += 1
        shown = []
        for item in rows:
            tenants = item["tenants"]
            first = next((t for t in tenants if t["status"] == item["status"]), tenants[0])
            counts = per_minute.get(item["name"], Counter())
            failures = failed.get(item["name"], Counter())
            shown.append(
                {
                    **item,
                    "row": first,
                    "events": sum(t["events_last_hour"] for t in tenants),
                    "dead": sum(t["dead_jobs_last_hour"] for t in tenants),
                    "spark": sparkline(
                        [counts.get(m, 0) for m in range(MINUTES)],
                        [failures.get(m, 0) for m in range(MINUTES)],
                    ),
                }
            )
        return render(request, "overview.html", integrations=shown, title="Overview")

    # ---- events -----------------------------------------------------------------------

    async def events_page(request: Request) -> Response:
        params = request.query_params
        errors: list[str] = []
        try:
            since = parse_time(params.get("since"), "since")
            until = parse_time(params.get("until"), "until")
        except ValueError as exc:
            errors.append(str(exc))
            since = until = None
        status = params.get("status") or None
        if status is not None and status not in EVENT_STATUSES:
            errors.append(f"status must be one of {', '.join(EVENT_STATUSES)}")
            status = None
        base = EventQuery(
            integration=params.get("integration") or None,
            tenant=params.get("tenant") or None,
            type=params.get("type") or None,
            status=status,
            since=since,
            until=until,
            limit=PAGE_SIZE,
            before=params.get("before") or None,
        )
        find = params.get("q", "").strip()
        found: list[StoredEvent] = []
        if find:
            by_id = await ui.store.list_events(_with(base, provider_id=find))
            by_text = await ui.store.list_events(_with(base, text=find))
            seen: set[str] = set()
            for event in [*by_id, *by_text]:
                if event.id not in seen:
                    seen.add(event.id)
                    found.append(event)
            found.sort(key=lambda e: e.id, reverse=True)
        else:
            found = await ui.store.list_events(base)
        older = None
        if len(found) >= PAGE_SIZE:
            older = "?" + urlencode({**dict(params), "before": found[-1].id})
        return render(
            request,
            "events.html",
            title="Events",
            events=found,
            params=params,
            errors=errors,
            statuses=EVENT_STATUSES,
            integrations=sorted(ui.config.integrations),
            older=older,
        )

    async def event_page(request: Request) -> Response:
        event = await ui.store.get_event(request.path_params["event_id"])
        if event is None:
            return render(request, "error.html", 404, message="There is no such event.")
        jobs = await ui.store.list_jobs(JobQuery(event_id=event.id, limit=100))
        history = await ui.store.job_attempts([job.id for job in jobs])
        normalised: list[str] = []
        for job in jobs:
            pretty = _pretty(job.context)
            if pretty not in normalised:
                normalised.append(pretty)
        return render(
            request,
            "event.html",
            title=f"Event {event.id}",
            event=event,
            body=_pretty_bytes(event.body),
            headers=sorted(event.headers.items()),
            normalised=normalised,
            jobs=[
                (job, _pretty(job.result) if job.result else "", history.get(job.id, []))
                for job in jobs
            ],
        )

    async def replay(request: Request) -> Response:
        event_id = request.path_params["event_id"]
        if not await ui.store.replay_event(event_id):
            return render(request, "error.html", 404, message="There is no such event.")
        if ui.wake is not None:
            ui.wake.set()
        return redirect(f"/admin/events/{event_id}?done=replayed")

    # ---- jobs -------------------------------------------------------------------------

    def job_query(params: Mapping[str, str], limit: int) -> JobQuery:
        status = params.get("status") or None
        if status is not None and status not in JOB_STATUSES:
            raise ValueError(f"status must be one of {', '.join(JOB_STATUSES)}")
        return JobQuery(
            status=status,
            integration=params.get("integration") or None,
            tenant=params.get("tenant") or None,
            since=parse_time(params.get("since"), "since"),
            until=parse_time(params.get("until"), "until"),
            limit=limit,
        )

    def job_filters(params: Mapping[str, str]) -> dict[str, str]:
        return {
            k: params[k]
            for k in ("status", "integration", "tenant", "since", "until")
            if params.get(k)
        }

    async def jobs_page(request: Request) -> Response:
        params = request.query_params
        errors: list[str] = []
        try:
            query = job_query(params, PAGE_SIZE)
        except ValueError as exc:
            errors.append(str(exc))
            query = JobQuery(limit=PAGE_SIZE)
        jobs = await ui.store.list_jobs(query)
        return render(
            request,
            "jobs.html",
            title="Jobs and dead letters",
            jobs=jobs,
            params=params,
            errors=errors,
            statuses=JOB_STATUSES,
            integrations=sorted(ui.config.integrations),
            retry_all="/admin/jobs/retry?" + urlencode(job_filters(params)),
        )

    async def job_page(request: Request) -> Response:
        job = await ui.store.get_job(request.path_params["job_id"])
        if job is None:
            return render(request, "error.html", 404, message="There is no such job.")
        history = await ui.store.job_attempts([job.id])
        return render(
            request,
            "job.html",
            title=f"Job {job.id}",
            job=job,
            attempts=history.get(job.id, []),
            result=_pretty(job.result) if job.result else "",
        )

    async def confirm_retry(request: Request) -> Response:
        filters = job_filters(request.query_params)
        try:
            query = job_query({**filters, "status": "dead"}, 1)
        except ValueError as exc:
            return render(request, "error.html", 400, message=str(exc))
        count = await ui.store.count_jobs(query)
        return render(
            request,
            "confirm_retry.html",
            title="Retry dead jobs",
            count=count,
            filters={**filters, "status": "dead"},
            back="/admin/jobs?" + urlencode(filters),
        )

    async def retry_matching(request: Request) -> Response:
        form: dict[str, str] = request.state.form
        filters = job_filters(form)
        try:
            query = job_query({**filters, "status": "dead"}, 1)
        except ValueError as exc:
            return render(request, "error.html", 400, message=str(exc))
        count = await ui.store.retry_jobs(query)
        if count and ui.wake is not None:
            ui.wake.set()
        shown = {k: v for k, v in filters.items() if k != "status"}
        return redirect("/admin/jobs?" + urlencode({**shown, "done": "retried", "count": count}))

    async def retry_one(request: Request) -> Response:
        job = await ui.store.get_job(request.path_params["job_id"])
        if job is None:
            return render(request, "error.html", 404, message="There is no such job.")
        if job.status != "dead":
            return render(
                request,
                "error.html",
                409,
                message=f"The job is {job.status}: only dead jobs are retried.",
            )
        await ui.store.retry_jobs(JobQuery(id=job.id))
        if ui.wake is not None:
            ui.wake.set()
        return redirect(f"/admin/jobs?done=retried_one&status=queued&integration={job.integration}")

    # ---- syncs ------------------------------------------------------------------------

    async def syncs_page(request: Request) -> Response:
        runs = await ui.store.list_sync_runs(SyncRunQuery(limit=PAGE_SIZE))
        return render(
            request,
            "syncs.html",
            title="Syncs",
            declared=declared_syncs(ui.config),
            runs=runs,
            tenants=sorted(
                {DEFAULT_TENANT, *ui.config.tenants, *await ui.store.tenants_with_credentials()}
            ),
        )

    async def run_sync(request: Request) -> Response:
        form: dict[str, str] = request.state.form
        integration, sync = request.path_params["integration"], request.path_params["sync"]
        tenant = form.get("tenant") or DEFAULT_TENANT
        try:
            started = await ui.runner.start(
                integration, sync, tenant, full=form.get("full") == "true"
            )
        except UnknownSync as exc:
            return render(request, "error.html", 404, message=str(exc))
        if started is None:
            return redirect("/admin/syncs?done=sync_busy")
        ui.spawn(ui.runner.execute(started))
        return redirect("/admin/syncs?done=sync_started")

    # ---- tenants and credentials ------------------------------------------------------

    async def tenants_page(request: Request) -> Response:
        rows = await ui.store.list_credentials()
        return render(
            request,
            "tenants.html",
            title="Tenants and credentials",
            credentials=rows,
            tenants=sorted({*ui.config.tenants, *await ui.store.tenants_with_credentials()}),
            integrations=sorted(ui.config.integrations),
            can_store=ui.cipher is not None,
        )

    async def set_credential(request: Request) -> Response:
        form: dict[str, str] = request.state.form
        if ui.cipher is None:
            return render(
                request, "error.html", 409, message="Set GATEWAY_SECRET_KEY to store credentials."
            )
        tenant, integration, name = (
            form.get(k, "").strip() for k in ("tenant", "integration", "name")
        )
        value = form.get("value", "")
        problems = [
            f"{label} is required"
            for label, given in (
                ("tenant", tenant),
                ("integration", integration),
                ("name", name),
                ("value", value),
            )
            if not given
        ]
        if integration and integration not in ui.config.integrations:
            problems.append(f"there is no integration {integration!r}")
        if problems:
            return render(request, "error.html", 400, message="; ".join(problems))
        await ui.store.set_credential(tenant, integration, name, ui.cipher.encrypt(value))
        log.info("credential %s of %s for %s set in the admin UI", name, integration, tenant)
        return redirect("/admin/tenants?done=credential_set")

    async def delete_credential(request: Request) -> Response:
        form: dict[str, str] = request.state.form
        deleted = await ui.store.delete_credential(
            form.get("tenant", ""), form.get("integration", ""), form.get("name", "")
        )
        return redirect(
            "/admin/tenants?done=" + ("credential_deleted" if deleted else "credential_missing")
        )

    # ---- configuration ----------------------------------------------------------------

    async def config_page(request: Request) -> Response:
        files: dict[str, list[str]] = {}
        for name, integration in ui.config.integrations.items():
            files.setdefault(integration.source, []).append(f"integration {name}")
        for flow in ui.config.flows:
            if flow.source:
                files.setdefault(flow.source, []).append(f"flow {flow.name}")
        return render(
            request,
            "config.html",
            title="Configuration",
            files=sorted(files.items()),
            findings=ui.config.warnings,
            tenants=sorted(ui.config.tenants),
        )

    return [
        Route("/admin", lambda r: redirect("/admin/"), methods=["GET"]),
        Route("/admin/", page(overview), methods=["GET"]),
        Route("/admin/login", login_form, methods=["GET"]),
        Route("/admin/login", login, methods=["POST"]),
        Route("/admin/logout", page(logout), methods=["POST"]),
        Route("/admin/static/{name}", static, methods=["GET"]),
        Route("/admin/events", page(events_page), methods=["GET"]),
        Route("/admin/events/{event_id}", page(event_page), methods=["GET"]),
        Route("/admin/events/{event_id}/replay", page(replay), methods=["POST"]),
        Route("/admin/jobs", page(jobs_page), methods=["GET"]),
        Route("/admin/jobs/retry", page(confirm_retry), methods=["GET"]),
        Route("/admin/jobs/retry", page(retry_matching), methods=["POST"]),
        Route("/admin/jobs/{job_id}", page(job_page), methods=["GET"]),
        Route("/admin/jobs/{job_id}/retry", page(retry_one), methods=["POST"]),
        Route("/admin/syncs", page(syncs_page), methods=["GET"]),
        Route("/admin/syncs/{integration}/{sync}/run", page(run_sync), methods=["POST"]),
        Route("/admin/tenants", page(tenants_page), methods=["GET"]),
        Route("/admin/credentials", page(set_credential), methods=["POST"]),
        Route("/admin/credentials/delete", page(delete_credential), methods=["POST"]),
        Route("/admin/config", page(config_page), methods=["GET"]),
    ]


def _safe_next(target: str) -> str:
    """Where to go after logging in: a path of the admin UI only (no open redirect)."""
    if target.startswith("/admin/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/admin/"


def _with(query: EventQuery, **changes: Any) -> EventQuery:
    fields = {name: getattr(query, name) for name in EventQuery.__dataclass_fields__}
    return EventQuery(**{**fields, **changes})


def _pretty(text: str | None) -> str:
    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True)
    except (ValueError, RecursionError):
        return text


def _pretty_bytes(body: bytes) -> str:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(body)} bytes, not UTF-8)"
    return _pretty(text) or text
