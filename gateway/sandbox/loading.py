"""Loading rules from YAML files and JSON lists, with errors that say where.

A rules file is a list of rules or a mapping with a ``rules`` list (see ``rules.py`` for one
rule's keys). Errors name the file, the line the rule starts on and its index::

    sandbox/responses.yaml:14: rules[2]: times: expected a whole number of at least 1, got 0
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gateway.sandbox.rules import ResponseRule, RuleError


def parse_rules(items: Any, source: str = "rules", lines: Sequence[int] = ()) -> list[ResponseRule]:
    """Rules from a list of mappings; errors name ``source``, the index and the line if known."""
    if isinstance(items, Mapping) and set(items) == {"rules"}:
        items = items["rules"]
    if not isinstance(items, list):
        raise RuleError(
            f"{source}: expected a list of rules (or a mapping with a 'rules' list), "
            f"got {type(items).__name__}"
        )
    rules: list[ResponseRule] = []
    for index, item in enumerate(items):
        try:
            rules.append(ResponseRule.from_dict(item))
        except RuleError as exc:
            where = f"{source}:{lines[index]}" if index < len(lines) else source
            raise RuleError(f"{where}: rules[{index}]: {exc}") from None
    return rules


def load_rules(path: str | os.PathLike[str]) -> list[ResponseRule]:
    """Rules from a YAML file (``yaml.safe_load``): a list, or a mapping with a ``rules`` list."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{file}: not valid YAML: {exc}") from None
    if data is None:
        return []
    return parse_rules(data, str(file), _rule_lines(text))


def _rule_lines(text: str) -> list[int]:
    """The 1-based line where each rule starts, for error messages."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(node, yaml.MappingNode):
        node = next((v for k, v in node.value if k.value == "rules"), None)
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]
