"""The `gateway` command: lint's contract, serve refusing bad config, simulate, credentials."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gateway.cli.main import main
from gateway.store import SQLiteStore
from gateway.store.entities import Dispatch, JobOutcome, NewEvent, NewJob
from tests.helpers import REPO
from tests.helpers.servers import gateway_process

BAD = "kind: integration\nname: acme\napi: {base_url: https://x.test, timeout: soon}\n"
WARN = "kind: flow\nname: f\nevent: never.emitted\nactions: [{cancel: {key: k}}]\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "integrations.d"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


def test_lint_exit_codes_and_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(REPO / "integrations.d")]) == 0
    assert capsys.readouterr().out.strip().endswith("0 error(s), 0 warning(s)")
    bad = write(tmp_path, "bad.yaml", BAD)
    assert main(["lint", str(bad)]) == 1
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(f"{bad / 'bad.yaml'}:3:42: error: ") and line.endswith(
        "[invalid-duration]"
    )
    assert main(["lint", str(bad), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["errors"], report["diagnostics"][0]["rule"]) == (1, "invalid-duration")
    assert main(["lint", str(bad), "--format", "github"]) == 1
    assert capsys.readouterr().out.startswith("::error file=")
    assert main(["lint", str(tmp_path / "missing")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_lint_strict_fails_on_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write(tmp_path, "f.yaml", WARN)
    assert main(["lint", str(folder)]) == 0
    assert main(["lint", str(folder), "--strict"]) == 1
    assert "[event-not-emitted]" in capsys.readouterr().out


def test_serve_refuses_a_bad_config_with_the_lint_diagnostics(tmp_path: Path) -> None:
    folder = write(tmp_path, "bad.yaml", BAD)
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--integrations", str(folder)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "bad.yaml:3:42: error:" in done.stderr and "[invalid-duration]" in done.stderr


def test_simulate_every_kind_of_provider_against_a_running_gateway(tmp_path: Path) -> None:
    env = {
        "STRIPE_WEBHOOK_SECRET": "whsec_sim",
        "TWILIO_AUTH_TOKEN": "tok",
        "WHATSAPP_VERIFY_TOKEN": "vt",
        "WHATSAPP_APP_SECRET": "app",
        "GOOGLE_CALENDAR_CHANNEL_TOKEN": "chan",
    }
    with gateway_process(REPO / "integrations.d", tmp_path / "g.db", env) as server:
        for integration, example, expect in [
            ("stripe", "checkout_session_completed", '"status":"accepted"'),
            ("twilio", "incoming_sms", "<Response/>"),
            ("whatsapp", "verify_subscription", ""),
            ("google_calendar", "channel_sync", ""),
        ]:
            done = subprocess.run(
                [sys.executable, "-m", "gateway.cli", "simulate", integration, example, "--url", server.url],
                capture_output=True, text=True, timeout=60, env={**env, "PATH": ""}, cwd=REPO, check=False,
            )  # fmt: skip
            assert done.returncode == 0, (integration, done.stdout, done.stderr)
            assert "-> 200" in done.stdout and expect in done.stdout, done.stdout
        unsigned = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "simulate", "sendgrid", "bounce", "--url", server.url],
            capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
        )  # fmt: skip
        assert unsigned.returncode == 2
        assert "--private-key" in unsigned.stderr


def test_credentials_are_encrypted_never_listed_and_win_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("GATEWAY_SECRET_KEY", old)
    monkeypatch.setattr("sys.stdin", io.StringIO("whsec_tenant_secret\n"))
    args = ["--integrations", str(REPO / "integrations.d"), "--db", db]
    new_tenant = ["credentials", "set", "acme", "stripe", "STRIPE_WEBHOOK_SECRET", "--new-tenant"]
    assert main([*new_tenant, *args]) == 0  # acme is not declared in the shipped tenants.yaml
    assert "whsec_tenant_secret" not in capsys.readouterr().out
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("g.db*"))
    assert b"whsec_tenant_secret" not in raw  # encrypted at rest
    assert main(["credentials", "list", "--db", db]) == 0
    listing = capsys.readouterr().out
    assert "acme\tstripe\tSTRIPE_WEBHOOK_SECRET" in listing and "whsec_tenant" not in listing
    monkeypatch.setattr("sys.stdin", io.StringIO("x\n"))
    assert main(["credentials", "set", "acme", "stripe", "NOT_A_SECRET_OF_STRIPE", *args]) == 2
    assert "STRIPE_WEBHOOK_SECRET" in capsys.readouterr().err  # names what stripe does read
    monkeypatch.setenv("GATEWAY_SECRET_KEY", f"{new},{old}")  # a new key goes first
    assert main(["credentials", "rotate", "--db", db]) == 0
    monkeypatch.setenv("GATEWAY_SECRET_KEY", new)  # the old key is gone: rotation must have run
    env = {"GATEWAY_SECRET_KEY": new, "STRIPE_WEBHOOK_SECRET": "whsec_env_secret"}
    with gateway_process(REPO / "integrations.d", tmp_path / "g.db", env) as server:
        tenant_args = ["simulate", "stripe", "checkout_session_completed", "--url", server.url]
        monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_env_secret")
        assert main([*tenant_args, "--tenant", "acme", "--db", db]) == 0  # signed with acme's
        assert '"accepted"' in capsys.readouterr().out
        monkeypatch.setenv("GATEWAY_SECRET_KEY", "")  # simulate cannot read acme's secret now
        assert main([*tenant_args, "--tenant", "acme", "--db", db]) == 1  # env secret: 401
        assert "-> 401" in capsys.readouterr().out
    assert (
        main(["credentials", "delete", "acme", "stripe", "STRIPE_WEBHOOK_SECRET", "--db", db]) == 0
    )
    assert main(["credentials", "list", "--db", db]) == 0
    assert "acme" not in capsys.readouterr().out.replace("deleted", "")


def test_jobs_show_without_an_id_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "g.db"
    db.touch()
    assert main(["jobs", "show", "--db", f"sqlite:///{db}"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("gateway jobs: jobs show needs a JOB id"), captured.err
    assert captured.out == ""


def test_credentials_set_refuses_a_tenant_that_is_neither_declared_nor_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATEWAY_SECRET_KEY", Fernet.generate_key().decode())
    db = tmp_path / "g.db"
    args = ["stripe", "STRIPE_WEBHOOK_SECRET", "--integrations", str(REPO / "integrations.d")]
    args += ["--db", f"sqlite:///{db}"]
    monkeypatch.setattr("sys.stdin", io.StringIO("whsec_x\n"))
    assert main(["credentials", "set", "dmeo", *args]) == 2  # a typo of the declared "demo"
    err = capsys.readouterr().err
    assert "no tenant 'dmeo'" in err and "(declared: demo)" in err and "--new-tenant" in err
    assert not db.exists()  # nothing stored, nothing created
    for tenant in ("demo", "default"):  # declared, and the tenant of un-prefixed webhook URLs
        monkeypatch.setattr("sys.stdin", io.StringIO("whsec_x\n"))
        assert main(["credentials", "set", tenant, *args]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("whsec_x\n"))
    assert main(["credentials", "set", "beta", *args, "--new-tenant"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("whsec_y\n"))
    assert main(["credentials", "set", "beta", *args]) == 0  # it holds credentials now


def test_credentials_help_lists_every_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["credentials", "--help"])
    listing = capsys.readouterr().out
    for action in ("set", "list", "delete", "rotate"):
        assert re.search(rf"^\s+{action}\s+\S", listing, re.MULTILINE), f"{action}: no help"


def test_simulate_sends_the_webhook_a_sync_example_stands_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"CALCOM_WEBHOOK_SECRET": "cal-sim"}
    sync_args = ["simulate", "calcom", "booking_accepted", "--sync", "bookings"]
    base = ["--integrations", str(REPO / "integrations.d")]
    # the example booking (June 2025) has started: the sync would not deliver it now
    assert main([*sync_args, *base]) == 2
    assert "its as_webhook.when does not hold (move the record in time with --at)" in (
        capsys.readouterr().err
    )
    assert main(["simulate", "calcom", "booking_accepted", "--sync", "nope", *base]) == 2
    assert "calcom has no sync 'nope' (syncs: bookings)" in capsys.readouterr().err
    assert main(["simulate", "calcom", "ping", "--sync", "bookings", *base]) == 2
    assert "has no example 'ping' (examples: booking_accepted, " in capsys.readouterr().err
    with gateway_process(REPO / "integrations.d", tmp_path / "g.db", env) as server:
        moved = [*sync_args, "--at", "start=25h", "--url", server.url]
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", *moved],
            capture_output=True, text=True, timeout=60, env={**env, "PATH": ""}, cwd=REPO, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        delivered = json.loads(done.stdout.splitlines()[1])
        assert delivered["status"] == "accepted"
        # Cal.com's own webhook of that booking (same uid) is the same event
        webhook = ["simulate", "calcom", "booking_created", "--url", server.url]
        again = subprocess.run(
            [sys.executable, "-m", "gateway.cli", *webhook],
            capture_output=True, text=True, timeout=60, env={**env, "PATH": ""}, cwd=REPO, check=False,
        )  # fmt: skip
        assert json.loads(again.stdout.splitlines()[1]) == {
            "status": "duplicate",
            "event_id": delivered["event_id"],
        }


def test_jobs_show_prints_the_attempt_history_oldest_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    now = 1_750_000_000.0

    async def record() -> None:
        store = SQLiteStore(db)
        await store.open()
        try:
            await store.insert_events(
                [NewEvent("evt_1", "calcom", "default", "k1", None, None, now, "{}", b"{}")]
            )
            job = NewJob(
                "job_1", "evt_1/job_1", "evt_1", "flow", "fetch", "call", "calcom", "default",
                None, "{}", "{}", now, 5, now,
            )  # fmt: skip
            await store.commit_dispatches([Dispatch("evt_1", "dispatched", [job])])
            for n, (outcome, status, error, answer) in enumerate(
                [("queued", 503, "HTTP 503", "busy\nlater"), ("succeeded", 200, None, "{}")],
                start=1,
            ):
                (claimed,) = await store.claim_jobs(now + 60 * (n - 1), 1, 120.0)
                await store.finish_jobs(
                    [
                        JobOutcome(
                            claimed.id,
                            outcome,
                            run_at=now + 60,
                            error=error,
                            attempt=n,
                            started_at=now + 60 * (n - 1),
                            duration_ms=12.4 * n,
                            http_status=status,
                            answer=answer,
                        )
                    ]
                )
        finally:
            await store.close()

    asyncio.run(record())
    assert main(["jobs", "show", "job_1", "--db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "attempt history (2, oldest first):" in out, out
    at = out.index("attempt history (2, oldest first):")
    assert out[at + 1 :] == [
        "  #1  2025-06-15T15:06:40Z  retry      HTTP 503  12ms  HTTP 503  answer: busy\\nlater",
        "  #2  2025-06-15T15:07:40Z  succeeded  HTTP 200  25ms  answer: {}",
    ]
