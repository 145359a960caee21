"""/livez, /readyz (and /healthz, the older name of /livez), SIGTERM draining, --version."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.cli.main import main
from tests.helpers import REPO
from tests.helpers.app import AppFactory
from tests.helpers.integrations import EVENT, TOKEN_VERIFY, acme, section
from tests.helpers.servers import gateway_process

ACME = acme(section("webhook", TOKEN_VERIFY + EVENT))
ENV = {"TOKEN": "t0ken"}


def test_livez_and_healthz_answer_while_the_process_runs(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    for path in ("/livez", "/healthz"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
        assert "authorization" not in response.request.headers


def test_readyz_checks_the_database_the_config_and_the_role_s_tasks(
    make_client: AppFactory,
) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert set(checks) == {
        "shutdown",
        "configuration",
        "database",
        "writer",
        "dispatcher",
        "workers",
        "retention",
        "scheduler",
    }
    assert set(checks.values()) == {"ok"}


def test_readyz_is_503_naming_the_database_when_it_cannot_be_written(
    make_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    readiness = client.app.state.readiness  # type: ignore[attr-defined]

    async def read_only() -> None:
        raise OSError("attempt to write a readonly database")

    monkeypatch.setattr(readiness.store, "check_writable", read_only)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database"]
    assert "database: not writable: OSError" in body["error"]["message"]
    assert client.get("/livez").status_code == 200


def test_readyz_is_503_when_a_background_task_stopped(make_client: AppFactory) -> None:
    class Stopped:
        def done(self) -> bool:
            return True

    client = make_client({"acme.yaml": ACME}, ENV)
    client.app.state.readiness.tasks["workers"] = Stopped()  # type: ignore[attr-defined]
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["workers"]


def test_readyz_is_503_while_draining(make_client: AppFactory) -> None:
    client = make_client({"acme.yaml": ACME}, ENV)
    client.app.state.readiness.drain()  # type: ignore[attr-defined]
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["shutdown"]
    assert response.json()["error"]["message"] == "not ready: shutdown: shutting down"


@pytest.mark.slow
def test_sigterm_turns_readiness_off_first_then_the_process_exits(tmp_path: Path) -> None:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "acme.yaml").write_text(ACME)
    extra = ["--drain", "1.5s", "--log-format", "json", "--log-level", "info"]
    with gateway_process(folder, tmp_path / "g.db", ENV, extra) as server:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["failing"] == ["shutdown"]
        assert httpx.get(f"{server.url}/livez").status_code == 200
        # still serving while draining: an event received now is committed before the exit
        accepted = httpx.post(
            f"{server.url}/webhooks/acme",
            headers={"X-Token": ENV["TOKEN"]},
            json={"id": "evt_drain", "type": "thing"},
        )
        assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
        server.process.wait(timeout=15)
        assert server.process.stdout is not None
        lines = [json.loads(line) for line in server.process.stdout.read().splitlines()]
    assert any(line["message"].startswith("SIGTERM: not ready") for line in lines)
    assert all(line["level"] in ("info", "warning") for line in lines)
    stored = sqlite3.connect(tmp_path / "g.db").execute("SELECT provider_id FROM events")
    assert [row[0] for row in stored] == ["evt_drain"]


def test_version_prints_the_package_s_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("gateway ") and out.split()[1][0].isdigit()


def test_version_from_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("gateway ")
