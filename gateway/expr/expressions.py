"""Jinja2 expressions of the YAML files: one sandboxed environment, compiled once.

A value that is exactly one ``{{ expression }}`` evaluates to the expression's own type (a
number stays a number, a list a list); anything else renders to text. Which variables an
expression may read depends on where it stands in a document: see ``CONTEXTS``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, nodes
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg

from gateway.expr.filters import FILTERS
from gateway.expr.sealed import Sealed

# What rendering an expression may raise on data it was not written for (a missing key, a
# wrong type, a bad date): callers turn these into their own errors, never into a crash.
# re.error: a `matching` test given a pattern that does not compile (lint reports those).
RENDER_ERRORS = (TemplateError, TypeError, ValueError, ArithmeticError, LookupError, re.error)

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
# A plain lookup: name, then .key or ['key'] steps (`body.data.id`, `headers['x-id']`).
_LOOKUP = re.compile(r"""^\s*([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[(?:'[^'\\]*'|"[^"\\]*")\])*)\s*$""")
_STEP = re.compile(r"""\.([A-Za-z_]\w*)|\['([^']*)'\]|\["([^"]*)"\]""")
_MARKERS = ("{{", "{%", "{#")


class MissingValue(StrictUndefined):
    """A missing key: reading further into it is allowed (``a.b.c | default(x)`` works), but
    printing, comparing or iterating it fails, naming the first key that was missing."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __getitem__(self, _key: Any) -> Any:
        return self


def _matching(value: Any, pattern: str) -> bool:
    """Jinja test: ``x is matching('^BOOKING_')``, a regular-expression search."""
    return re.search(pattern, str(value)) is not None


class _Environment(ImmutableSandboxedEnvironment):
    """Keys of JSON objects win over dict methods: ``response.items`` is the key "items"."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Nothing of a sealed secret is readable (see gateway/expr/sealed.py)."""
        return not isinstance(obj, Sealed) and super().is_safe_attribute(obj, attr, value)


def _make_environment() -> ImmutableSandboxedEnvironment:
    env = _Environment(undefined=MissingValue, autoescape=False, keep_trailing_newline=True)
    env.filters.update(FILTERS)
    env.tests["matching"] = _matching
    return env


ENV = _make_environment()

# Where an expression stands (the path's leading keys) -> the variables it may read.
# The longest matching prefix wins; "*" matches any single key.
# What the webhook pipeline offers (gateway.config.pipeline): a verified request to id, type,
# split and respond; a stored event (no query string) to mapping rules.
_WEBHOOK = frozenset({"body", "headers", "query", "integration", "tenant"})
_MAPPING = frozenset({"body", "headers", "integration", "tenant"})
# An in-call function (gateway.functions.engine): the verified call, then the steps' results.
_FUNCTION = frozenset({"body", "args", "call", "tenant", "integration", "now"})
CONTEXTS: tuple[tuple[tuple[str, ...], frozenset[str]], ...] = (
    # A handshake's answer: `body` where it is verified (lint checks), `secret('NAME')` for
    # the integration's own secrets, sealed (gateway/expr/sealed.py).
    (
        ("webhook", "handshakes"),
        frozenset({"query", "headers", "integration", "tenant", "body", "secret"}),
    ),
    (("webhook",), _WEBHOOK),
    (("webhook", "map"), _MAPPING),
    (("functions",), _FUNCTION | {"steps"}),
    (("functions", "*", "idempotency"), _FUNCTION),
    (("functions", "*", "fallback"), _FUNCTION),
    (("api",), frozenset({"tenant"})),
    (("api", "retry", "retryable"), frozenset({"status", "headers", "body"})),
    (
        ("channels",),
        frozenset(
            {"to", "text", "html", "subject", "whatsapp_template", "tenant", "data", "message_id"}
        ),
    ),
    (("channels", "*", "message_id"), frozenset({"status", "headers", "body"})),
    (("syncs", "*", "records"), frozenset({"response", "tenant"})),
    (("syncs", "*", "record"), frozenset({"record", "tenant"})),
    (("syncs", "*", "paginate"), frozenset({"response", "tenant", "headers"})),
    (("syncs", "*", "incremental"), frozenset({"response", "tenant"})),
    (("syncs", "*", "incremental", "value"), frozenset({"state", "tenant", "now"})),
    # as_webhook: the webhook a record stands for (gateway.config.syncs.AsWebhook)
    (("syncs", "*", "as_webhook"), frozenset({"record", "tenant", "now"})),
    (("syncs",), frozenset({"tenant", "state", "now"})),
    (("condition",), frozenset({"event", "tenant", "now"})),
    (("actions",), frozenset({"event", "tenant", "now"})),
    (("actions", "call", "then"), frozenset({"event", "tenant", "now", "result"})),
    # A scheduled call's follow-ups (a reminder that first looks the booking up).
    (
        ("actions", "schedule", "action", "call", "then"),
        frozenset({"event", "tenant", "now", "result"}),
    ),
    (("actions", "on_failure"), frozenset({"event", "tenant", "now", "result"})),
)


@lru_cache(maxsize=4096)
def context_for(path: tuple[str | int, ...]) -> frozenset[str] | None:
    """The variables available at `path`, or None if no expression belongs there."""
    best: frozenset[str] | None = None
    best_len = -1
    for prefix, names in CONTEXTS:
        if len(prefix) > len(path) or len(prefix) <= best_len:
            continue
        if all(p == "*" or p == k for p, k in zip(prefix, path, strict=False)):
            best, best_len = names, len(prefix)
    return best


def is_template(value: object) -> bool:
    return isinstance(value, str) and any(m in value for m in _MARKERS)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with an expression, found without running it."""

    message: str
    rule: str


def _walk_names(tree: nodes.Node) -> Iterator[nodes.Node]:
    yield from tree.find_all((nodes.Name, nodes.Filter, nodes.Test))


@lru_cache(maxsize=4096)
def analyse(source: str) -> tuple[frozenset[str], tuple[Problem, ...]]:
    """The free variables an expression reads, and its problems (syntax, unknown filters)."""
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError as exc:
        return frozenset(), (Problem(f"template does not compile: {exc.message}", "jinja-syntax"),)
    problems: list[Problem] = []
    stored: set[str] = set()
    loaded: set[str] = set()
    for node in _walk_names(tree):
        if isinstance(node, nodes.Name):
            (stored if node.ctx in ("store", "param") else loaded).add(node.name)
        elif isinstance(node, nodes.Filter) and node.name not in ENV.filters:
            problems.append(Problem(f"unknown filter '{node.name}'", "jinja-filter"))
        elif isinstance(node, nodes.Test) and node.name not in ENV.tests:
            problems.append(Problem(f"unknown test '{node.name}'", "jinja-filter"))
        elif isinstance(node, nodes.Test) and node.name == "matching":
            problems.extend(_regex_problems(node))
    free = frozenset(loaded - stored - set(ENV.globals))
    return free, tuple(problems)


@lru_cache(maxsize=1024)
def secrets_read(source: str) -> tuple[str | None, ...]:
    """The names an expression's ``secret(...)`` calls ask for (None: not a literal text)."""
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError:
        return ()  # lint reports it
    found: list[str | None] = []
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "secret":
            first = call.args[0] if len(call.args) == 1 and not call.kwargs else None
            if isinstance(first, nodes.Const) and isinstance(first.value, str):
                found.append(first.value)
            else:
                found.append(None)
    return tuple(found)


_GUARDS = frozenset({"default", "d"})


@lru_cache(maxsize=4096)
def tenant_vars_needed(source: str) -> frozenset[str]:
    """The tenant variables (``tenant.vars.NAME`` or ``tenant.vars['NAME']``) a template reads
    without a guard: a variable given a ``| default(...)`` or tested with ``is defined``
    anywhere in the template counts as optional."""
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError:
        return frozenset()  # lint reports it
    guards = [f.node for f in tree.find_all(nodes.Filter) if f.name in _GUARDS]
    guards += [t.node for t in tree.find_all(nodes.Test) if t.name in ("defined", "undefined")]
    optional = {_root_var(node) for node in guards}  # tenant.vars.x.y | default: x optional
    methods = {id(call.node) for call in tree.find_all(nodes.Call)}  # tenant.vars.get(...)
    used = {
        _tenant_var(node)
        for node in tree.find_all((nodes.Getattr, nodes.Getitem))
        if id(node) not in methods
    }
    return frozenset(name for name in used - optional if name is not None)


def _root_var(node: nodes.Node | None) -> str | None:
    """The tenant variable a chain of lookups starts from: tenant.vars.x.y['z'] -> x."""
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        name = _tenant_var(node)
        if name is not None:
            return name
        node = node.node
    return None


def _tenant_var(node: nodes.Node | None) -> str | None:
    if isinstance(node, nodes.Getattr):
        key: Any = node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        key = node.arg.value
    else:
        return None
    parent = node.node
    if (
        isinstance(key, str)
        and isinstance(parent, nodes.Getattr)
        and parent.attr == "vars"
        and isinstance(parent.node, nodes.Name)
        and parent.node.name == "tenant"
    ):
        return key
    return None


def _regex_problems(node: nodes.Test) -> list[Problem]:
    found = []
    for arg in node.args:
        if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
            try:
                re.compile(arg.value)
            except re.error as exc:
                found.append(Problem(f"regex {arg.value!r} does not parse: {exc}", "invalid-regex"))
    return found


_MISS = object()


def _lookup(variables: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """Follow dict keys, as the environment would (JSON keys win); `_MISS` when any step is
    not a present key of a dict, so that Jinja decides (attributes, defaults, errors)."""
    value: Any = variables.get(path[0], _MISS)
    for key in path[1:]:
        if type(value) is not dict:  # a dict's subclass too goes to Jinja: the same answer
            return _MISS
        value = value.get(key, _MISS)
    return value


# ---- the fast path: common expression shapes as plain Python closures -----------------------
#
# Jinja renders an expression by building a context (the variables laid over the globals) and
# running a generated function; for a mapping's `{{ a.b or '' }}` that is most of the cost. The
# shapes below compile to closures that do exactly what Jinja's generated code does (read in
# `ENV.compile(source, raw=True)`): names resolved over the globals or `undefined(name=...)`,
# `environment.getattr` / `environment.getitem` for lookups (the sandbox's own checks, JSON
# keys first), the filters and tests of `ENV` called as the generated code calls them, and
# Python's own operators, `and`, `or`, `not`, `in`, conditional expressions and `~` (every part
# evaluated, then each made text). Anything else (calls, slices, filters reading the context,
# an `if` without `else`, statements) is `_Unsupported`, and the expression stays Jinja's.
# tests/expr/test_fast_path.py checks both give the same value or the same error.

Evaluate = Callable[[Mapping[str, Any]], Any]


class _Unsupported(Exception):
    """A node the fast path does not compile: Jinja renders the expression."""


_GLOBALS: Mapping[str, Any] = ENV.globals
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}
_BINARY: dict[type[nodes.Node], Callable[[Any, Any], Any]] = {
    nodes.Add: operator.add,
    nodes.Sub: operator.sub,
    nodes.Mul: operator.mul,
    nodes.Div: operator.truediv,
    nodes.FloorDiv: operator.floordiv,
    nodes.Mod: operator.mod,
}


def _name(name: str) -> Evaluate:
    undefined = ENV.undefined
    if name in _GLOBALS:
        fallback = _GLOBALS[name]

        def global_or_variable(variables: Mapping[str, Any]) -> Any:
            return variables.get(name, fallback)

        return global_or_variable

    def variable(variables: Mapping[str, Any]) -> Any:
        found = variables.get(name, _MISS)
        return undefined(name=name) if found is _MISS else found

    return variable


def _getattr(inner: Evaluate, attribute: str) -> Evaluate:
    slow = ENV.getattr

    def lookup(variables: Mapping[str, Any]) -> Any:
        obj = inner(variables)
        if type(obj) is dict and attribute in obj:  # what _Environment.getattr does first
            return obj[attribute]
        return slow(obj, attribute)

    return lookup


def _getitem(inner: Evaluate, key: Evaluate) -> Evaluate:
    slow = ENV.getitem

    def subscript(variables: Mapping[str, Any]) -> Any:
        return slow(inner(variables), key(variables))

    return subscript


def _const(value: Any) -> Evaluate:
    return lambda _: value


def _call_of(
    table: Mapping[str, Any],
    node: nodes.Filter | nodes.Test,
    inner: Evaluate,
) -> Evaluate:
    """A filter or test applied as the generated code applies it: `f(value, *args, **kw)`,
    the environment first for a filter that asks for it."""
    if node.dyn_args is not None or node.dyn_kwargs is not None or node.name not in table:
        raise _Unsupported(node.name)
    fn = table[node.name]
    passed = _PassArg.from_obj(fn)
    if passed not in (None, _PassArg.environment):
        raise _Unsupported(node.name)  # reads the context (the locale's filters)
    args = [_compile(arg) for arg in node.args]
    kwargs = [(str(pair.key), _compile(pair.value)) for pair in node.kwargs]
    if passed is _PassArg.environment:
        environment = ENV
        plain = fn

        def fn(value: Any, *rest: Any, **named: Any) -> Any:
            return plain(environment, value, *rest, **named)

    if not args and not kwargs:
        return lambda variables: fn(inner(variables))
    if len(args) == 1 and not kwargs:
        (first,) = args
        return lambda variables: fn(inner(variables), first(variables))

    def apply(variables: Mapping[str, Any]) -> Any:
        value = inner(variables)
        positional = [arg(variables) for arg in args]
        named: dict[str, Any] = {key: arg(variables) for key, arg in kwargs}
        return fn(value, *positional, **named)

    return apply


def _compare(node: nodes.Compare) -> Evaluate:
    first = _compile(node.expr)
    steps = [(_COMPARE[op.op], _compile(op.expr)) for op in node.ops]
    if len(steps) == 1:
        ((compare, right),) = steps
        return lambda variables: compare(first(variables), right(variables))

    def chained(variables: Mapping[str, Any]) -> Any:  # a < b < c: Python's chaining
        left = first(variables)
        result: Any = True
        for compare, right in steps:
            value = right(variables)
            result = compare(left, value)
            if not result:
                return result
            left = value
        return result

    return chained


def _compile(node: nodes.Node) -> Evaluate:  # one case a shape
    if isinstance(node, nodes.Const):
        return _const(node.value)
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return _name(node.name)
    if isinstance(node, nodes.Getattr) and node.ctx == "load":
        return _getattr(_compile(node.node), node.attr)
    if isinstance(node, nodes.Getitem) and node.ctx == "load":
        if isinstance(node.arg, nodes.Slice):
            raise _Unsupported("slice")
        return _getitem(_compile(node.node), _compile(node.arg))
    if isinstance(node, nodes.Filter) and node.node is not None:
        return _call_of(ENV.filters, node, _compile(node.node))
    if isinstance(node, nodes.Test):
        return _call_of(ENV.tests, node, _compile(node.node))
    if isinstance(node, nodes.And):
        left, right = _compile(node.left), _compile(node.right)
        return lambda variables: left(variables) and right(variables)
    if isinstance(node, nodes.Or):
        left, right = _compile(node.left), _compile(node.right)
        return lambda variables: left(variables) or right(variables)
    if isinstance(node, nodes.Not):
        inner = _compile(node.node)
        return lambda variables: not inner(variables)
    if isinstance(node, nodes.Neg):
        inner = _compile(node.node)
        return lambda variables: -inner(variables)
    if isinstance(node, nodes.Compare):
        return _compare(node)
    if type(node) in _BINARY:
        binary = _BINARY[type(node)]
        left, right = _compile(node.left), _compile(node.right)  # type: ignore[attr-defined]
        return lambda variables: binary(left(variables), right(variables))
    if isinstance(node, nodes.Concat):
        parts = [_compile(part) for part in node.nodes]
        return lambda variables: "".join(map(str, [part(variables) for part in parts]))
    if isinstance(node, nodes.CondExpr) and node.expr2 is not None:
        test, then, other = _compile(node.test), _compile(node.expr1), _compile(node.expr2)
        return lambda variables: then(variables) if test(variables) else other(variables)
    if isinstance(node, nodes.List) or (isinstance(node, nodes.Tuple) and node.ctx == "load"):
        items = [_compile(item) for item in node.items]
        make: Callable[[Any], Any] = list if isinstance(node, nodes.List) else tuple
        return lambda variables: make([item(variables) for item in items])
    if isinstance(node, nodes.Dict):
        pairs = [(_compile(pair.key), _compile(pair.value)) for pair in node.items]
        return lambda variables: {key(variables): value(variables) for key, value in pairs}
    raise _Unsupported(type(node).__name__)


def fast_expression(source: str) -> Evaluate | None:
    """The expression `source` (what stands between ``{{`` and ``}}``) as a closure, or None
    when it has a shape the fast path leaves to Jinja (or does not parse)."""
    try:
        parser = Parser(ENV, source, state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            return None
        return _compile(tree)
    except (_Unsupported, TemplateError):
        return None


def fast_template(source: str) -> Evaluate | None:
    """A text template made only of text and ``{{ expression }}`` parts as a closure that
    renders it (each part made text in turn, as Jinja's generated code yields them), or None."""
    try:
        tree = ENV.parse(source)
        if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
            return None
        parts: list[str | Evaluate] = []
        for child in tree.body[0].nodes:
            parts.append(child.data if isinstance(child, nodes.TemplateData) else _compile(child))
    except (_Unsupported, TemplateError):
        return None

    def render(variables: Mapping[str, Any]) -> str:
        return "".join([part if isinstance(part, str) else str(part(variables)) for part in parts])

    return render


def _expression(source: str) -> Callable[[Mapping[str, Any]], Any]:
    """One Jinja expression as a function of the variables, keeping the value's type.

    What Environment.compile_expression makes, but each call gives the template a context
    over one dict (the variables laid over the globals) instead of a fresh context built by
    copying: ~1.6 us a call instead of ~7.4, and mappings render many expressions per event.
    """
    parser = Parser(ENV, source, state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)
    tree = nodes.Template([nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)], lineno=1)
    template = ENV.from_string(tree)
    run = template.root_render_func
    shared = dict(ENV.globals)

    def evaluate(variables: Mapping[str, Any]) -> Any:
        context = template.new_context({**shared, **variables}, shared=True)
        for _ in run(context):  # the assignment renders nothing
            pass
        return context.vars["result"]

    return evaluate


class Expression:
    """A compiled value template. Call ``render(variables)``."""

    __slots__ = ("_fn", "_path", "source")
    _fn: Callable[[Mapping[str, Any]], Any]

    def __init__(self, source: str) -> None:
        self.source = source
        self._path: tuple[str, ...] | None = None
        match = _SINGLE.match(source)
        lookup = _LOOKUP.match(match["expr"]) if match else None
        if lookup:  # read keys directly; anything unusual falls back to Jinja below
            steps = [
                next(g for g in m.groups() if g is not None) for m in _STEP.finditer(lookup[2])
            ]
            self._path = (lookup[1], *steps)
        # Jinja compiles every expression (its syntax errors are the ones reported); the fast
        # path, where it applies, is what runs: compiled at the first rendering, so that lint,
        # which renders few, does not pay for it.
        single = match["expr"] if match and not any(m in match["expr"] for m in _MARKERS) else None
        jinja = _expression(single) if single is not None else ENV.from_string(source).render

        def first(variables: Mapping[str, Any]) -> Any:
            fast = fast_expression(single) if single is not None else fast_template(source)
            self._fn = fast or jinja
            return self._fn(variables)

        self._fn = first

    def render(self, variables: Mapping[str, Any]) -> Any:
        if self._path is not None:
            found = _lookup(variables, self._path)
            if found is not _MISS:
                return found
        result = self._fn(variables)
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()
        return result

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


@lru_cache(maxsize=8192)
def compile_expression(source: str) -> Expression:
    return Expression(source)


def compile_value(value: Any) -> Callable[[Mapping[str, Any]], Any]:
    """`render_value` of `value`, compiled once: what a mapping's `data` renders on every
    event is walked and looked up at load, not per event."""
    if isinstance(value, str):
        return compile_expression(value).render if is_template(value) else lambda _: value
    if isinstance(value, Mapping):
        fields = [(key, compile_value(item)) for key, item in value.items()]
        return lambda variables: {key: render(variables) for key, render in fields}
    if isinstance(value, list):
        items = [compile_value(item) for item in value]
        return lambda variables: [render(variables) for render in items]
    return lambda _: value


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render every template string inside a nested value (dicts, lists); others pass through."""
    if isinstance(value, str):
        return compile_expression(value).render(variables) if is_template(value) else value
    if isinstance(value, Mapping):
        return {k: render_value(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, variables) for v in value]
    return value


class FieldRead(NamedTuple):
    """One read of ``event.data.<field>`` in an expression or a template."""

    field: str
    guarded: bool  # under a `default` filter, a test, a condition: no value is needed


_GUARD_FILTERS = frozenset({"default", "d"})


def data_reads(source: str, guards: frozenset[str] = frozenset()) -> list[FieldRead]:
    """Every ``event.data.X`` (or ``event.data['X']``) a template reads, and whether a value is
    needed where it stands. `guards` are fields an enclosing condition already tested. A
    template that does not parse reads nothing (its syntax is reported on its own)."""
    try:
        tree = ENV.parse(source)
    except TemplateSyntaxError:
        return []
    found: list[FieldRead] = []
    _walk_reads(tree, guards, False, found)
    return found


def _field_of(node: nodes.Node) -> str | None:
    """X when `node` is ``event.data.X`` or ``event.data['X']``."""
    if isinstance(node, nodes.Getattr):
        inner, field = node.node, node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        inner, field = node.node, str(node.arg.value)
    else:
        return None
    if (
        isinstance(inner, nodes.Getattr)
        and inner.attr == "data"
        and isinstance(inner.node, nodes.Name)
        and inner.node.name == "event"
    ):
        return field
    return None


def _tested(node: nodes.Node) -> frozenset[str]:
    found: list[FieldRead] = []
    _walk_reads(node, frozenset(), True, found)
    return frozenset(read.field for read in found)


def _walk_reads(
    node: nodes.Node, guards: frozenset[str], guarded: bool, found: list[FieldRead]
) -> None:
    field = _field_of(node)
    if field is not None:
        found.append(FieldRead(field, guarded or field in guards))
        return
    if isinstance(node, nodes.If | nodes.CondExpr):
        test = node.test
        _walk_reads(test, guards, True, found)
        inner = guards | _tested(test)
        then: list[nodes.Node] = node.body if isinstance(node, nodes.If) else [node.expr1]
        rest: list[nodes.Node | None] = (
            [*node.elif_, *node.else_] if isinstance(node, nodes.If) else [node.expr2]
        )
        for child in then:
            _walk_reads(child, inner, guarded, found)
        for other in rest:
            if other is not None:
                _walk_reads(other, guards, guarded, found)
        return
    guard = isinstance(node, nodes.Test | nodes.And | nodes.Or | nodes.Not)
    if guard or (isinstance(node, nodes.Filter) and node.name in _GUARD_FILTERS):
        guarded = True
    for child in node.iter_child_nodes():
        _walk_reads(child, guards, guarded, found)
