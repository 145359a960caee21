"""The admin UI in a real browser: Playwright driving Debian's Chromium (headless, never a
downloaded build) against a real `gateway serve` on loopback with the shipped integrations.

The server runs as `--role ingest` on a database seeded beforehand (tests/helpers/seed.py):
a replayed event and retried jobs are only marked pending and queued, so nothing is sent
to a provider. Screenshots go to the test's temporary folder. Outside CI the tests skip when
Chromium is missing; in CI (`CI` set) a missing Chromium fails them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from gateway.config.model import load_config
from tests.helpers import REPO
from tests.helpers.app import ADMIN_TOKEN
from tests.helpers.seed import seed
from tests.helpers.servers import gateway_process

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SHIPPED = REPO / "integrations.d"


def _browser_or_skip() -> None:
    if CHROMIUM.exists():
        return
    reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests")
    pytest.skip(reason)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    """A logged-out Chromium page on a gateway serving the shipped integrations."""
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    seed(tmp_path / "g.db", integration="stripe", events=5, dead=3)
    env = {"GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN, "GATEWAY_SECRET_KEY": Fernet.generate_key().decode()}
    with (
        gateway_process(SHIPPED, tmp_path / "g.db", env, ["--role", "ingest"]) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            context = browser.new_context(base_url=server.url)
            found = context.new_page()
            yield found
        finally:
            browser.close()


def _log_in(page: Any) -> None:
    page.goto("/admin/")
    assert "/admin/login" in page.url
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Overview").wait_for()


def test_log_in_and_see_every_shipped_integration_on_the_overview(
    page: Any, tmp_path: Path
) -> None:
    _log_in(page)
    names = sorted(load_config(SHIPPED, {}).integrations)
    assert len(names) >= 10
    for name in names:
        row = page.locator(f'tr[data-integration="{name}"]')
        assert row.count() == 1, name
        assert row.locator("th").inner_text() == name
    spark = page.locator('tr[data-integration="stripe"] svg[role="img"]')
    assert re.match(r"5 events and 3 failures", spark.get_attribute("aria-label"))
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
    assert (tmp_path / "overview.png").stat().st_size > 10_000
    # keyboard: the first Tab lands on the skip link
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_find_an_event_by_its_provider_id_and_replay_it(page: Any, tmp_path: Path) -> None:
    _log_in(page)
    page.get_by_role("link", name="Events").click()
    page.get_by_label("Provider event id or body text").fill("pi_ui_003")
    page.get_by_role("button", name="Find").click()
    rows = page.locator("tbody tr")
    assert rows.count() == 1 and "pi_ui_003" in rows.inner_text()
    rows.get_by_role("link").click()
    page.get_by_role("heading", name="Event evt_ui_003").wait_for()
    assert '"note": "order 3 <b>bold</b>"' in page.locator("pre").first.inner_text()
    page.get_by_role("button", name="Replay this event").click()
    page.get_by_role("status").filter(has_text="The event is being replayed.").wait_for()
    facts = page.locator("dl.facts").inner_text()
    assert re.search(r"Replays\s+1", facts) and re.search(r"Status\s+pending", facts)
    page.screenshot(path=str(tmp_path / "event.png"), full_page=True)


def test_an_event_s_job_shows_its_attempt_timeline(page: Any, tmp_path: Path) -> None:
    _log_in(page)
    page.goto("/admin/events/evt_ui_000")
    table = page.get_by_role("table", name="Attempts of notify / sms_0")
    headers = table.get_by_role("columnheader").all_inner_texts()
    assert headers == ["#", "Started", "Outcome", "HTTP status", "Duration",
                       "Provider's answer or error"]  # fmt: skip
    rows = table.locator("tbody tr")
    assert rows.count() == 3
    cells = [rows.nth(n).get_by_role("cell").all_inner_texts() for n in range(3)]
    assert [(c[0], c[2], c[3]) for c in cells] == [
        ("1", "retry", "503"),
        ("2", "retry", "503"),
        ("3", "dead", "500"),
    ]
    assert '{"error": "upstream down"}' in cells[2][5]
    page.get_by_role("link", name="notify / sms_0").click()
    page.get_by_role("heading", name="Job job_evt_ui_000_0").wait_for()
    timeline = page.get_by_role("table", name=re.compile(r"^Attempts of"))
    assert timeline.locator("tbody tr").count() == 3
    page.screenshot(path=str(tmp_path / "attempts.png"), full_page=True)


def test_bulk_retry_dead_jobs_through_the_confirmation(page: Any, tmp_path: Path) -> None:
    _log_in(page)
    page.goto("/admin/jobs?status=dead&integration=stripe")
    assert page.locator("tbody tr").count() == 3
    page.get_by_role("link", name="Retry all dead jobs matching this filter").click()
    page.get_by_role("heading", name="Retry dead jobs").wait_for()
    assert "3 dead job(s) match: integration = stripe." in page.locator("#count").inner_text()
    page.screenshot(path=str(tmp_path / "confirm.png"))
    page.get_by_role("button", name="Yes, retry all 3").click()
    page.get_by_role("status").filter(has_text="3 dead job(s) queued again.").wait_for()
    page.goto("/admin/jobs?status=dead")
    assert page.locator("tbody tr").inner_text() == "No job matches."
    page.goto("/admin/jobs?status=queued")
    assert page.locator("tbody tr").count() == 3


def test_set_a_credential_without_its_value_ever_appearing(page: Any, tmp_path: Path) -> None:
    secret = "sk_live_browser_never_shown_42"
    _log_in(page)
    page.get_by_role("link", name="Tenants").click()
    page.get_by_label("Tenant", exact=True).fill("clinic")
    page.get_by_label("Integration").select_option("stripe")
    page.get_by_label("Secret name").fill("STRIPE_SECRET_KEY")
    page.get_by_label("Value").fill(secret)
    assert page.get_by_label("Value").get_attribute("type") == "password"
    page.get_by_role("button", name="Store").click()
    page.get_by_role("status").filter(has_text="The credential is stored").wait_for()
    row = page.locator("tbody tr").filter(has_text="STRIPE_SECRET_KEY")
    assert row.count() == 1 and "clinic" in row.inner_text()
    page.screenshot(path=str(tmp_path / "tenants.png"), full_page=True)
    for path in ("/admin/tenants", "/admin/", "/admin/config", "/admin/events"):
        page.goto(path)
        assert secret not in page.content(), path
