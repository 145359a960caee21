"""`gateway sync` against the provider sandbox (one key=value line per run, exit codes, the
sync log) and the admin API (run a sync, list the last runs)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.cli.main import main
from gateway.config.model import load_config
from gateway.config.settings import Settings
from gateway.sandbox.server import SandboxHandle, running_sandbox
from gateway.store import SQLiteStore
from gateway.web.application import create_app
from tests.helpers import REPO
from tests.helpers.integrations import BEARER, acme, api, section
from tests.helpers.sync_harness import thing

ACME = acme(
    api(
        base_url="${ACME_BASE_URL}",
        auth=BEARER,
        retry="{max_attempts: 1}",
        endpoints={
            "list_things": "{method: GET, path: /things}",
            "list_widgets": "{method: GET, path: /widgets}",
        },
    ),
    section(
        "syncs",
        """\
things:
  endpoint: list_things
  schedule: {every: 15m}
  paginate: {style: page, page_param: page, size_param: per_page, size: 2}
  records: "{{ response.results }}"
  record: {id: "{{ record.id }}", updated_at: "{{ record.updated }}"}
widgets:
  endpoint: list_widgets
  schedule: {cron: "0 * * * *"}
  records: "{{ response.results }}"
  record: {id: "{{ record.id }}"}
