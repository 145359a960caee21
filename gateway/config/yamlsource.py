"""Safe YAML loading that knows where every key and value stands.

PyYAML's loaders keep the last of two equal keys without a word and forget line numbers. Here
a file is first loaded by the C safe loader with a strict mapping constructor (keys kept as
written, duplicates and unknown tags refused); positions are composed only when something is
reported. A file the strict load refuses is composed node by node, which says where and why.

Loading is bounded before anything is built: a file's size, the depth of its values, and the
number of values once aliases are expanded (an alias counts as often as it is used, so an
"anchors bomb" is refused while still a few nodes); an alias inside the node it names is refused.
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


MAX_CHARS = 2_000_000  # one file's text
MAX_VALUES = 250_000  # one file's values, every alias counted as often as it is used
MAX_DEPTH = 64  # values nested in values: provider payloads nest a dozen deep


class _Refused(Exception):
    """The strict fast load cannot take this file; the node-by-node path explains why."""


class _Unbounded(Exception):
    """A file beyond the loader's bounds: what is wrong, and the node where it shows."""

    def __init__(self, message: str, node: yaml.Node | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.node = node

    def diagnostic(self, path: str) -> Diagnostic:
        line, col = _mark(self.node) if self.node is not None else (1, 1)
        return Diagnostic(path, line, col, "error", self.message, "yaml-limit")


def _measure(root: yaml.Node, spent: int) -> int:
    """`spent` plus the values of the document at `root` once aliases are expanded; raises
    `_Unbounded` for a cycle, a depth beyond MAX_DEPTH or a count beyond MAX_VALUES. A node met
    again (an alias) is counted from what its first visit found, so a bomb costs its few nodes."""
    measured: dict[int, tuple[int, int]] = {}  # id(collection) -> (values, height)
    open_nodes: set[int] = set()  # the collections being measured: the current node's ancestors

    def values_under(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        known = measured.get(key)
        if known is None:
            if key in open_nodes:
                raise _Unbounded("an alias inside the node its anchor names: a cycle", node)
            if depth >= MAX_DEPTH:
                raise _Unbounded(f"values nested more than {MAX_DEPTH} deep", node)
            open_nodes.add(key)
            children = (
                node.value
                if node.__class__ is yaml.SequenceNode
                else [part for pair in node.value for part in pair]
            )
            values, height = 1, 1
            for child in children:
                if child.__class__ is yaml.ScalarNode:
                    values += 1
                else:
                    below, child_height = values_under(child, depth + 1)
                    values += below
                    height = max(height, child_height + 1)
            open_nodes.discard(key)
            known = measured[key] = (values, height)
        if spent + known[0] > MAX_VALUES:
            raise _too_many(node)
        if depth + known[1] > MAX_DEPTH:
            raise _Unbounded(f"values nested more than {MAX_DEPTH} deep", node)
        return known

    if root.__class__ is not yaml.ScalarNode:
        return spent + values_under(root, 0)[0]
    if spent + 1 > MAX_VALUES:
        raise _too_many(root)
    return spent + 1


def _too_many(node: yaml.Node) -> _Unbounded:
    return _Unbounded(
        f"more than {MAX_VALUES} values in this file once aliases are expanded: "
        "the loader refuses it",
        node,
    )


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


class Source:
    """The text of one file, composed once (not once per document) the first time one of its
    documents is asked where something stands."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._nodes: list[yaml.Node] | None = None

    def node(self, index: int) -> yaml.Node:
        if self._nodes is None:
            self._nodes = list(yaml.compose_all(self.text, Loader=_Loader))
        return self._nodes[index]


@dataclass
class Document:
    """One YAML document of a file; the position of every value and key is found on demand."""

    path: str
    index: int
    data: Any
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)
    source: Source | None = field(default=None, repr=False)  # set while positions are not built

    def _positions(self) -> None:
        if self.source is None:
            return
        source, self.source = self.source, None
        _Builder(self, []).build(source.node(self.index), ())

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


def _strict_load(text: str) -> list[Any]:
    """yaml.load_all with the strict loader, each document measured before it is built."""
    loader = _StrictLoader(text)
    loaded: list[Any] = []
    spent = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            spent = _measure(node, spent)
            loaded.append(loader.construct_document(node))
    finally:
        loader.dispose()
    return loaded


def _too_long(text: str, path: str) -> Diagnostic | None:
    if len(text) <= MAX_CHARS:
        return None
    message = f"file of {len(text)} characters: the loader reads at most {MAX_CHARS}"
    return Diagnostic(path, 1, 1, "error", message, "yaml-limit")


def load_text(text: str, path: str) -> tuple[list[Document], list[Diagnostic]]:
    """Parse every document of a YAML text. Never raises on bad input: problems are returned."""
    if too_long := _too_long(text, path):
        return [], [too_long]
    try:
        loaded = _strict_load(text)
    except _Unbounded as exc:
        return [], [exc.diagnostic(path)]
    except (_Refused, yaml.YAMLError):
        return _load_with_positions(text, path)
    if not loaded:
        return [], [
            Diagnostic(path, 1, 1, "error", "file has no YAML document: it is empty", "yaml-empty")
        ]
    source = Source(text)
    return [Document(path, i, data, source=source) for i, data in enumerate(loaded)], []


def _load_with_positions(text: str, path: str) -> tuple[list[Document], list[Diagnostic]]:
    problems: list[Diagnostic] = []
    documents: list[Document] = []
    if too_long := _too_long(text, path):
        return [], [too_long]
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
        spent = 0
        for node in nodes:
            spent = _measure(node, spent)
    except _Unbounded as exc:
        return [], [exc.diagnostic(path)]
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
