"""Take the README's screenshot of the admin UI's overview with Playwright and Chromium:
``python -m tests.helpers.screenshot docs/admin-overview.png``.

A real `gateway serve` with the shipped integrations, probing them against the provider
sandbox on loopback, on a database seeded with a few events and dead jobs."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

from gateway.sandbox import running_sandbox
from tests.health.test_shipped_probes import PROBED, SHIPPED, sandbox_env
from tests.helpers import REPO
from tests.helpers.app import ADMIN_TOKEN
from tests.helpers.seed import seed
from tests.helpers.servers import gateway_process


def take(target: Path) -> None:
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp())
    seed(folder / "g.db", integration="stripe", events=40, dead=3)
    with running_sandbox(REPO / "sandbox" / "responses.yaml") as sandbox:
        env = sandbox_env(sandbox)
        with (
            gateway_process(SHIPPED, folder / "g.db", env, ["--health-checks"]) as server,
            sync_playwright() as playwright,
        ):
            auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                listed = httpx.get(f"{server.url}/admin/api/integrations", headers=auth).json()
                checked = {
                    i["name"] for i in listed["integrations"] if i["tenants"][0]["checked_at"]
                }
                if set(PROBED) <= checked:
                    break
                time.sleep(0.25)
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
            )
            page = browser.new_context(
                base_url=server.url, viewport={"width": 1400, "height": 800}
            ).new_page()
            page.goto("/admin/login")
            page.get_by_label("Admin token").fill(ADMIN_TOKEN)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("heading", name="Overview").wait_for()
            page.screenshot(path=str(target), full_page=True)
            browser.close()


if __name__ == "__main__":
    take(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/admin-overview.png"))
