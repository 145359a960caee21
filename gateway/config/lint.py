"""`gateway lint`: every check of the YAML files, each finding with file, line, column and rule.

The server loads its configuration through the same function (`lint`), so what lint accepts is
exactly what the server runs.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import resources
from gateway.config.contract_checks import build_contracts, check_contracts
from gateway.config.envsubst import embedded_secret, find_refs, malformed_refs
from gateway.config.examples import check_examples
from gateway.config.references import check_references
from gateway.config.schemas import KINDS, validate
from gateway.config.sync_checks import check_syncs
from gateway.config.yamlsource import Document, load_text
from gateway.diagnostics import Diagnostic
from gateway.errors import UsageError
from gateway.expr.expressions import analyse, context_for, is_template, secrets_read
from gateway.verify import VerifyConfigError, build_verifier

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class LintResult:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    files: int = 0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def collect_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{raw}: no such file or directory")
    return files


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from exc


def _marked_strings(value: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string holding `$` or `{` (only those can carry a reference or an expression),
    with its path. Iterative: files can nest deeply."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "$" in item or "{" in item:
                yield path, item
        elif isinstance(item, dict):
            stack.extend(((*path, k), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(item))))


def _check_kind(doc: Document) -> str | Diagnostic:
    """The document's kind, or the diagnostic that says why it has none we know."""
    data = doc.data
    if not isinstance(data, dict):
        return doc.diagnostic(
            (),
            f"a document must be a mapping with a 'kind' key, not {type(data).__name__}",
            "missing-kind",
        )
    kind = data.get("kind")
    if kind is None:
        return doc.diagnostic(
            (), f"document has no 'kind': expected one of {', '.join(KINDS)}", "missing-kind"
        )
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return doc.diagnostic(
            ("kind",),
            f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}{hint}",
            "unknown-kind",
        )
    return str(kind)


def _check_strings(
    doc: Document, kind: str, environ: Mapping[str, str] | None
) -> Iterator[Diagnostic]:
    for path, text in _marked_strings(doc.data):
        if path == ("kind",) or (kind == "integration" and _is_example(path)):
            continue
        if "$" in text:
            yield from _check_references(doc, path, text, environ)
        if is_template(text):
            yield from _check_expression(doc, path, text)


def _is_example(path: tuple[str | int, ...]) -> bool:
    """Whether `path` is inside an example (data as the provider sends it, not templates):
    a webhook example, or a sync's example record."""
    return path[:1] == ("examples",) or (path[:1] == ("syncs",) and path[2:3] == ("examples",))


def _check_references(
    doc: Document, path: tuple[str | int, ...], text: str, environ: Mapping[str, str] | None
) -> Iterator[Diagnostic]:
    for bad in malformed_refs(text):
        yield doc.diagnostic(
            path,
            f"{bad!r} is not a valid reference: expected ${{NAME}}, ${{NAME:-default}} "
            "or ${secret:NAME}",
            "env-syntax",
        )
    if embedded_secret(text):
        yield doc.diagnostic(
            path, "a ${secret:...} reference must be the whole value", "secret-embedded"
        )
    if environ is not None:
        for ref in find_refs(text):
            if ref.default is None and ref.name not in environ:
                what = "secret" if ref.secret else "environment variable"
                yield doc.diagnostic(
                    path, f"{what} {ref.name} is not set", "env-unset", severity="warning"
                )


