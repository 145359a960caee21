"""The issue-15 side by side, under the shipped Cal.com booking load (see bookings.py):

- ingest: wrk on core 1 posting unique, signed `BOOKING_CREATED` webhooks to (a) bare
  Starlette, (w) Debian's `webhook` (adnanh/webhook: an HMAC rule, runs /bin/true, stores
  nothing), (c) gateway `--role ingest` and (c') gateway `--role all` (processing in the
  process, calling the fast stand-in on core 1), each on core 0;
- end to end: a backlog of bookings (and of the simplest one-call flow's events) posted to an
  ingest node, then one `--role all` process on core 0 processes it against the stand-in;
  the rate is read from the store (first job made to last outcome recorded), its CPU from
  /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench import bookings, ingest, processing
from bench.procs import HOST, free_port, pinned, server
from bench.targets import GATEWAY_BIN, SERVER_CPU, Target, _env, _uvicorn, sqlite_rows

LOAD_CPU = 1
PATH = f"/webhooks/calcom/{bookings.TENANT}"
HEADER = "X-Cal-Signature-256"
LABELS = {
    "bare": "(a) bare Starlette",
    "webhook": "(w) Debian webhook (adnanh)",
    "gateway": "(c) gateway --role ingest",
    "gateway_all": "(c') gateway --role all",
    "gateway_all_before": "(c') --role all, baseline code",
}


class Unavailable(RuntimeError):
    """A peer that cannot run here (the reason is reported as skipped)."""


@contextlib.contextmanager
def stand_in(workdir: Path) -> Iterator[str]:
    """The providers' fast stand-in (bench/servers/stand_in.py) on core 1: its base URL."""
    port = free_port()
    argv = _uvicorn("bench.servers.stand_in:app", port, cpu=LOAD_CPU)
    log = workdir / f"stand-in-{port}.log"
    with server(argv, port=port, log=log, env=_env()):
        yield f"http://{HOST}:{port}"


def _booking_env(url: str, code: Path | None = None) -> dict[str, str]:
    """`code`: a checkout of another revision's gateway package to run instead."""
    urls = {name: f"{url}/{name}" for name in bookings.PROVIDERS}
    env = {**_env(), **bookings.environment(urls, f"{url}/google_oauth/token", code)}
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")])
    return env


def _serve_argv(folder: Path, db: Path, port: int, role: str) -> list[str]:
    argv = [str(GATEWAY_BIN), "serve", "--host", HOST, "--port", str(port), "--role", role]
    argv += ["--integrations", str(folder), "--db", f"sqlite:///{db}", "--log-level", "warning"]
    return pinned(SERVER_CPU, argv)


def _booking_target(key: str, argv: list[str], env: dict[str, str], **kw: Any) -> Target:
    return Target(
        key, LABELS[key], argv, env, path=PATH, header=HEADER, write=bookings.write_requests, **kw
    )


def bare(workdir: Path, port: int) -> Target:
    return _booking_target("bare", _uvicorn("bench.servers.bare:app", port), _env())


