"""The README's example provider lints clean, and its lint output is what lint prints."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from gateway.config.lint import lint
from gateway.diagnostics import render
from tests.helpers import REPO

README = (REPO / "README.md").read_text()

BREAKAGES = [
    ("signature: {header: x-square", "signature: {headers: x-square"),
    (
        "algorithm: sha256\n    secret: ${secret:SQUARE",
        "algorithm: sha265\n    secret: ${secret:SQUARE",
    ),
    ('id: "{{ body.event_id }}"', 'id: "{{ bdy.event_id }}"'),
    ("payment.buyer_email_address | default(none)", "payment.buyer_email"),
]


def _block(marker: str) -> str:
    match = re.search(rf"<!-- {marker}.*?-->\n```\w+\n(.*?)```", README, re.DOTALL)
    assert match, f"README has no block after <!-- {marker} -->"
    return match.group(1)


def _project(tmp_path: Path, square: str) -> None:
    shutil.copytree(REPO / "integrations.d", tmp_path / "integrations.d")
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    (tmp_path / "integrations.d" / "square.yaml").write_text(square)


def test_readme_example_lints_clean_with_the_shipped_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path, _block("readme-example"))
    monkeypatch.chdir(tmp_path)
    result = lint(["integrations.d"])
    assert [d.text() for d in result.diagnostics] == []


def test_readme_lint_output_is_what_lint_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = _block("readme-example")
    for old, new in BREAKAGES:
        assert old in broken, old
        broken = broken.replace(old, new)
    (tmp_path / "integrations.d").mkdir()
    (tmp_path / "integrations.d" / "square.yaml").write_text(broken)
    monkeypatch.chdir(tmp_path)
    result = lint(["integrations.d/square.yaml"])
    shown = _block("readme-lint-output")
    assert render(result.diagnostics, "text", result.files) + "\n" == shown


CONTRACT_BREAKAGES = [
    (
        '        amount_minor: "{{ body.data.object.payment.amount_money.amount }}"   # cents, as Stripe\'s\n',
        "",
    ),
    (
        'amount: "{{ body.data.object.payment.amount_money.amount / 100 }}"',
        'amount: "{{ body.data.object.payment.amount_money.amount / 100 }} EUR"',
    ),
    ("        reference:", "        receipt_url:"),
]


def test_readme_contract_output_is_what_lint_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = _block("readme-example")
    for old, new in CONTRACT_BREAKAGES:
        assert old in broken, old
        broken = broken.replace(old, new)
    _project(tmp_path, broken)
    monkeypatch.chdir(tmp_path)
    result = lint(["integrations.d"])
    shown = _block("readme-contract-output")
    assert render(result.diagnostics, "text", result.files) + "\n" == shown


def test_readme_function_lints_clean_with_the_shipped_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path, _block("readme-function"))
    monkeypatch.chdir(tmp_path)
    result = lint(["integrations.d"])
    assert [d.text() for d in result.diagnostics] == []


def test_readme_function_is_linted_for_what_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = _block("readme-function").replace("{{ steps.booking.ok }}", "{{ step.booking.ok }}")
    _project(tmp_path, broken)
    monkeypatch.chdir(tmp_path)
    result = lint(["integrations.d"])
    # respond's `booked` and emit's condition
    assert [d.rule for d in result.diagnostics] == ["jinja-undefined-var"] * 2
