"""Running wrk (installed from Debian packages when missing) with the signed-events Lua script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import pinned

LUA_SCRIPT = Path(__file__).with_name("stripe_events.lua")
_MARKER = "BENCH_RESULT "


@dataclass
class WrkResult:
    requests: int
    seconds: float
    sent: int
    wrapped: int
    duplicates: int
    statuses: dict[int, int]
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    output: str = field(repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def socket_errors(self) -> int:
        return sum(n for kind, n in self.errors.items() if kind != "status")

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests_per_s": round(self.rps, 1),
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "ok_2xx": self.ok_2xx,
            "non_2xx": self.non_2xx,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "duplicates_in_body": self.duplicates,
            "socket_errors": self.errors,
            "sent": self.sent,
            "pool_wrapped": self.wrapped,
        }


def ensure_wrk() -> str:
    """The path of wrk, installing the Debian package first when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("wrk is not installed: run `sudo apt-get install -y wrk` and retry")
    print("bench: wrk not found; installing it with `apt-get install -y wrk` ...", flush=True)
    if _apt("install", "-y", "wrk"):
        print("bench: running `apt-get update` first ...", flush=True)
        if _apt("update") or _apt("install", "-y", "wrk"):
            raise RuntimeError("could not install wrk with apt-get; install it and retry")
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get installed wrk but it is not on PATH")
    return found


def _apt(*args: str) -> int:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    out = subprocess.DEVNULL
    return subprocess.run(
        ["apt-get", *args], env=env, stdout=out, stderr=out, check=False
    ).returncode


def run_wrk(
    wrk: str,
    url: str,
    requests_file: Path,
    *,
    seconds: int,
    connections: int = 64,
    threads: int = 1,
    cpu: int = 1,
    header: str = "Stripe-Signature",
) -> WrkResult:
    argv = pinned(
        cpu,
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(LUA_SCRIPT),
            url,
            "--",
            str(requests_file),
            header,
        ],
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    output = done.stdout + done.stderr
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(_MARKER)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}):\n{output[-2000:]}")
    data = json.loads(line[len(_MARKER) :])
    lat = data["latency_us"]
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        sent=data["sent"],
        wrapped=data["wrapped"],
        duplicates=data["duplicates"],
        statuses={int(k): v for k, v in data["statuses"].items()},
        errors=data["errors"],
        p50_ms=lat["p50"] / 1000,
        p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000,
        max_ms=lat["max"] / 1000,
        output=output,
    )
