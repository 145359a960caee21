"""The YAML loader's bounds: an anchors bomb, a self-referencing alias, deep nesting and many
documents in one file each cost little and end in one finding that names the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.config import yamlsource
from gateway.config.lint import lint
from gateway.config.yamlsource import MAX_DEPTH, MAX_VALUES, load_text


def _bomb(levels: int = 9) -> str:
    lines = ["kind: integration", "a0: &a0 [" + ", ".join(['"lol"'] * 9) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _lint_one(tmp_path: Path, text: str) -> list[tuple[str, int, str]]:
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    (folder / "evil.yaml").write_text(text)
    result = lint([str(folder)], templates_dir=tmp_path)
    return [(Path(d.path).name, d.line, d.rule) for d in result.diagnostics]


def test_an_anchors_bomb_is_one_finding_naming_the_file(tmp_path: Path) -> None:
    # 9**9 strings once expanded; refused at the first level beyond the budget (a5: 9**6 > MAX)
    assert MAX_VALUES < 9**6
    assert _lint_one(tmp_path, _bomb()) == [("evil.yaml", 7, "yaml-limit")]


def test_an_alias_inside_its_own_anchor_is_one_finding(tmp_path: Path) -> None:
    assert _lint_one(tmp_path, "kind: integration\na: &a [*a]\n") == [
        ("evil.yaml", 2, "yaml-limit")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "a: &a {b: *a}\n",
        "a: &a {<<: *a}\n",
        "a: &a [x, {b: [*a]}]\n",
        "a: &a [*a]\na: 2\n",  # refused by the strict load too: the positional path measures
    ],
)
def test_every_cycle_is_refused_before_anything_is_built(text: str) -> None:
    docs, problems = load_text(text, "x.yaml")
    assert docs == []
    assert [(p.path, p.rule) for p in problems] == [("x.yaml", "yaml-limit")]
    assert "cycle" in problems[0].message


def test_the_value_budget_counts_every_alias_as_often_as_it_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(yamlsource, "MAX_VALUES", 20)
    # the root 1, key a 1, the list 1 + 5: 8 values; every `key: *a` adds 1 + 6 more
    base = "a: &a [1, 2, 3, 4, 5]\nb: *a\n"  # 15
    assert load_text(base, "x.yaml")[1] == []
    assert load_text(base + "c: 1\nd: 2\n---\n1\n", "x.yaml")[1] == []  # 19 + 1 = 20 ...
    # ... and the budget is the file's, not each document's
    problems = load_text(base + "c: 1\nd: 2\n---\n[1]\n", "x.yaml")[1]
    assert [(p.line, p.rule) for p in problems] == [(6, "yaml-limit")]
    problems = load_text(base + "c: *a\n", "x.yaml")[1]
    assert [p.rule for p in problems] == ["yaml-limit"]
    assert "more than 20 values" in problems[0].message


def test_nesting_is_bounded_below_any_recursion_limit() -> None:
    def nested(depth: int) -> str:
        return "a: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n"

    assert load_text(nested(MAX_DEPTH), "x.yaml")[1] == []
    problems = load_text(nested(MAX_DEPTH + 1), "x.yaml")[1]
    assert [(p.path, p.rule) for p in problems] == [("x.yaml", "yaml-limit")]
    # an alias deepens what it names: a shallow anchor used deep down counts at its depth
    deep = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    assert [p.rule for p in load_text(deep, "x.yaml")[1]] == ["yaml-limit"]


def test_an_oversized_file_is_refused_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsource, "MAX_CHARS", 100)
    problems = load_text("a: " + "x" * 100 + "\n", "x.yaml")[1]
    assert [(p.path, p.line, p.rule) for p in problems] == [("x.yaml", 1, "yaml-limit")]


def test_a_file_of_many_documents_is_composed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    compose_all = yaml.compose_all

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return compose_all(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(yamlsource.yaml, "compose_all", counting)
    folder = tmp_path / "integrations.d"
    folder.mkdir()
    docs = [f"kind: tenant\nname: t{i}\nbogus: 1\n" for i in range(200)]
    (folder / "tenants.yaml").write_text("---\n".join(docs))
    result = lint([str(folder)], templates_dir=tmp_path)
    assert [d.line for d in result.diagnostics] == [4 * i + 3 for i in range(200)]
    assert len(calls) == 1
