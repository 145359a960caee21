"""Shared fixtures: a gateway app on a temporary SQLite file, driven in-process.

Helpers the tests import live in tests/helpers/ (``from tests.helpers... import``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.config.model import Config, load_config
from gateway.config.settings import Settings
from gateway.store import SQLiteStore
from gateway.web.application import create_app
from tests.helpers.app import ADMIN_TOKEN, AppFactory, LoopbackOnly


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[AppFactory]:
    """Build a TestClient over a folder of YAML texts (or a real folder) and an environment;
    outbound calls go through `transport` (default: loopback only)."""
    clients: list[TestClient] = []

    def factory(
        files: Mapping[str, str] | Path,
        environ: Mapping[str, str] | None = None,
        *,
        templates: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
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
        app = create_app(
            config, store, Settings.from_env(env), env, transport=transport or LoopbackOnly()
        )
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)
