"""The printed table and bench/results/latest.json."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")
TARGETS = {"c/a": 0.8, "c/b": 1.5, "p99_ms": 50.0, "lint_ms_per_file": 2.0}
INGEST_KEYS = ("raw", "bare", "handwritten", "gateway", "gateway_pg", "gateway_all")


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def ratios(ingest: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    def rps(key: str) -> float | None:
        value = ingest.get(key, {}).get("requests_per_s")
        return float(value) if value else None

    a, b, c = rps("bare"), rps("handwritten"), rps("gateway")
    return {
        "c/a": round(c / a, 3) if a and c else None,
        "c/b": round(c / b, 3) if b and c else None,
        "b/a": round(b / a, 3) if a and b else None,
    }


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


RATIOS = ("c/a", "c/b", "b/a")


def _ratio(values: dict[str, float | None], key: str) -> str:
    value = values.get(key)
    if value is None:
        return f"{key} = n/a"
    target = TARGETS.get(key)
    if target is None:
        return f"{key} = {value:.2f}"
    return f"{key} = {value:.2f} (target >= {target:g}: {_mark(value >= target)})"


def render(results: dict[str, Any]) -> str:
    lines: list[str] = []
    lint = results.get("lint", {})
    if lint:
        lines.append("Lint speed (in-process, after start-up)")
    if "error" in lint:
        lines.append(f"  FAILED: {lint['error']}")
    elif lint:
        ms = lint["ms_per_file"]
        lines.append(
            f"  {lint['files']} generated provider files, {lint['mean_file_bytes']} bytes each;"
            f" import {lint['import_s'] * 1000:.0f} ms (excluded)"
        )
        lines.append(
            f"  {'gateway lint (best of 3)':<34}{ms:>8.3f} ms/file   target < 2 ms: "
            f"{_mark(ms < TARGETS['lint_ms_per_file'])}"
        )
        lines.append(
            f"  {'gateway lint (first run)':<34}{lint['first_run_ms_per_file']:>8.3f} ms/file"
        )
        many = lint.get("many_documents")
        if many:
            lines.append(
                f"  {'one file of ' + str(many['documents']) + ' documents':<34}"
                f"{many['s'] * 1000:>8.0f} ms ({many['findings']} findings)"
            )
        lines.append(
            f"  {'yaml.safe_load (pure Python)':<34}{lint['safe_load_ms_per_file']:>8.3f}"
            f" ms/file   lint/safe_load = {lint['ratio_vs_safe_load']:.2f}x"
        )
        if lint.get("csafe_load_ms_per_file") is not None:
            lines.append(
                f"  {'yaml.load(CSafeLoader)':<34}{lint['csafe_load_ms_per_file']:>8.3f}"
                f" ms/file   lint/CSafeLoader = {lint['ratio_vs_csafe_load']:.2f}x"
            )
        lines.append(
            f"  diagnostics on the generated files: {lint['diagnostics']} ({lint['errors']} errors)"
        )
        lines.extend(f"    {d}" for d in lint.get("first_diagnostics", []))

    ingest = results.get("ingest", {})
    cfg = results.get("load", {})
    if not ingest:  # the sections measured without the load generator still count
        lines.extend(_speed(results))
        lines.extend(_processing(results.get("processing")))
        lines.extend(_sync(results.get("sync")))
        lines.extend(_functions(results.get("functions")))
        lines.extend(_replicas(results.get("replicas")))
        return "\n".join(lines)
    if lines:
        lines.append("")
    lines.append(
        f"Ingest: wrk -t1 -c{cfg.get('connections')} {cfg.get('seconds')} s after a "
        f"{cfg.get('warmup')} s warm-up, wrk on core 1, server on core 0, 1 worker,"
        f" {cfg.get('body_bytes')}-byte signed unique Stripe events"
    )
    header = (
        f"  {'server':<36}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
        f"{'sock err':>9}{'peak RSS':>10}{'CPU us/req':>11}"
    )
    lines.append(header)
    lines.append("  " + "-" * (len(header) - 2))
    for key in INGEST_KEYS:
        row = ingest.get(key)
        if row is None:
            continue
        if "skipped" in row:
            lines.append(f"  {row['label']:<36}skipped: {row['skipped']}")
            continue
        if "error" in row:
            first, *rest = row["error"].splitlines() or [""]
            lines.append(f"  {row.get('label', key):<36}FAILED: {first}")
            lines.extend(f"      {line}" for line in rest[-12:])
            continue
        errors = sum(v for k, v in row["socket_errors"].items() if k != "status")
        rss = f"{row['peak_rss_mib']:.0f} MiB" if row.get("peak_rss_mib") else "-"
        cpu = f"{row['server_cpu_us']:.1f}" if row.get("server_cpu_us") else "-"
        lines.append(
            f"  {row['label']:<36}{row['requests_per_s']:>9.0f}{row['p50_ms']:>9.2f}"
            f"{row['p99_ms']:>9.2f}{row['non_2xx']:>9}{errors:>9}{rss:>10}{cpu:>11}"
        )
    lines.append("")
    lines.append("  " + "    ".join(_ratio(results.get("ratios", {}), key) for key in RATIOS))
    lines.extend(_app_costs(ingest))
    gw = ingest.get("gateway", {})
    if "p99_ms" in gw:
        lines.append(
            f"  gateway p99 {gw['p99_ms']:.1f} ms (target < 50 ms: "
            f"{_mark(gw['p99_ms'] < TARGETS['p99_ms'])})"
        )
    for key in INGEST_KEYS:
        row = ingest.get(key, {})
        if row.get("non_2xx"):
            lines.append(f"  WARNING {row['label']}: non-2xx statuses {row['statuses']}")
        if row.get("server_log_tail"):
            lines.append(f"  {row['label']} server log (last lines):")
            lines.extend(f"      {line}" for line in row["server_log_tail"].splitlines()[-15:])
        if row.get("pool_wrapped"):
            lines.append(f"  WARNING {row['label']}: the signed-event pool wrapped (repeats sent)")
        dur = row.get("durability")
        if dur:
            verdict = "ok" if dur["ok"] else "MISMATCH"
            lines.append(
                f"  {row['label']} store: {dur['rows']} rows vs {dur['ok_2xx']} 2xx answers"
                f" ({dur['duplicates']} duplicates, {dur['unanswered_in_flight']} sent but"
                f" unanswered at wrk's stop, {dur['lost']} lost): {verdict}"
            )
        for note in row.get("notes", []):
            lines.append(f"  note {row['label']}: {note}")
    lines.extend(_speed(results))
    lines.extend(_processing(results.get("processing")))
    lines.extend(_sync(results.get("sync")))
    lines.extend(_functions(results.get("functions")))
    lines.extend(_replicas(results.get("replicas")))
    return "\n".join(lines)


def app_costs(ingest: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Wall time per request each app adds to uvicorn alone (1/rate - 1/rate of (0)): the
    server's own cost is the same for every app, so this is what each app's work costs."""
    raw = ingest.get("raw", {}).get("requests_per_s")
    if not raw:
        return {}
    costs = {}
    for key in INGEST_KEYS[1:]:
        rate = ingest.get(key, {}).get("requests_per_s")
        if rate:
            costs[key] = round(1e6 / rate - 1e6 / raw, 1)
    return costs


