"""Safe YAML loading that knows where every key and value stands.

PyYAML's loaders keep the last of two equal keys without a word and forget line numbers. Here
a file is first loaded by the C safe loader with a strict mapping constructor (keys kept as
written, duplicates and unknown tags refused); positions are composed only when something is
reported. A file the strict load refuses is composed node by node, which says where and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from gateway.diagnostics import Diagnostic

try:
    _Loader: Any = yaml.CSafeLoader
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


class _Refused(Exception):
    """The strict fast load cannot take this file; the node-by-node path explains why."""


def _strict_mapping(loader: Any, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)  # merge keys (<<)
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise _Refused
        key = str(key_node.value)  # as written: `on` and `yes` stay text
        if key in result:
            raise _Refused
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _refuse(_loader: Any, _node: yaml.Node) -> Any:
    raise _Refused


class _StrictLoader(_Loader):  # type: ignore[misc]
    # Dates stay text (JSON has no date type), so the timestamp resolver is not even tried.
    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
        for first, resolvers in _Loader.yaml_implicit_resolvers.items()
    }


_STR, _SEQ, _MAP = ("tag:yaml.org,2002:" + k for k in ("str", "seq", "map"))


def _resolve(self: Any, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
    """PyYAML's resolver without its generality (no path resolvers, no wildcards): called for
    every node, it was a third of the load time."""
    if kind is yaml.ScalarNode:
        if implicit[0]:
            for tag, regexp in self.yaml_implicit_resolvers.get(value[:1], ()):
                if regexp.match(value):
                    return str(tag)
        return _STR
    return _SEQ if kind is yaml.SequenceNode else _MAP


_StrictLoader.resolve = _resolve
_StrictLoader.add_constructor("tag:yaml.org,2002:map", _strict_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", lambda _loader, node: node.value)
_StrictLoader.add_constructor(None, _refuse)  # any tag beyond plain data


@dataclass
class Document:
    """One YAML document of a file; the position of every value and key is found on demand."""

    path: str
    index: int
    data: Any
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)
    source: str | None = field(default=None, repr=False)  # set while positions are not built

    def _positions(self) -> None:
        if self.source is None:
            return
        source, self.source = self.source, None
        nodes = list(yaml.compose_all(source, Loader=_Loader))
        _Builder(self, []).build(nodes[self.index], ())

    def where(self, path: Path, *, key: bool = False) -> Mark:
        """Position of the value at `path` (or of its key); falls back to the nearest parent."""
        self._positions()
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
    try:
        loaded = list(yaml.load_all(text, Loader=_StrictLoader))
    except (_Refused, yaml.YAMLError):
        return _load_with_positions(text, path)
    if not loaded:
        return [], [
            Diagnostic(path, 1, 1, "error", "file has no YAML document: it is empty", "yaml-empty")
        ]
    return [Document(path, i, data, source=text) for i, data in enumerate(loaded)], []


def _load_with_positions(text: str, path: str) -> tuple[list[Document], list[Diagnostic]]:
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
