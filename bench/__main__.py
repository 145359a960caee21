"""`python -m bench`: lint speed, then ingest of (a) bare, (b) hand-written, (c) gateway."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import (
    booking_load,
    cpu_costs,
    function_latency,
    ingest,
    lint_speed,
    postgres,
    processing,
    replicas,
    report,
    sync_speed,
    targets,
)
from bench.signed import write_requests
from bench.wrk import ensure_wrk

SECTIONS = (
    "lint",
    "costs",
    "bookings",
    "e2e",
    "raw",
    "bare",
    "handwritten",
    "gateway",
    "gateway_pg",
    "gateway_all",
    "replicas",
    "processing",
    "sync",
    "functions",
)
MAKERS = {
    "raw": targets.raw,
    "bare": targets.bare,
    "handwritten": targets.handwritten,
    "gateway": targets.gateway,
    "gateway_pg": postgres.gateway_pg,
    "gateway_all": targets.gateway_all,
}


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="measured wrk run per server")
    parser.add_argument("--warmup", type=int, default=3, help="wrk warm-up per server")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--lint-files", type=int, default=500)
    parser.add_argument("--bookings", type=int, default=3000, help="events of each e2e backlog")
    parser.add_argument(
        "--baseline", help="a git revision whose code the CPU costs are also measured for"
    )
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help="comma list of " + ", ".join(SECTIONS)
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    return parser.parse_args()


def _processing() -> dict[str, Any]:
    return {
        "end_to_end": processing.end_to_end(),
        "outbound": processing.outbound_overhead(),
    }


def _body_bytes(workdir: Path) -> int:
    probe = workdir / "probe.txt"
    size = write_requests(probe, 1, tag="gr12345")  # the tags ingest.py uses are this long
    probe.unlink()
    return size


def main() -> int:
    args = _args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    started = time.monotonic()
    results: dict[str, Any] = {"machine": report.machine(), "started_at": time.time()}
    if "lint" in only:
        print(f"bench: lint speed on {args.lint_files} generated files ...", flush=True)
        try:
            results["lint"] = lint_speed.measure(args.lint_files)
        except Exception as exc:  # a broken lint must not hide the ingest figures
            results["lint"] = {
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
    if "costs" in only:
        print("bench: CPU per event and per job (in process) ...", flush=True)
        try:
            results["costs"] = cpu_costs.measure()
            if args.baseline:
                results["costs"]["baseline"] = cpu_costs.at_revision(args.baseline)
        except Exception as exc:
            results["costs"] = {"error": f"{type(exc).__name__}: {exc}"}
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        servers = [s for s in MAKERS if s in only]
        settings = None
        if servers or "replicas" in only or "bookings" in only:
            settings = ingest.LoadSettings(
                wrk=ensure_wrk(),
                seconds=args.seconds,
                warmup=args.warmup,
                connections=args.connections,
            )
        if servers and settings is not None:
            results["load"] = {
                "seconds": args.seconds,
                "warmup": args.warmup,
                "connections": args.connections,
                "threads": 1,
                "body_bytes": _body_bytes(workdir),
            }
            results["ingest"] = {}
            for key in servers:
                print(f"bench: loading {key} ...", flush=True)
                try:
                    results["ingest"][key] = ingest.measure(MAKERS[key], workdir, settings)
                except postgres.Unavailable as exc:
                    results["ingest"][key] = {"label": targets.LABELS[key], "skipped": str(exc)}
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    results["ingest"][key] = {"label": targets.LABELS[key], "error": error}
            results["ratios"] = report.ratios(results["ingest"])
            results["app_us_per_request"] = report.app_costs(results["ingest"])
        before = None
        if args.baseline and ("bookings" in only or "e2e" in only):
            before = cpu_costs.checkout(args.baseline, workdir / "baseline-code")
        if "bookings" in only and settings is not None:
            try:
                results["bookings"] = booking_load.side_by_side(workdir, settings, before)
            except Exception as exc:
                results["bookings"] = {"error": f"{type(exc).__name__}: {exc}"}
        if "e2e" in only:
            print(f"bench: end to end, a backlog of {args.bookings} of each ...", flush=True)
            try:
                results["e2e"] = booking_load.end_to_end(workdir, args.bookings, before=before)
            except Exception as exc:
                results["e2e"] = {"error": f"{type(exc).__name__}: {exc}"}
        if "replicas" in only and settings is not None:
            print("bench: ingest on PostgreSQL with 1 and 2 replicas ...", flush=True)
            quick = ingest.LoadSettings(
                wrk=settings.wrk,
                seconds=min(settings.seconds, 5),
                warmup=min(settings.warmup, 2),
                connections=settings.connections,
            )
            try:
                results["replicas"] = replicas.run(workdir, quick)
            except postgres.Unavailable as exc:
                results["replicas"] = {"skipped": str(exc)}
            except Exception as exc:
                results["replicas"] = {"error": f"{type(exc).__name__}: {exc}"}
        for section, measure in (
            ("processing", _processing),
            ("sync", sync_speed.run),
            ("functions", function_latency.measure),
        ):
            if section in only:
                print(f"bench: {section} ...", flush=True)
                try:
                    results[section] = measure()
                except Exception as exc:
                    results[section] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if args.keep:
            print(f"bench: logs and databases kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    print()
    print(report.render(results))
    path = report.write(results)
    print(f"\nbench: {results['elapsed_s']} s in all; figures in {path}")
    return 1 if _failed(results) else 0


def _failed(results: dict[str, Any]) -> bool:
    """A measurement that could not be taken, or acknowledged events missing from a store."""
    rows = [
        results.get("lint", {}),
        results.get("costs", {}),
        results.get("bookings", {}),
        results.get("e2e", {}),
        *results.get("bookings", {}).get("servers", {}).values(),
        results.get("processing", {}),
        results.get("sync", {}),
        results.get("functions", {}),
        results.get("replicas", {}),
        *results.get("ingest", {}).values(),
        *results.get("replicas", {}).get("runs", []),
    ]
    lost = any(row.get("durability", {}).get("lost") or row.get("lost") for row in rows)
    return lost or any("error" in row for row in rows)


if __name__ == "__main__":
    raise SystemExit(main())