def _app_costs(ingest: dict[str, dict[str, Any]]) -> list[str]:
    costs = app_costs(ingest)
    if not costs:
        return []
    raw_us = 1e6 / ingest["raw"]["requests_per_s"]
    parts = ", ".join(f"{ingest[k]['label'].split(' ')[0]} +{v:.0f}" for k, v in costs.items())
    return [f"  us a request: uvicorn alone {raw_us:.0f}; what each app adds to it: {parts}"]


SPEED = {  # issue 15's targets
    "ingest/bare": 1.0,
    "all/ingest": 0.6,
    "all_p99_ms": 50.0,
    "bookings_per_s": 1000.0,
    "one_call_per_s": 3000.0,
}


def _speed(results: dict[str, Any]) -> list[str]:
    """The booking side by side, the end-to-end rates and the CPU per event and per job."""
    lines: list[str] = []
    costs = results.get("costs")
    if costs:
        lines += ["", "CPU per event and per job (in process, CPU time; the shipped booking)"]
        if "error" in costs:
            lines.append(f"  FAILED: {costs['error']}")
        else:
            ok_d = costs["dispatch_stored_us"] <= costs["target_dispatch_us"]
            ok_j = costs["job_us"] <= costs["target_job_us"]
            lines += [
                f"  dispatch: {costs['dispatch_pure_us']} us an event (mapping, flows, 4 jobs);"
                f" {costs['dispatch_stored_us']} us with the store's read and commit"
                f" (target <= {costs['target_dispatch_us']:g}: {_mark(ok_d)})",
                f"  job: {costs['job_us']} us ({costs['jobs']} jobs, an in-process stand-in;"
                f" httpx alone {costs['transport_us_per_call']} us a call) (target <="
                f" {costs['target_job_us']:g}: {_mark(ok_j)})",
            ]
            base = costs.get("baseline")
            if base:
                lines.append(
                    f"  before ({base['revision']}): dispatch {base['dispatch_pure_us']} us,"
                    f" {base['dispatch_stored_us']} us stored, job {base['job_us']} us; now/before:"
                    f" {costs['dispatch_pure_us'] / base['dispatch_pure_us']:.2f},"
                    f" {costs['dispatch_stored_us'] / base['dispatch_stored_us']:.2f},"
                    f" {costs['job_us'] / base['job_us']:.2f}"
                )
    found = results.get("bookings")
    if found:
        lines += [
            "",
            "Booking load: wrk -c64 on core 1, server on core 0, unique signed Cal.com"
            " BOOKING_CREATED webhooks",
        ]
        if "error" in found:
            lines.append(f"  FAILED: {found['error']}")
        else:
            lines += _booking_rows(found)
    e2e = results.get("e2e")
    if e2e:
        lines += ["", "End to end on one core (a backlog processed by one --role all process)"]
        if "error" in e2e:
            lines.append(f"  FAILED: {e2e['error']}")
        else:
            for key, what, target in (
                ("bookings", "Cal.com bookings (3 calls + reminder)", "bookings_per_s"),
                ("bookings_before", "the same, baseline code", "bookings_per_s"),
                ("one_call", "one-call flow events", "one_call_per_s"),
            ):
                row = e2e.get(key)
                if row is None:
                    continue
                rate = row["per_s"] or 0.0
                lines.append(
                    f"  {what}: {row['per_s']}/s ({row['processed']} of {row['events']} in"
                    f" {row['window_s']} s), {row['cpu_us_per_event']} us CPU each"
                    f" (target >= {SPEED[target]:g}/s: {_mark(rate >= SPEED[target])})"
                )
    return lines


