"""Message templates per locale: which file of `templates/` a send renders, for lint and the
worker alike.

A flow names a base template (`sms/booking-confirmation.txt`, written in `BASE_LOCALE`); its
translations sit beside it as `<name>.<locale>.<ext>` (`sms/booking-confirmation.de.txt`).
`resolve` takes the first of the preferred locales that has a file, each template on its own;
lint checks every variant `variants` finds, and `folder_problems` reports a variant with no
base template or a suffix that is no locale.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gateway.locales import BASE_LOCALE, locale_code

# The keys of a send that name a file in templates/: the message text, its HTML part and
# its subject (email).
TEMPLATE_KEYS = ("template", "html_template", "subject_template")


@dataclass(frozen=True, slots=True)
class Resolved:
    """The file a template name resolved to, and the locale it is written in."""

    name: str  # relative to templates/, as the message log records it
    locale: str


def variant(name: str, locale: str) -> str:
    """The file name of `name` (a base template) in `locale`: the base itself for
    `BASE_LOCALE`."""
    if locale == BASE_LOCALE:
        return name
    path = PurePosixPath(name)
    if not path.suffix:
        return f"{name}.{locale}"
    return str(path.with_name(f"{path.stem}.{locale}{path.suffix}"))


def split(name: str) -> tuple[str, str] | None:
    """(base name, locale suffix as written) of a file named `<name>.<suffix>.<ext>`; None
    for a base template (one dot or none in its file name)."""
    path = PurePosixPath(name)
    parts = path.name.split(".")
    if len(parts) < 3:
        return None
    base = ".".join(parts[:-2] + parts[-1:])
    return str(path.with_name(base)), parts[-2]


def resolve(folder: Path, name: str, locales: Sequence[str]) -> Resolved:
    """The first variant of `name` in the order of `locales` that is a file in `folder`; the
    base template when none is (its absence is the renderer's to report)."""
    for locale in locales:
        candidate = variant(name, locale)
        if locale == BASE_LOCALE or (folder / candidate).is_file():
            return Resolved(candidate, locale)
    return Resolved(name, BASE_LOCALE)


def variants(folder: Path, name: str) -> dict[str, str]:
    """Every file of `name` that `resolve` may choose, by locale: the base template (when it
    exists) and each translation beside it whose suffix is a locale."""
    found: dict[str, str] = {}
    if (folder / name).is_file():
        found[BASE_LOCALE] = name
    base = folder / name
    stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
    if not base.parent.is_dir():
        return found
    for file in sorted(base.parent.glob(f"{stem}.*{suffix}")):
        relative = str(PurePosixPath(name).with_name(file.name))
        parts = split(relative)
        if parts is None or parts[0] != name or not file.is_file():
            continue
        code = locale_code(parts[1])
        if code is not None and code == parts[1] and code != BASE_LOCALE:
            found[code] = relative
    return found


def folder_problems(folder: Path) -> Iterator[tuple[Path, str, str]]:
    """(file, message, rule) for each file of `folder` named as a translation that no send
    could use: its suffix is no locale (or not in CLDR's form), is the base locale, or no base
    template sits beside it."""
    if not folder.is_dir():
        return
    for file in sorted(folder.rglob("*")):
        if not file.is_file():
            continue
        relative = file.relative_to(folder).as_posix()
        parts = split(relative)
        if parts is None:
            continue
        base, suffix = parts
        code = locale_code(suffix)
        if code is None:
            yield (
                file,
                f"template '{relative}': '{suffix}' is not a locale code (a translation is"
                f" named <name>.<locale>.<ext>, like {variant(base, 'de')})",
                "template-locale",
            )
        elif code != suffix:
            yield (
                file,
                f"template '{relative}': write the locale '{suffix}' as '{code}'"
                f" ({variant(base, code)})",
                "template-locale",
            )
        elif code == BASE_LOCALE:
            yield (
                file,
                f"template '{relative}': '{base}' is the {BASE_LOCALE} template; a"
                f" '.{BASE_LOCALE}' translation of it would never be chosen",
                "template-locale",
            )
        elif not (folder / base).is_file():
            yield (
                file,
                f"template '{relative}' translates '{base}', which does not exist: flows name"
                " the base template, and it is the last resort",
                "template-orphan",
            )
