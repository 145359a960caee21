"""Safe YAML loading that remembers where every key and value stands.

PyYAML's loaders keep the last of two equal keys without a word and forget line numbers. This
module composes the node graph with the safe (C, when available) loader and builds plain Python
values itself, recording positions and reporting duplicate keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from gateway.diagnostics import Diagnostic

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

Path = tuple[str | int, ...]
Mark = tuple[int, int]  # (line, column), both 1-based

_SCALARS = yaml.constructor.SafeConstructor()
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map", "merge")
)


@dataclass
class Document:
    """One YAML document of a file, with the position of every value and key in it."""

    path: str
    index: int
    data: Any
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)

    def where(self, path: Path, *, key: bool = False) -> Mark:
        """Position of the value at `path` (or of its key); falls back to the nearest parent."""
        probe = tuple(path)
        while True:
            if key and probe in self.keys:
                return self.keys[probe]
            if probe in self.values:
                return self.values[probe]
            if not probe:
                return (1, 1)
            probe = probe[:-1]

    def diagnostic(
        self, path: Path, message: str, rule: str, *, severity: str = "error", key: bool = False
    ) -> Diagnostic:
        line, col = self.where(path, key=key)
        return Diagnostic(self.path, line, col, severity, message, rule)


def _mark(node: yaml.Node) -> Mark:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, doc: Document, problems: list[Diagnostic]) -> None:
        self.doc = doc
        self.problems = problems

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.doc.values[path] = _mark(node)
        if node.tag not in _ALLOWED_TAGS:
            line, col = _mark(node)
            self.problems.append(
                Diagnostic(
                    self.doc.path,
                    line,
                    col,
                    "error",
                    f"tag {node.tag} is not allowed: files are loaded as plain data",
                    "yaml-syntax",
                )
            )
            return None
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _TIMESTAMP:
                return node.value  # keep dates as written: JSON has no date type
            return _SCALARS.construct_object(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Mark] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged = self.build(value_node, (*path, "<<"))
                for item in merged if isinstance(merged, list) else [merged]:
                    if isinstance(item, dict):
                        for k, v in item.items():
                            result.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                line, col = _mark(key_node)
                self.problems.append(
                    Diagnostic(
                        self.doc.path, line, col, "error", "a key must be plain text", "yaml-syntax"
                    )
                )
                continue
            key = str(key_node.value)  # keys are the text as written: `on`, `yes` stay strings
            here = _mark(key_node)
            if key in first_seen:
                line, col = first_seen[key]
                self.problems.append(
                    Diagnostic(
                        self.doc.path,
                        here[0],
                        here[1],
                        "error",
                        f"duplicate key '{key}' (first at line {line}); YAML would silently "
                        "keep only the last one",
                        "yaml-duplicate-key",
                    )
                )
            first_seen[key] = here
            child = (*path, key)
            self.doc.keys[child] = here
            result[key] = self.build(value_node, child)
        return result


def load_text(text: str, path: str) -> tuple[list[Document], list[Diagnostic]]:
    """Parse every document of a YAML text. Never raises on bad input: problems are returned."""
    problems: list[Diagnostic] = []
    documents: list[Document] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        problems.append(
            Diagnostic(path, line, col, "error", f"YAML syntax: {problem}{context}", "yaml-syntax")
        )
        return [], problems
    except yaml.YAMLError as exc:
        problems.append(Diagnostic(path, 1, 1, "error", f"YAML: {exc}", "yaml-syntax"))
        return [], problems
    for index, node in enumerate(nodes):
        doc = Document(path, index, None)
        doc.data = _Builder(doc, problems).build(node, ())
        documents.append(doc)
    if not documents and not problems:
        problems.append(
            Diagnostic(path, 1, 1, "error", "file has no YAML document: it is empty", "yaml-empty")
        )
    return documents, problems