LABEL_OF = {"gateway_all": "--role all", "gateway_all_before": "--role all (baseline code)"}


def _booking_rows(found: dict[str, Any]) -> list[str]:
    lines = [f"  {'server':<34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"]
    for row in found["servers"].values():
        if "skipped" in row or "error" in row:
            lines.append(f"  {row['label']:<34}{row.get('skipped') or 'FAILED: ' + row['error']}")
            continue
        lines.append(
            f"  {row['label']:<34}{row['requests_per_s']:>9.0f}{row['p50_ms']:>9.2f}"
            f"{row['p99_ms']:>9.2f}{row['non_2xx']:>9}"
        )
    ratios = found["ratios"]
    parts = []
    for key, target in (("ingest/bare", 1.0), ("all/ingest", 0.6)):
        value = ratios.get(key)
        shown = "n/a" if value is None else f"{value:.2f}"
        verdict = "" if value is None else f": {_mark(value >= target)}"
        parts.append(f"{key} = {shown} (target >= {target:g}{verdict})")
    for key in ("webhook/bare", "ingest/webhook", "all/all_before", "all_before/ingest"):
        value = ratios.get(key)
        parts.append(f"{key} = {'n/a' if value is None else f'{value:.2f}'}")
    lines.append("  " + "    ".join(parts))
    every = found["servers"].get("gateway_all", {})
    if "p99_ms" in every:
        ok = every["p99_ms"] <= SPEED["all_p99_ms"]
        lines.append(f"  --role all p99 {every['p99_ms']:.1f} ms (target <= 50 ms: {_mark(ok)})")
    for key in ("gateway_all", "gateway_all_before"):
        done = found["servers"].get(key, {}).get("processed")
        if done:
            lines.append(
                f"  {LABEL_OF[key]} processed {done['dispatched']} of {done['events']} bookings"
                f" during the load ({done['calls']} calls made); {done['backlog']} left"
            )
    for row in found["servers"].values():
        dur = row.get("durability")
        if dur and not dur["ok"]:
            lines.append(f"  {row['label']} store: MISMATCH {dur}")
    return lines