def _check_expression(
    doc: Document, path: tuple[str | int, ...], text: str
) -> Iterator[Diagnostic]:
    free, problems = analyse(text)
    for problem in problems:
        yield doc.diagnostic(path, problem.message, problem.rule)
    allowed = context_for(tuple(str(p) for p in path if not isinstance(p, int)))
    if allowed is None:
        yield doc.diagnostic(
            path,
            "expressions are not evaluated here: this value is used as written",
            "jinja-unused",
        )
        return
    for name in sorted(free - allowed):
        close = difflib.get_close_matches(name, sorted(allowed), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        yield doc.diagnostic(
            path,
            f"variable '{name}' is not available here{hint}"
            f" (available: {', '.join(sorted(allowed))})",
            "jinja-undefined-var",
        )


def _check_handshakes(doc: Document) -> Iterator[Diagnostic]:
    """A handshake answers from the body only when it is verified, and reads only the
    integration's own secrets, named as written (``secret('NAME')``)."""
    webhook = doc.data.get("webhook")
    handshakes = webhook.get("handshakes") if isinstance(webhook, dict) else None
    declared = {
        ref.name
        for _, text in _marked_strings(doc.data)
        if "$" in text
        for ref in find_refs(text)
        if ref.secret
    }
    for i, handshake in enumerate(handshakes if isinstance(handshakes, list) else []):
        respond = handshake.get("respond") if isinstance(handshake, dict) else None
        body = respond.get("body") if isinstance(respond, dict) else None
        if not isinstance(body, str) or not is_template(body):
            continue
        path = ("webhook", "handshakes", i, "respond", "body")
        if "body" in analyse(body)[0] and handshake.get("verified") is not True:
            yield doc.diagnostic(
                path,
                "a handshake answers from the body only when it is verified: add verified: true",
                "handshake-unverified-body",
            )
        for name in secrets_read(body):
            if name is None:
                yield doc.diagnostic(
                    path, "secret(...) takes one secret's name, written as text", "secret-ref"
                )
            elif name not in declared:
                yield doc.diagnostic(
                    path,
                    f"secret('{name}') is not one of this integration's secrets"
                    f" (declared with ${{secret:NAME}}: {', '.join(sorted(declared)) or 'none'})",
                    "secret-ref",
                )


def _check_verifier(doc: Document) -> Iterator[Diagnostic]:
    """The verifier the server would build from this file must build: same code, same verdict."""
    webhook = doc.data.get("webhook")
    if not isinstance(webhook, dict) or not isinstance(webhook.get("verify"), dict):
        return
    try:
        build_verifier(webhook["verify"])
    except VerifyConfigError as exc:
        yield doc.diagnostic(("webhook", "verify"), str(exc), "verify-config")


def lint_documents(
    sources: Mapping[str, str],
    *,
    templates_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LintResult:
    """Lint already-read texts (path -> text). `environ` set: report unset env references."""
    result = LintResult(files=len(sources))
    typed: list[tuple[Document, str]] = []
    valid: set[int] = set()  # the documents whose schema holds
    for path, text in sources.items():
        documents, problems = load_text(text, path)
        result.diagnostics.extend(problems)
        for doc in documents:
            kind = _check_kind(doc)
            if isinstance(kind, Diagnostic):
                result.diagnostics.append(kind)
                continue
            schema_problems = validate(doc, kind)
            result.diagnostics.extend(schema_problems)
            if not schema_problems:
                valid.add(id(doc))
            if kind == "integration" and not schema_problems:
                result.diagnostics.extend(_check_verifier(doc))
                result.diagnostics.extend(_check_handshakes(doc))
            result.diagnostics.extend(_check_strings(doc, kind, environ))
            typed.append((doc, kind))
            result.documents.append(doc)
    result.diagnostics.extend(check_references(typed, templates_dir))
    contracts = build_contracts(typed, valid)
    result.diagnostics.extend(check_contracts(typed, contracts, templates_dir))
    integrations = [d for d, k in typed if k == "integration"]
    result.diagnostics.extend(check_examples(integrations, contracts))
    result.diagnostics.extend(check_syncs(integrations, contracts))
    return result


def default_templates_dir(paths: Sequence[str]) -> Path:
    """$GATEWAY_TEMPLATES_DIR, else templates/ beside the integrations folder, else the
    templates the package ships."""
    configured = os.environ.get("GATEWAY_TEMPLATES_DIR")
    if configured:
        return Path(configured)
    first = Path(paths[0]) if paths else Path("integrations.d")
    base = first if first.is_dir() else first.parent
    beside = base.resolve().parent / "templates"
    return beside if beside.is_dir() else resources.templates_dir()


def lint(
    paths: Sequence[str],
    *,
    templates_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LintResult:
    """Lint the files `paths` name (folders: every YAML file in them).

    A file named alone is read with its folder's other YAML files as context, as `serve`
    would read them together: references to what they declare resolve, and findings are
    reported for the named files only.
    """
    files = collect_files(paths)
    if not files:
        raise UsageError(f"no YAML files (*.yaml, *.yml) in {', '.join(paths)}")
    sources = {str(p): _read(p) for p in files}
    context = _context_sources(paths, sources)
    templates = templates_dir or default_templates_dir(paths)
    if not context:
        return lint_documents(sources, templates_dir=templates, environ=environ)
    result = lint_documents({**context, **sources}, templates_dir=templates, environ=environ)
    return LintResult(
        diagnostics=[d for d in result.diagnostics if d.path in sources],
        documents=[doc for doc in result.documents if doc.path in sources],
        files=len(sources),
    )


def _context_sources(paths: Sequence[str], named: Mapping[str, str]) -> dict[str, str]:
    """The other YAML files beside each file named alone (those that can be read)."""
    folders = {Path(raw).parent for raw in paths if Path(raw).is_file()}
    context: dict[str, str] = {}
    for folder in sorted(folders):
        for sibling in sorted(folder.glob("*")):
            key = str(sibling)
            if sibling.suffix in YAML_SUFFIXES and sibling.is_file() and key not in named:
                try:
                    context[key] = _read(sibling)
                except UsageError:
                    continue  # not lintable: the folder's own lint reports it
    return context
