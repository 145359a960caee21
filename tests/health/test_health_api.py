"""Health in the admin API, /metrics and `gateway health`, probing a local stand-in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.cli import cmd_health
from gateway.cli.main import main
from gateway.config.model import load_config
from gateway.config.settings import Settings
from gateway.store import SQLiteStore
from gateway.web.application import create_app
from tests.health.test_prober import KEY, acme_yaml
from tests.helpers.app import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ENV = {"ACME_KEY": KEY, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}


def app_client(tmp_path: Path, status: int) -> TestClient:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "acme.yaml").write_text(acme_yaml())
    config = load_config(folder, ENV)
    transport = httpx.MockTransport(lambda r: httpx.Response(status))
    store = SQLiteStore(f"sqlite:///{tmp_path / 'g.db'}")
    return TestClient(create_app(config, store, Settings.from_env(ENV), ENV, transport=transport))


def test_the_admin_api_lists_each_integration_s_health(tmp_path: Path) -> None:
    with app_client(tmp_path, 200) as client:
        client.portal.call(client.app.state.health.probe_all)  # type: ignore[attr-defined,union-attr]
        listed = client.get("/admin/api/integrations", headers=AUTH)
        one = client.get("/admin/api/integrations/acme", headers=AUTH)
        missing = client.get("/admin/api/integrations/nope", headers=AUTH)
        unauthorised = client.get("/admin/api/integrations")
        metrics = client.get("/metrics", headers=AUTH).text
    assert listed.status_code == 200
    [acme] = listed.json()["integrations"]
    assert acme["name"] == "acme" and acme["status"] == "healthy"
    row = acme["tenants"][0]
    assert set(row) >= {
        "status",
        "latency_ms",
        "last_error",
        "last_success_at",
        "checked_at",
        "breaker",
        "limiter_headroom",
        "dead_jobs_last_hour",
        "events_last_hour",
    }
    assert one.json() == acme | {"tenants": one.json()["tenants"]}
    assert missing.status_code == 404
    assert unauthorised.status_code == 401
    assert 'gateway_integration_up{integration="acme",tenant="default"} 1.0' in metrics
    assert 'gateway_integration_probe_seconds{integration="acme",tenant="default"}' in metrics


def test_a_down_integration_is_0_in_metrics(tmp_path: Path) -> None:
    with app_client(tmp_path, 500) as client:
        client.portal.call(client.app.state.health.probe_all)  # type: ignore[attr-defined,union-attr]
        metrics = client.get("/metrics", headers=AUTH).text
        status = client.get("/admin/api/integrations/acme", headers=AUTH).json()["status"]
    assert status == "down"
    assert 'gateway_integration_up{integration="acme",tenant="default"} 0.0' in metrics


def test_gateway_health_prints_the_table_and_exits_1_when_one_is_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "acme.yaml").write_text(acme_yaml())
    config = load_config(folder, ENV)
    db = f"sqlite:///{tmp_path / 'g.db'}"
    for status, code in ((200, 0), (503, 1)):
        transport = httpx.MockTransport(lambda r, s=status: httpx.Response(s))
        rows = asyncio.run(cmd_health.probe_now(config, db, ENV, transport=transport))
        assert cmd_health.report(rows, False, print) == code
        out = capsys.readouterr().out
        header, line = out.splitlines()[:2]
        assert header.split()[:3] == ["INTEGRATION", "TENANT", "STATUS"]
        assert line.split()[:3] == ["acme", "default", "healthy" if code == 0 else "down"]
        assert KEY not in out


def test_gateway_health_without_credentials_exits_0_and_says_unconfigured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "acme.yaml").write_text(acme_yaml())
    monkeypatch.delenv("ACME_KEY", raising=False)
    code = main(["health", "--integrations", str(folder), "--db", f"sqlite:///{tmp_path / 'g.db'}"])
    assert code == 0
    assert "unconfigured" in capsys.readouterr().out


def test_gateway_health_url_needs_the_admin_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_ADMIN_TOKEN", raising=False)
    assert main(["health", "--url", "http://127.0.0.1:9"]) == 2
    assert "GATEWAY_ADMIN_TOKEN" in capsys.readouterr().err