def _processing(found: dict[str, Any] | None) -> list[str]:
    if not found:
        return []
    if "error" in found:
        return ["", f"Processing: FAILED: {found['error']}"]
    e2e, out = found["end_to_end"], found["outbound"]
    return [
        "",
        "Processing (one gateway process --role all on core 0; the sandbox on core 1)",
        f"  end to end: {e2e['events']} signed webhooks -> flow -> call to the sandbox:"
        f" {e2e['events_per_s']} events/s ({e2e['jobs_succeeded']} jobs succeeded,"
        f" {e2e['calls_received']} calls received, {e2e['seconds']} s)",
        f"  outbound call, sequential: bare httpx {out['bare_httpx_us']} us, engine"
        f" {out['engine_us']} us: {out['overhead_us']:+} us per call ({out['ratio']}x)",
    ]


def _sync(found: dict[str, Any] | None) -> list[str]:
    if not found:
        return []
    if "error" in found:
        return ["", f"Sync: FAILED: {found['error']}"]
    return [
        "",
        f"Sync: {found['records']} records, {found['page_size']} a page: "
        f"{found['records_per_s']} records/s; peak Python memory {found['peak_mib']} MiB "
        f"(streams: {found['streams']})",
    ]


def _functions(found: dict[str, Any] | None) -> list[str]:
    if not found:
        return []
    if "error" in found:
        return ["", f"In-call functions: FAILED: {found['error']}"]
    ok = found["overhead_p99_ms"] < found["target_p99_ms"]
    return [
        "",
        f"In-call functions ({found['calls']} sequential calls, one step each, in-process):",
        f"  bare httpx to the sandbox p50 {found['bare_p50_ms']} ms, p99 {found['bare_p99_ms']} ms;"
        f" function call p50 {found['function_p50_ms']} ms, p99 {found['function_p99_ms']} ms",
        f"  the gateway's own overhead: p50 {found['overhead_p50_ms']:+} ms, p99"
        f" {found['overhead_p99_ms']:+} ms (target p99 < {found['target_p99_ms']} ms)"
        f" {_mark(ok)}",
    ]


def _replicas(found: dict[str, Any] | None) -> list[str]:
    if not found:
        return []
    if "skipped" in found:
        return ["", f"Replicas on PostgreSQL: skipped: {found['skipped']}"]
    if "error" in found:
        return ["", f"Replicas on PostgreSQL: FAILED: {found['error']}"]
    lines = [
        "",
        f"Ingest on one PostgreSQL, by replicas of gateway --role ingest (wrk -c"
        f"{found['connections']} shared out, {found['seconds']} s, {found['cores']} cores"
        " shared by wrk, the replicas and PostgreSQL)",
    ]
    for row in found["runs"]:
        lines.append(
            f"  {row['replicas']} replica(s): {row['requests_per_s']:>8.0f} req/s, p99"
            f" {row['p99_ms']:.1f} ms, {row['non_2xx']} non-2xx, {row['rows']} rows,"
            f" {row['lost']} lost"
        )
    return lines


def write(results: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "latest.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    return path
