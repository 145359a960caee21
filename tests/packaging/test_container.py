"""The Containerfile and its build context, read (no container engine needed): nothing secret
or bulky is sent to the build, the image runs as a numeric non-root user, its healthcheck needs
no shell, and the runtime stage installs a wheel without keeping a copy of the sources."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest

from gateway.durations import parse_duration
from tests.helpers import REPO

CONTAINERFILE = (REPO / "Containerfile").read_text()
IGNORED = [
    line.strip()
    for line in (REPO / ".dockerignore").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions(CONTAINERFILE):
        if instruction[0] == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def _ignored(path: str) -> bool:
    parts = Path(path).parts
    for pattern in IGNORED:
        bare = pattern.rstrip("/")
        if any(fnmatch.fnmatch(part, bare) for part in parts) or fnmatch.fnmatch(path, bare):
            return True
    return False


def test_the_build_context_leaves_out_venvs_databases_secrets_and_caches() -> None:
    for path in (
        ".venv/bin/python", "var/gateway.db", "var/demo.db-wal", "x.db-shm", ".env",
        ".env.production", ".git/HEAD", "gateway/__pycache__/x.pyc", ".pytest_cache/v",
        ".mypy_cache/x", ".ruff_cache/x", "build/lib/x.py", "dist/x.whl",
    ):  # fmt: skip
        assert _ignored(path), path
    for path in ("gateway/cli/main.py", "schemas/flow.schema.json", "integrations.d/stripe.yaml"):
        assert not _ignored(path), path


def test_what_the_containerfile_copies_is_in_the_build_context() -> None:
    for stage in _stages():
        for word, rest in stage:
            if word == "COPY" and "--from" not in rest:
                for source in rest.split()[:-1]:
                    assert (REPO / source).exists(), source
                    assert not _ignored(source), source


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    users = [rest for word, rest in _stages()[-1] if word == "USER"]
    assert users, "the runtime stage sets no USER"
    user, _, group = users[-1].partition(":")
    assert user.isdecimal() and int(user) != 0
    assert not group or (group.isdecimal() and int(group) != 0)


def test_the_healthcheck_and_command_are_exec_form() -> None:
    (healthcheck,) = [rest for word, rest in _stages()[-1] if word == "HEALTHCHECK"]
    _, _, command = healthcheck.partition(" CMD ")
    assert isinstance(json.loads(command), list) and "/healthz" in command
    (cmd,) = [rest for word, rest in _stages()[-1] if word == "CMD"]
    assert json.loads(cmd)[:2] == ["gateway", "serve"]


def test_the_runtime_stage_installs_a_wheel_and_keeps_no_sources() -> None:
    stages = _stages()
    assert len(stages) >= 2, "no separate build stage"
    runtime = stages[-1]
    copied = [rest.split()[:-1] for word, rest in runtime if word in ("COPY", "ADD")]
    for sources in copied:
        for source in sources:
            assert not source.startswith("--from"), "a build output copied into the image"
            assert source not in ("gateway", "pyproject.toml", "setup.py", "."), source
    runs = " ".join(rest for word, rest in runtime if word == "RUN")
    assert "--mount=type=bind,from=build" in runs and "pip install /wheels/" in runs
    builds = " ".join(rest for word, rest in stages[0] if word == "RUN")
    assert "pip wheel" in builds


def test_the_image_sets_the_connection_limits_serve_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.cli.main import build_parser

    env = " ".join(rest for word, rest in _stages()[-1] if word == "ENV")
    settings = dict(re.findall(r"(GATEWAY_[A-Z_]+)=(\S+)", env))
    for name in ("GATEWAY_READ_TIMEOUT", "GATEWAY_KEEP_ALIVE", "GATEWAY_MAX_CONNECTIONS"):
        assert name in settings, f"the image does not set {name}"
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GATEWAY_READ_TIMEOUT", "7s")  # serve reads the variables it is given
    serve = build_parser().parse_args(["serve"])
    assert serve.read_timeout == 7.0
    assert serve.keep_alive == parse_duration(settings["GATEWAY_KEEP_ALIVE"])
    assert serve.max_connections == int(settings["GATEWAY_MAX_CONNECTIONS"])
    assert (serve.host, serve.port) == ("0.0.0.0", 8000)  # noqa: S104 - in a container
