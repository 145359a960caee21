"""Diagnostics: one problem in one place of one file, and the formats they print in."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

SEVERITIES = ("error", "warning")


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    path: str
    line: int
    col: int
    severity: str
    message: str
    rule: str

    def text(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.severity}: {self.message} [{self.rule}]"

    def github(self) -> str:
        # GitHub Actions workflow command; '%', CR and LF must be escaped in the message.
        message = self.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return (
            f"::{self.severity} file={self.path},line={self.line},col={self.col},"
            f"title={self.rule}::{message}"
        )


def summary(diagnostics: Sequence[Diagnostic], files: int) -> str:
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    noun = "file" if files == 1 else "files"
    return f"{files} {noun} checked: {errors} error(s), {warnings} warning(s)"


def render(diagnostics: Iterable[Diagnostic], fmt: str, files: int) -> str:
    items = sorted(diagnostics)
    if fmt == "json":
        errors = sum(d.severity == "error" for d in items)
        return json.dumps(
            {
                "files": files,
                "errors": errors,
                "warnings": len(items) - errors,
                "diagnostics": [asdict(d) for d in items],
            },
            indent=2,
        )
    lines = [d.github() if fmt == "github" else d.text() for d in items]
    lines.append(summary(items, files))
    return "\n".join(lines)
