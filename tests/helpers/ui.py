"""Logging in to the admin UI with a TestClient, and reading a page's CSRF token."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests.helpers.app import ADMIN_TOKEN


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def log_in(client: TestClient) -> str:
    """Log in with the admin token; answers the session's CSRF token."""
    form = client.get("/admin/login")
    response = client.post(
        "/admin/login",
        data={"csrf": csrf_of(form.text), "token": ADMIN_TOKEN, "next": "/admin/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/admin/").text)