""",
    ),
)
LINE = re.compile(
    r"^integration=acme sync=(\w+) tenant=(\w+) fetched=(\d+) created=(\d+) updated=(\d+)"
    r" unchanged=(\d+) deleted=(\d+) conflicts=(\d+) pages=(\d+) status=(\w+)"
)
RULES: list[dict[str, Any]] = [
    {"path": "/acme/things", "when": {"query": {"page": "1"}},
     "json": {"results": [thing(1), thing(2)]}},
    {"path": "/acme/things", "when": {"query": {"page": "2"}}, "json": {"results": [thing(3)]}},
    {"path": "/acme/widgets", "json": {"results": [{"id": "w1"}]}},
]  # fmt: skip


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(RULES) as handle:
        yield handle


@pytest.fixture
def folder(tmp_path: Path, sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> Path:
    sandbox.reset()
    monkeypatch.setenv("ACME_BASE_URL", sandbox.url_for("acme"))
    monkeypatch.setenv("ACME_KEY", "sk_test_cli")
    found = tmp_path / "integrations.d"
    found.mkdir()
    (found / "acme.yaml").write_text(ACME)
    return found


def gateway(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(list(argv))
    return code, capsys.readouterr().out.splitlines()


def test_sync_prints_one_key_value_line_per_run(
    folder: Path, tmp_path: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    code, lines = gateway(
        capsys, "sync", "acme", "things", "--integrations", str(folder), "--db", db
    )
    assert code == 0
    assert lines == [
        "integration=acme sync=things tenant=default fetched=3 created=3 updated=0 unchanged=0"
        " deleted=0 conflicts=0 pages=2 status=succeeded full=true"
    ]
    [first, _second] = sandbox.requests(path_prefix="/acme")
    assert first.headers["authorization"] == "Bearer sk_test_cli"

    code, lines = gateway(capsys, "sync", "acme", "--integrations", str(folder), "--db", db)
    assert code == 0
    found = [LINE.match(line) for line in lines]
    assert [m.group(1, 2, 3, 6, 10) for m in found if m] == [
        ("things", "default", "3", "3", "succeeded"),
        ("widgets", "default", "1", "0", "succeeded"),
    ]

    code, lines = gateway(capsys, "sync", "--log", "--limit", "2", "--db", db)
    assert code == 0 and len(lines) == 2
    assert "sync=widgets" in lines[0] and "sync=things" in lines[1]
    assert re.match(r"^run_\w+  started=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ finished=", lines[0])
    code, lines = gateway(
        capsys, "sync", "--log", "acme", "things", "--integrations", str(folder), "--db", db
    )
    assert code == 0 and len(lines) == 2 and all("sync=things" in line for line in lines)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["nosuch"], "no integration 'nosuch'"),
        (["acme", "nosuch"], "acme has no sync 'nosuch' (its syncs: things, widgets)"),
    ],
)
def test_the_log_of_a_sync_that_is_not_declared_is_a_usage_error(
    names: list[str], message: str, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "gw.db"
    db.touch()
    argv = ["sync", "--log", *names, "--integrations", str(folder), "--db", f"sqlite:///{db}"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("gateway sync: ") and message in captured.err
    assert captured.out == ""


def test_a_failed_run_exits_1_and_says_why(
    folder: Path, tmp_path: Path, sandbox: SandboxHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.add_rules([{"path": "/acme/widgets", "status": 403, "json": {"error": "nope"}}])
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    code, lines = gateway(
        capsys, "sync", "acme", "widgets", "--tenant", "default", "--full",
        "--integrations", str(folder), "--db", db,
    )  # fmt: skip
    assert code == 1
    [line] = lines
    assert LINE.match(line) and " status=failed full=true error=" in line
    assert "HTTP 403" in line


def test_usage_errors(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "--integrations", str(folder)]) == 2
    assert main(["sync", "nope", "--integrations", str(folder)]) == 2
    assert main(["sync", "acme", "nope", "--integrations", str(folder)]) == 2
    errors = capsys.readouterr().err
    assert "name an INTEGRATION" in errors
    assert "no integration 'nope'" in errors
    assert "acme has no sync 'nope' (its syncs: things, widgets)" in errors


ADMIN = "admin-token-for-syncs"


def test_admin_runs_a_sync_and_lists_the_last_runs(folder: Path, tmp_path: Path) -> None:
    env = {"ACME_KEY": "sk_test_cli", "ACME_BASE_URL": "https://api.acme.test"}
    env["GATEWAY_ADMIN_TOKEN"] = ADMIN
    config = load_config(folder, env)
    pages = {"1": [thing(1), thing(2)], "2": []}

    def provider(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": pages.get(request.url.params.get("page"), [])})

    store = SQLiteStore(f"sqlite:///{tmp_path / 'gw.db'}")
    app = create_app(
        config, store, Settings.from_env(env), env, transport=httpx.MockTransport(provider)
    )
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(app) as client:
        scheduled = app.state.sync_scheduler.scheduler
        assert {job.id for job in scheduled.get_jobs()} == {
            "sync:acme:things:default", "sync:acme:widgets:default", "sync:refresh",
        }  # fmt: skip
        answer = client.post("/admin/api/syncs/acme/things/run?wait=true", headers=auth)
        assert answer.status_code == 200, answer.text
        assert answer.json() | {"run_id": None} == {
            "run_id": None, "integration": "acme", "sync": "things", "tenant": "default",
            "fetched": 2, "created": 2, "updated": 0, "unchanged": 0, "deleted": 0,
            "conflicts": 0, "pages": 2, "status": "succeeded", "full": True, "resumed": False,
            "error": None,
        }  # fmt: skip
        started = client.post("/admin/api/syncs/acme/widgets/run?tenant=demo&full=1", headers=auth)
        assert started.status_code == 202
        assert started.json()["status"] == "running" and started.json()["tenant"] == "demo"

        listed = client.get("/admin/api/syncs?limit=10", headers=auth).json()
        assert {s["sync"] for s in listed["syncs"]} == {"things", "widgets"}
        assert listed["runs"][-1]["sync"] == "things"
        assert (
            client.get("/admin/api/syncs?tenant=default", headers=auth).json()["runs"][0]["created"]
            == 2
        )

        missing = client.post("/admin/api/syncs/acme/nope/run", headers=auth)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        assert client.post("/admin/api/syncs/acme/things/run").status_code == 401
        assert client.get("/admin/api/syncs?limit=0", headers=auth).status_code == 400


def test_admin_answers_409_while_a_run_of_the_sync_is_going_on(
    folder: Path, tmp_path: Path
) -> None:
    env = {"ACME_KEY": "k", "ACME_BASE_URL": "https://api.acme.test", "GATEWAY_ADMIN_TOKEN": ADMIN}
    config = load_config(folder, env)
    store = SQLiteStore(f"sqlite:///{tmp_path / 'gw.db'}")
    app = create_app(config, store, Settings.from_env(env), env)
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(app) as client:
        from gateway.store.sync_model import SyncKey

        key = SyncKey("acme", "default", "things")
        held = client.portal.call(  # type: ignore[union-attr]
            lambda: store.acquire_sync(key, "run_other", now=1e12, lease_until=1e12 + 60)
        )
        assert held is not None
        busy = client.post("/admin/api/syncs/acme/things/run", headers=auth)
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "conflict"


def test_the_readme_shows_a_shipped_sync_and_the_resync_commands() -> None:
    readme = (REPO / "README.md").read_text()
    shown = re.findall(r"<!-- readme-sync: (\S+) -->\n```yaml\n(.*?)```", readme, re.DOTALL)
    assert len(shown) >= 2, "README has no <!-- readme-sync: FILE --> blocks"
    for path, block in shown:
        assert block in (REPO / path).read_text(), path  # shown as shipped
    assert any("as_webhook:" in block for _path, block in shown)
    for command in ("gateway sync INTEGRATION [SYNC]", "gateway sync --log", "--full"):
        assert command in readme


def test_the_admin_ui_runs_a_full_re_sync_and_shows_the_run(folder: Path, tmp_path: Path) -> None:
    from tests.helpers.ui import csrf_of

    env = {"ACME_KEY": "sk_test_cli", "ACME_BASE_URL": "https://api.acme.test"}
    env["GATEWAY_ADMIN_TOKEN"] = ADMIN
    config = load_config(folder, env)

    def provider(request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page")
        return httpx.Response(200, json={"results": [thing(1)] if page == "1" else []})

    store = SQLiteStore(f"sqlite:///{tmp_path / 'gw.db'}")
    app = create_app(
        config, store, Settings.from_env(env), env, transport=httpx.MockTransport(provider)
    )
    with TestClient(app) as client:
        form = client.get("/admin/login")
        client.post(
            "/admin/login", data={"csrf": csrf_of(form.text), "token": ADMIN, "next": "/admin/"}
        )
        page = client.get("/admin/syncs")
        assert "acme.things" in page.text and "Full re-sync" in page.text
        started = client.post(
            "/admin/syncs/acme/things/run",
            data={"csrf": csrf_of(page.text), "tenant": "default", "full": "true"},
        )
        assert "The sync is running." in started.text
        deadline = time.monotonic() + 10
        while "succeeded" not in (shown := client.get("/admin/syncs").text):
            assert time.monotonic() < deadline, shown
            time.sleep(0.05)
    assert "acme.things (full)" in shown
