"""Starting, probing and stopping the servers under test (each in its own process group)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """The server did not come up; the message carries the tail of its output."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpu: int, argv: Sequence[str]) -> list[str]:
    """``argv`` pinned to one core with taskset (taskset execs, so the pid stays the program's)."""
    taskset = shutil.which("taskset")
    if taskset is None or (os.cpu_count() or 1) < 2:
        return list(argv)
    return [taskset, "-c", str(cpu), *argv]


def tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _ready(port: int, health_path: str | None) -> bool:
    if health_path is None:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return True
        except OSError:
            return False
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{health_path}", timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


@contextlib.contextmanager
def server(
    argv: Sequence[str],
    *,
    port: int,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    health_path: str | None = None,
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; yields once the port (or ``health_path``) answers."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not _ready(port, health_path):
            if proc.poll() is not None:
                raise ServerError(f"exited with code {proc.returncode}:\n{tail(log)}")
            if time.monotonic() > deadline:
                raise ServerError(f"not ready after {timeout:.0f} s:\n{tail(log)}")
            time.sleep(0.1)
        yield proc
    finally:
        stop(proc)


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM (peak resident set) of ``pid`` plus that of its live children, in KiB."""
    total = 0
    found = False
    for each in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
                found = True
    return total if found else None


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) ``pid`` and its live children have used so far."""
    ticks = 0
    found = False
    for each in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        found = True
    return ticks / os.sysconf("SC_CLK_TCK") if found else None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found.extend(int(p) for p in task.read_text().split())
    for child in list(found):
        found.extend(_children(child))
    return found


def _cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields), idle


def background_cpu_percent(interval: float = 0.5) -> float | None:
    """How busy the machine is while the bench itself idles: other load skews every figure."""
    try:
        total0, idle0 = _cpu_times()
        time.sleep(interval)
        total1, idle1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    spent = total1 - total0
    return round(100 * (1 - (idle1 - idle0) / spent), 1) if spent else None


def wait_until_quiet(threshold: float, max_wait: float) -> float | None:
    """Wait (at most ``max_wait`` s) for other processes to leave the CPUs; the last reading."""
    deadline = time.monotonic() + max_wait
    busy = background_cpu_percent()
    while busy is not None and busy > threshold and time.monotonic() < deadline:
        busy = background_cpu_percent()
    return busy
