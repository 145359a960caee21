"""The CLI's one edge: anticipated failures are one line (or the diagnostics, once), never a trace.

`gateway.cli.main.main` maps exceptions to exit codes: usage and credential errors are 2 with
``gateway <command>: message``, configuration errors 1 with the lint diagnostics, Ctrl-C 130.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gateway.cli.main import main
from tests.helpers import REPO

SHIPPED = str(REPO / "integrations.d")
NOT_A_KEY = "this-is-not-a-fernet-key"
BROKEN = "kind: integration\nname: acme\napi: {base_url: https://x.test, timeout: soon}\n"
DIAGNOSTIC = "bad.yaml:3:42: error:"


def _broken_folder(tmp_path: Path) -> str:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "bad.yaml").write_text(BROKEN)
    return str(folder)


def _one_line(err: str, command: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"gateway {command}: "), err
    assert "Traceback" not in err
    return lines[0]


def test_simulate_for_a_tenant_with_a_malformed_secret_key_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_SECRET_KEY", NOT_A_KEY)
    db = f"sqlite:///{tmp_path / 'g.db'}"
    argv = ["simulate", "stripe", "checkout_session_completed", "--tenant", "acme"]
    assert main([*argv, "--integrations", SHIPPED, "--db", db, "--url", "http://127.0.0.1:9"]) == 2
    line = _one_line(capsys.readouterr().err, "simulate")
    assert "GATEWAY_SECRET_KEY holds a key that is not a Fernet key" in line
    assert NOT_A_KEY not in line  # the key itself is a secret


def test_the_installed_command_prints_no_traceback_for_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "gateway", "simulate", "stripe", "checkout_session_completed",
            "--tenant", "acme", "--integrations", SHIPPED, "--db", f"sqlite:///{tmp_path / 'g.db'}",
        ],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
        env={"GATEWAY_SECRET_KEY": NOT_A_KEY, "PATH": ""},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    _one_line(done.stderr, "simulate")


@pytest.mark.parametrize(
    "command",
    [
        ["simulate", "stripe", "checkout_session_completed"],
        ["sync", "acme"],
        ["credentials", "set", "acme", "stripe", "STRIPE_WEBHOOK_SECRET"],
    ],
)
def test_a_broken_configuration_prints_its_diagnostics_once_and_exits_1(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GATEWAY_SECRET_KEY", Fernet.generate_key().decode())
    folder = _broken_folder(tmp_path)
    db = f"sqlite:///{tmp_path / 'g.db'}"
    assert main([*command, "--integrations", folder, "--db", db]) == 1
    captured = capsys.readouterr()
    assert captured.err.count(DIAGNOSTIC) == 1, captured.err
    assert captured.err.count("error(s)") == 1  # the summary, once
    assert "[invalid-duration]" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_serve_with_a_broken_configuration_prints_its_diagnostics_once(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--integrations", _broken_folder(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count(DIAGNOSTIC) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_a_sandbox_that_cannot_start_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "--host", "0.0.0.0"]) == 2  # noqa: S104 - refused, never bound
    assert "loopback" in _one_line(capsys.readouterr().err, "sandbox")
    missing = tmp_path / "missing.yaml"
    assert main(["sandbox", "--responses", str(missing)]) == 2
    assert "cannot read" in _one_line(capsys.readouterr().err, "sandbox")


def test_simulate_without_a_gateway_to_reach_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_unreached")
    argv = ["simulate", "stripe", "checkout_session_completed", "--integrations", SHIPPED]
    assert main([*argv, "--url", "http://127.0.0.1:9"]) == 2  # port 9: nothing listens
    assert "cannot reach http://127.0.0.1:9" in _one_line(capsys.readouterr().err, "simulate")


def test_ctrl_c_is_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr("gateway.cli.cmd_lint.lint", interrupted)
    assert main(["lint", SHIPPED]) == 130


def test_no_command_converts_errors_itself() -> None:
    for path in (REPO / "gateway" / "cli").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "SystemExit" not in text, f"{path.name}: let the edge in main.py map the error"
        if path.name != "main.py":
            assert "except ConfigError" not in text and "except CredentialError" not in text


@pytest.mark.parametrize(
    "argv",
    [["serve", "--port", "99999"], ["serve", "--port", "-1"], ["nosuch"], ["jobs", "--limit", "x"]],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("gateway") and "usage:" not in err


def test_simulate_with_a_secret_that_is_not_base64_names_the_integration_and_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Airtable's MAC secret is base64 (secret_encoding: base64): one that is not cannot sign,
    which is said in one line naming the integration and the secret, never its value."""
    not_base64 = "not*base64*at*all"
    monkeypatch.setenv("AIRTABLE_WEBHOOK_MAC_SECRET", not_base64)
    db = f"sqlite:///{tmp_path / 'g.db'}"
    argv = ["simulate", "airtable", "ping", "--integrations", SHIPPED, "--db", db]
    assert main([*argv, "--url", "http://127.0.0.1:9"]) == 2
    line = _one_line(capsys.readouterr().err, "simulate")
    assert "airtable: verify.secret (AIRTABLE_WEBHOOK_MAC_SECRET) is not valid base64" in line
    assert not_base64 not in line
