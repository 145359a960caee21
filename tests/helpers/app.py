"""An in-process gateway app for tests: the admin token it is built with, the factory type of the
``make_client`` fixture (tests/conftest.py), and an authorised admin GET."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

ADMIN_TOKEN = "test-admin-token"

AppFactory = Callable[..., TestClient]


def admin(client: TestClient, path: str) -> Any:
    """GET an admin API path with the admin token; asserts a 200 and answers the JSON."""
    response = client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    return response.json()
