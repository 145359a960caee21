"""The wheel a user installs works from any folder: it carries the schemas, the default
templates and the sandbox's responses (package data), and builds without deprecation warnings.

Built offline (--no-build-isolation, the project venv's setuptools) and installed without its
dependencies into a fresh venv that borrows them from the project venv's site-packages (the
editable install of the checkout there is not active: a borrowed folder's .pth files are not
run), then `lint`, `serve` and `simulate` run from a temporary folder outside the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.helpers import REPO
from tests.helpers.servers import free_port, wait_healthy

pytestmark = pytest.mark.slow


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source") / "yaml-gateway"
    # a clean copy: the build writes build/ and *.egg-info beside its sources
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "var", "build", "*.egg-info")
    )
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    built = _run([*command, "--no-index", "-w", str(out), str(source)], out, dict(os.environ))
    assert built.returncode == 0, built.stdout + built.stderr
    assert "deprecat" not in (built.stdout + built.stderr).lower(), built.stderr
    (found,) = out.glob("yaml_gateway-*.whl")
    return found


def test_the_wheel_carries_schemas_templates_and_sandbox_responses(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("schemas", "templates"):
        for file in (REPO / shipped).rglob("*"):
            if file.is_file():
                assert f"gateway/_data/{file.relative_to(REPO)}" in names
    assert "gateway/_data/sandbox/responses.yaml" in names
    ui = REPO / "gateway" / "web" / "ui"
    shipped_ui = [f for f in ui.rglob("*") if f.is_file() and f.suffix in (".html", ".css")]
    assert len(shipped_ui) >= 10
    for file in shipped_ui:
        assert f"{file.relative_to(REPO)}" in names  # the admin UI's templates and stylesheet


def test_an_installed_wheel_lints_serves_and_simulates_from_any_folder(
    wheel: Path, tmp_path: Path
) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    installed = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)],
        tmp_path, dict(os.environ),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    purelib = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
             tmp_path, {}).stdout.strip()
    )  # fmt: skip
    (purelib / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"
    shutil.copytree(REPO / "integrations.d", work / "integrations.d")  # no templates/ beside it
    gateway = str(env_dir / "bin" / "gateway")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    where = _run([str(python), "-c", "import gateway; print(gateway.__file__)"], work, env)
    assert where.stdout.startswith(str(env_dir)), where.stdout + where.stderr

    linted = _run([gateway, "lint", "integrations.d"], work, env)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "0 error(s)" in linted.stdout

    port = free_port()
    secrets = {"STRIPE_WEBHOOK_SECRET": "whsec_wheel", "GATEWAY_ADMIN_TOKEN": "wheel", **env}
    server = subprocess.Popen(
        [gateway, "serve", "--port", str(port), "--integrations", "integrations.d",
         "--db", f"sqlite:///{work / 'g.db'}", "--log-level", "warning", "--no-health-checks"],
        cwd=work, env=secrets, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server, timeout=60)
        simulated = _run(
            [gateway, "simulate", "stripe", "checkout_session_completed",
             "--url", f"http://127.0.0.1:{port}"],
            work, secrets,
        )  # fmt: skip
        assert simulated.returncode == 0, simulated.stdout + simulated.stderr
        assert "-> 200" in simulated.stdout and '"status":"accepted"' in simulated.stdout
        login = httpx.get(f"http://127.0.0.1:{port}/admin/login", timeout=5)
        assert login.status_code == 200 and '<label for="token">' in login.text
        css = httpx.get(f"http://127.0.0.1:{port}/admin/static/admin.css", timeout=5)
        assert css.status_code == 200 and "font-family" in css.text
    finally:
        server.terminate()
        server.communicate(timeout=20)  # also closes the pipe

    rules = _run(
        [str(python), "-c", "from gateway.cli.cmd_demo import RULES; print(RULES.is_file())"],
        work, env,
    )  # fmt: skip
    assert rules.stdout.strip() == "True", rules.stdout + rules.stderr
