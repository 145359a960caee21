"""Shared fixtures: a gateway app on a temporary SQLite file, driven in-process."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from gateway.config.model import Config, load_config
from gateway.config.settings import Settings
from gateway.store import SQLiteStore
from gateway.web.application import create_app

REPO = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "test-admin-token"


def stripe_header(body: bytes, secret: str, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


AppFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[AppFactory]:
    """Build a TestClient over a folder of YAML texts (or a real folder) and an environment."""
    clients: list[TestClient] = []

    def factory(
        files: Mapping[str, str] | Path,
        environ: Mapping[str, str] | None = None,
        *,
        templates: Mapping[str, str] | None = None,
    ) -> TestClient:
        env = {"GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN, **(environ or {})}
        if isinstance(files, Path):
            folder = files
            templates_dir = files.parent / "templates"
        else:
            folder = tmp_path / "integrations.d"
            folder.mkdir(exist_ok=True)
            for name, text in files.items():
                (folder / name).write_text(text)
            templates_dir = tmp_path / "templates"
            templates_dir.mkdir(exist_ok=True)
            for name, text in (templates or {}).items():
                (templates_dir / name).parent.mkdir(parents=True, exist_ok=True)
                (templates_dir / name).write_text(text)
        config: Config = load_config(folder, env, templates_dir=templates_dir)
        store = SQLiteStore(f"sqlite:///{tmp_path / 'gateway.db'}")
        app = create_app(config, store, Settings.from_env(env), env)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


def admin(client: TestClient, path: str) -> object:
    response = client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    return response.json()