def webhook_binary() -> str:
    """Debian's `webhook`, installed with apt-get when missing (and run as root)."""
    found = shutil.which("webhook")
    if found:
        return found
    if os.geteuid() != 0:
        raise Unavailable("webhook is not installed (apt-get install webhook) and not root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = subprocess.DEVNULL
    for args in (["install", "-y", "webhook"], ["update"], ["install", "-y", "webhook"]):
        subprocess.run(["apt-get", *args], env=env, stdout=quiet, stderr=quiet, check=False)
        found = shutil.which("webhook")
        if found:
            return found
    raise Unavailable("apt-get could not install Debian's webhook package here")


HOOKS = """\
- id: calcom
  execute-command: /bin/true
  response-message: '{{"status":"accepted"}}'
  trigger-rule-mismatch-http-response-code: 401
  trigger-rule:
    match:
      type: payload-hmac-sha256
      secret: {secret}
      parameter: {{source: header, name: {header}}}
"""


def webhook_peer(workdir: Path, port: int) -> Target:
    binary = webhook_binary()
    hooks = workdir / "hooks.yaml"
    hooks.write_text(HOOKS.format(secret=bookings.SECRETS["CALCOM_WEBHOOK_SECRET"], header=HEADER))
    argv = [binary, "-hooks", str(hooks), "-ip", HOST, "-port", str(port)]
    target = _booking_target("webhook", pinned(SERVER_CPU, argv), _env())
    target.path = "/hooks/calcom"
    target.notes.append("verifies the HMAC and runs /bin/true per request; stores nothing")
    return target


def _gateway(workdir: Path, port: int, role: str, code: Path | None = None) -> Target:
    folder = workdir / f"bookings-{role}{'-before' if code else ''}"
    folder.mkdir()
    integrations = bookings.integrations(folder, code)
    db = folder / "gateway.db"
    stack = contextlib.ExitStack()
    url = stack.enter_context(stand_in(workdir)) if role == "all" else "http://127.0.0.1:9"
    key = "gateway" if role == "ingest" else "gateway_all"
    key += "_before" if code else ""
    target = _booking_target(
        key,
        _serve_argv(integrations, db, port, role),
        _booking_env(url, code),
        health_path="/healthz",
        rows=lambda: sqlite_rows(db),
        cleanup=stack.close,
    )
    target.notes.append("the shipped integrations.d, rate limits raised for the stand-in")
    return target


def gateway(workdir: Path, port: int) -> Target:
    return _gateway(workdir, port, "ingest")


def gateway_all(workdir: Path, port: int) -> Target:
    return _gateway(workdir, port, "all")


def _processed(db: Path) -> dict[str, Any]:
    """What processing did in the store: events dispatched, calls made, the backlog left."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        pending = connection.execute("SELECT count(*) FROM events WHERE status = 'pending'")
        left = int(pending.fetchone()[0])
        events = int(connection.execute("SELECT count(*) FROM events").fetchone()[0])
        succeeded = connection.execute("SELECT count(*) FROM jobs WHERE status = 'succeeded'")
        calls = int(succeeded.fetchone()[0])
    return {"events": events, "dispatched": events - left, "backlog": left, "calls": calls}


MAKERS: dict[str, Callable[[Path, int], Target]] = {
    "bare": bare,
    "webhook": webhook_peer,
    "gateway": gateway,
    "gateway_all": gateway_all,
}


def side_by_side(
    workdir: Path, settings: ingest.LoadSettings, before: Path | None = None
) -> dict[str, Any]:
    """Each server under the booking load; `before`: a checkout of the baseline's code, whose
    `--role all` runs too."""
    rows: dict[str, Any] = {}
    makers = dict(MAKERS)
    if before is not None:
        makers["gateway_all_before"] = lambda w, p: _gateway(w, p, "all", before)
    for key, make in makers.items():
        print(f"bench: booking load on {key} ...", flush=True)
        try:
            rows[key] = ingest.measure(make, workdir, settings)
        except Unavailable as exc:
            rows[key] = {"label": LABELS[key], "skipped": str(exc)}
            continue
        except Exception as exc:
            rows[key] = {"label": LABELS[key], "error": f"{type(exc).__name__}: {exc}"}
            continue
        rows[key].pop("wrk_output", None)
        if key.startswith("gateway_all"):
            db = "bookings-all-before" if key.endswith("before") else "bookings-all"
            rows[key]["processed"] = _processed(workdir / db / "gateway.db")
    return {"servers": rows, "ratios": ratios(rows)}


def ratios(rows: dict[str, Any]) -> dict[str, float | None]:
    def rps(key: str) -> float | None:
        value = rows.get(key, {}).get("requests_per_s")
        return float(value) if value else None

    def over(a: str, b: str) -> float | None:
        x, y = rps(a), rps(b)
        return round(x / y, 3) if x and y else None

    return {
        "ingest/bare": over("gateway", "bare"),
        "all/ingest": over("gateway_all", "gateway"),
        "webhook/bare": over("webhook", "bare"),
        "ingest/webhook": over("gateway", "webhook"),
        "all/all_before": over("gateway_all", "gateway_all_before"),
        "all_before/ingest": over("gateway_all_before", "gateway"),
    }


# ---- end to end ---------------------------------------------------------------------------


def _post(url: str, bodies: list[bytes], header: str, sign: Any, workers: int = 8) -> int:
    def post(first: int) -> int:
        ok = 0
        with httpx.Client(timeout=30) as client:
            for body in bodies[first::workers]:
                response = client.post(url, content=body, headers={header: sign(body)})
                ok += response.status_code == 200
        return ok

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(post, range(workers)))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drain(
    folder: Path, db: Path, env: dict[str, str], expected_calls: int, timeout: float
) -> dict[str, Any]:
    """Start `--role all` on a store holding a backlog and wait until `expected_calls` jobs
    succeeded: the window from the first job made to the last outcome, and the CPU used."""
    port = free_port()
    argv = _serve_argv(folder, db, port, "all")
    log = db.with_suffix(".all.log")
    with server(argv, port=port, log=log, env=env, health_path="/healthz") as proc:
        cpu_before = _cpu_seconds(proc.pid)  # start-up (imports, config) is not processing
        deadline = time.monotonic() + timeout
        done = 0
        while time.monotonic() < deadline:
            done = _succeeded(db)
            if done >= expected_calls:
                break
            time.sleep(0.1)
        cpu = _cpu_seconds(proc.pid) - cpu_before
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        first, last = connection.execute(
            "SELECT min(created_at), max(updated_at) FROM jobs WHERE status = 'succeeded'"
        ).fetchone()
    window = (last - first) if first is not None else None
    return {"calls_succeeded": done, "window_s": window, "cpu_s": round(cpu, 2)}


def _succeeded(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        found = connection.execute("SELECT count(*) FROM jobs WHERE status = 'succeeded'")
        return int(found.fetchone()[0])


def _backlog(folder: Path, db: Path, env: dict[str, str], url_path: str, bodies: list[bytes],
             header: str, sign: Any) -> int:  # fmt: skip
    port = free_port()
    argv = _serve_argv(folder, db, port, "ingest")
    log = db.with_suffix(".ingest.log")
    with server(argv, port=port, log=log, env=env, health_path="/healthz"):
        return _post(f"http://{HOST}:{port}{url_path}", bodies, header, sign)


def end_to_end(
    workdir: Path, count: int = 3000, timeout: float = 300.0, before: Path | None = None
) -> dict[str, Any]:
    """Both backlogs drained by this code, and with `before` (a checkout of the baseline's
    code) the booking backlog by that code too."""
    results: dict[str, Any] = {}
    with stand_in(workdir) as url:
        results["bookings"] = _bookings_e2e(workdir / "e2e-bookings", url, count, timeout)
        if before is not None:
            results["bookings_before"] = _bookings_e2e(
                workdir / "e2e-bookings-before", url, count, timeout, before
            )
        results["one_call"] = _one_call_e2e(url, count, timeout)
    return results


def _bookings_e2e(
    folder: Path, url: str, count: int, timeout: float, code: Path | None = None
) -> dict[str, Any]:
    """The shipped booking: SMS, email and calendar calls made, the reminder scheduled."""
    folder.mkdir()
    integrations = bookings.integrations(folder, code)
    env = _booking_env(url, code)
    made = bookings.Bookings("e2e")
    bodies = [made.body(n) for n in range(count)]
    db = folder / "gateway.db"
    accepted = _backlog(integrations, db, env, PATH, bodies, HEADER, bookings.signature)
    drained = _drain(integrations, db, env, accepted * bookings.JOBS_RUN_NOW, timeout)
    return _rates(accepted, drained, bookings.JOBS_RUN_NOW)


def _one_call_e2e(url: str, count: int, timeout: float) -> dict[str, Any]:
    """The simplest flow: one call per event."""
    folder = processing._folder()
    env = {
        **_env(),
        "ACME_SECRET": processing.SECRET,
        "ACME_TOKEN": processing.TOKEN,
        "ACME_BASE_URL": f"{url}/acme",
    }
    bodies = [
        json.dumps({"id": f"e2e-{n}", "type": "thing.made", "name": f"n{n}"}).encode()
        for n in range(count)
    ]
    db = folder / "gateway.db"
    accepted = _backlog(
        folder / "integrations", db, env, "/webhooks/acme", bodies, "X-Acme-Signature",
        processing.sign,
    )  # fmt: skip
    drained = _drain(folder / "integrations", db, env, accepted, timeout)
    shutil.rmtree(folder, ignore_errors=True)
    return _rates(accepted, drained, 1)


def _rates(accepted: int, drained: dict[str, Any], calls_each: int) -> dict[str, Any]:
    window = drained["window_s"]
    processed = drained["calls_succeeded"] // calls_each
    return {
        "events": accepted,
        "processed": processed,
        "window_s": round(window, 3) if window else None,
        "per_s": round(processed / window, 1) if window else None,
        "cpu_us_per_event": round(drained["cpu_s"] / processed * 1e6, 1) if processed else None,
    }
