"""`gateway serve` refusing to start: one line and exit 2, before anything has started.

A database path it cannot use, a port in use or out of range; and the read-only commands
(`jobs`, `events`, `sync --log`, ...) on a mistyped database path create nothing.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from gateway.cli.main import build_parser, main
from tests.helpers import REPO
from tests.helpers.servers import free_port, gateway_process

SHIPPED = str(REPO / "integrations.d")


def _one_line(err: str, command: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"gateway {command}: "), err
    assert "Traceback" not in err
    return lines[0]


def _serve(db: str, port: int | None = None) -> int:
    port = free_port() if port is None else port
    return main(["serve", "--integrations", SHIPPED, "--db", db, "--port", str(port)])


def test_serve_on_a_folder_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _serve(f"sqlite:///{tmp_path}") == 2
    assert "it is a folder" in _one_line(capsys.readouterr().err, "serve")


def test_serve_on_a_path_under_a_regular_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    assert _serve(f"sqlite:///{tmp_path / 'file' / 'sub' / 'g.db'}") == 2
    assert "a part of its path is a file" in _one_line(capsys.readouterr().err, "serve")


def test_serve_on_a_file_that_is_not_a_database_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 20)
    assert _serve(f"sqlite:///{path}") == 2
    assert "not a SQLite database" in _one_line(capsys.readouterr().err, "serve")
    assert path.read_text().startswith("these are my notes")  # left as it was


def test_serve_on_a_busy_port_is_one_line_exit_2_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert _serve(f"sqlite:///{tmp_path / 'var' / 'g.db'}", port) == 2
    line = _one_line(capsys.readouterr().err, "serve")
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert not (tmp_path / "var").exists()  # checked before the store (or a worker) started


@pytest.mark.parametrize("port", ["99999", "-1", "0", "http"])
def test_a_port_out_of_range_is_a_usage_error(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", port])
    assert exited.value.code == 2
    assert "expected 1 to 65535" in capsys.readouterr().err


def test_the_port_comes_from_gateway_port_then_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_PORT", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    assert build_parser().parse_args(["serve"]).port == 8000
    monkeypatch.setenv("PORT", "8012")
    assert build_parser().parse_args(["serve"]).port == 8012
    assert build_parser().parse_args(["demo"]).port == 8012
    monkeypatch.setenv("GATEWAY_PORT", "8013")
    assert build_parser().parse_args(["serve"]).port == 8013
    assert build_parser().parse_args(["serve", "--port", "8014"]).port == 8014


def test_sighup_is_logged_and_shuts_down_as_sigterm(tmp_path: Path) -> None:
    with gateway_process(REPO / "integrations.d", tmp_path / "g.db", {}) as server:
        server.process.send_signal(signal.SIGHUP)
        server.process.wait(timeout=20)
        assert server.process.stdout is not None
        output = server.process.stdout.read().decode()
    assert "received SIGHUP: shutting down as for SIGTERM" in output, output
    assert server.process.returncode == -signal.SIGHUP  # as SIGTERM ends it with SIGTERM
    assert not (tmp_path / "g.db-wal").exists()  # graceful: the store closed, the WAL folded in


READ_ONLY = [
    ["jobs"],
    ["jobs", "show", "job_1"],
    ["jobs", "retry", "--all"],
    ["events", "list"],
    ["events", "show", "evt_1"],
    ["sync", "--log"],
    ["replay", "evt_1"],
    ["credentials", "list"],
    ["credentials", "delete", "demo", "stripe", "STRIPE_WEBHOOK_SECRET"],
]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_commands_on_a_mistyped_database_create_nothing(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mistyped = tmp_path / "vra" / "gateway.db"
    assert main([*command, "--db", f"sqlite:///{mistyped}"]) == 2
    line = _one_line(capsys.readouterr().err, command[0])
    assert f"no database at {mistyped}" in line
    assert not (tmp_path / "vra").exists()
