"""Lint speed: the project's lint, in-process, on generated files, against yaml.safe_load."""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.providers import write_providers

REPEATS = 3


def _best_of(repeats: int, fn: Callable[[], object]) -> tuple[float, list[float]]:
    times: list[float] = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), times


def _safe_load_all(paths: list[Path], loader: type[Any] | None = None) -> None:
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if loader is None:
            yaml.safe_load(text)
        else:
            yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader, given explicitly


def many_documents(count: int = 1000) -> dict[str, Any]:
    """One file of `count` tiny documents, each with a finding: the file is composed once for
    positions, not once per document (that was quadratic: 1,000 documents took 8-10 s)."""
    from gateway.config.lint import lint

    with tempfile.TemporaryDirectory(prefix="bench-lint-docs-") as tmp:
        directory = Path(tmp) / "integrations.d"
        directory.mkdir()
        docs = [f"kind: tenant\nname: t{i}\nunknown: 1\n" for i in range(count)]
        (directory / "tenants.yaml").write_text("---\n".join(docs))
        start = time.perf_counter()
        result = lint([str(directory)], templates_dir=Path(tmp))
        seconds = time.perf_counter() - start
    return {"documents": count, "findings": len(result.diagnostics), "s": round(seconds, 3)}


def measure(count: int = 500) -> dict[str, Any]:
    start = time.perf_counter()
    from gateway.config.lint import lint  # import time is start-up, not lint speed

    import_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="bench-lint-") as tmp:
        directory = Path(tmp) / "integrations.d"
        paths = write_providers(directory, count)
        total_bytes = sum(p.stat().st_size for p in paths)

        start = time.perf_counter()
        first = lint([str(directory)])
        first_s = time.perf_counter() - start
        best_s, runs = _best_of(REPEATS, lambda: lint([str(directory)]))
        safe_s, _ = _best_of(REPEATS, lambda: _safe_load_all(paths))
        c_loader = getattr(yaml, "CSafeLoader", None)
        c_s = _best_of(REPEATS, lambda: _safe_load_all(paths, c_loader))[0] if c_loader else None

    errors = [d for d in first.diagnostics if d.severity == "error"]
    per_file = 1000 / count
    return {
        "files": count,
        "files_linted": first.files,
        "mean_file_bytes": total_bytes // count,
        "import_s": round(import_s, 3),
        "first_run_ms_per_file": round(first_s * per_file, 3),
        "ms_per_file": round(best_s * per_file, 3),
        "runs_ms_per_file": [round(t * per_file, 3) for t in runs],
        "safe_load_ms_per_file": round(safe_s * per_file, 3),
        "csafe_load_ms_per_file": round(c_s * per_file, 3) if c_s is not None else None,
        "ratio_vs_safe_load": round(best_s / safe_s, 2),
        "ratio_vs_csafe_load": round(best_s / c_s, 2) if c_s else None,
        "diagnostics": len(first.diagnostics),
        "errors": len(errors),
        "first_diagnostics": [str(d) for d in first.diagnostics[:5]],
        "many_documents": many_documents(),
    }
