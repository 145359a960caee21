"""Templates per locale: which file a send renders, and what lint says of the translations."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.lint import lint
from gateway.config.templates import folder_problems, resolve, split, variant, variants
from gateway.diagnostics import Diagnostic
from gateway.locales import preference
from tests.config.test_contract_lint import EVENTS, FLOW, TEMPLATE, rules
from tests.config.test_lint_rules import BASE
from tests.helpers import REPO


def _folder(tmp_path: Path, *names: str) -> Path:
    for name in names:
        file = tmp_path / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(name)
    return tmp_path


def test_a_translation_sits_beside_its_base_template() -> None:
    assert variant("sms/booking.txt", "de") == "sms/booking.de.txt"
    assert variant("email/receipt.html", "de_AT") == "email/receipt.de_AT.html"
    assert variant("sms/booking.txt", "en") == "sms/booking.txt"  # the base is English
    assert split("sms/booking.de.txt") == ("sms/booking.txt", "de")
    assert split("sms/booking.txt") is None


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [
        (("de-AT", None), ("sms/x.de_AT.txt", "de_AT")),
        (("de-CH", None), ("sms/x.de.txt", "de")),  # no de_CH file: its language
        (("fr", "de"), ("sms/x.de.txt", "de")),  # no French: the tenant's locale
        (("en", "de"), ("sms/x.txt", "en")),  # English is asked for: the base template
        (("pt", None), ("sms/x.txt", "en")),  # nothing fits: English
        (("not a locale", "de"), ("sms/x.de.txt", "de")),  # passed over
    ],
)
def test_the_first_preferred_locale_with_a_file_is_chosen(
    tmp_path: Path, wanted: tuple[str | None, str | None], chosen: tuple[str, str]
) -> None:
    folder = _folder(tmp_path, "sms/x.txt", "sms/x.de.txt", "sms/x.de_AT.txt")
    found = resolve(folder, "sms/x.txt", preference(*wanted))
    assert (found.name, found.locale) == chosen


def test_variants_are_what_resolution_may_choose(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        "sms/x.txt",
        "sms/x.de.txt",
        "sms/x.de_AT.txt",
        "sms/x.final.txt",  # no locale: never chosen
        "sms/x.de.html",  # another kind of file
        "sms/xy.de.txt",  # another template
    )
    assert variants(folder, "sms/x.txt") == {
        "en": "sms/x.txt",
        "de": "sms/x.de.txt",
        "de_AT": "sms/x.de_AT.txt",
    }


def test_the_template_folder_reports_translations_no_send_could_use(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        "sms/x.txt",
        "sms/x.de.txt",
        "sms/x.klingon.txt",
        "sms/x.de-AT.txt",
        "sms/x.en.txt",
        "sms/gone.de.txt",
    )
    found = {
        file.relative_to(folder).as_posix(): (rule, text)
        for file, text, rule in folder_problems(folder)
    }
    assert sorted(found) == [
        "sms/gone.de.txt",
        "sms/x.de-AT.txt",
        "sms/x.en.txt",
        "sms/x.klingon.txt",
    ]
    assert found["sms/x.klingon.txt"][0] == "template-locale"
    assert "'klingon' is not a locale code" in found["sms/x.klingon.txt"][1]
    assert "write the locale 'de-AT' as 'de_AT'" in found["sms/x.de-AT.txt"][1]
    assert "would never be chosen" in found["sms/x.en.txt"][1]
    assert found["sms/gone.de.txt"][0] == "template-orphan"
    assert "'sms/gone.txt', which does not exist" in found["sms/gone.de.txt"][1]


def _lint(
    tmp_path: Path, translations: dict[str, str], flow: str = FLOW, tenant: str = ""
) -> list[Diagnostic]:
    folder = tmp_path / "integrations.d"
    folder.mkdir(exist_ok=True)
    templates = tmp_path / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "t.txt").write_text(TEMPLATE)
    for name, text in translations.items():
        (templates / name).write_text(text)
    files = {"acme.yaml": BASE, "flow.yaml": flow, "events.yaml": EVENTS}
    if tenant:
        files["tenant.yaml"] = tenant
    for name, text in files.items():
        (folder / name).write_text(text)
    return lint([str(folder)]).diagnostics


def test_a_good_translation_lints_clean(tmp_path: Path) -> None:
    assert _lint(tmp_path, {"t.de.txt": "Guten Tag {{ event.data.name }}\n"}) == []


def test_lint_rejects_an_unknown_locale_suffix_naming_the_file(tmp_path: Path) -> None:
    (found,) = _lint(tmp_path, {"t.xx.txt": "Hallo {{ event.data.name }}\n"})
    assert (found.path, found.severity, found.rule) == (
        str(tmp_path / "templates" / "t.xx.txt"),
        "error",
        "template-locale",
    )
    assert "template 't.xx.txt': 'xx' is not a locale code" in found.message


def test_lint_rejects_a_translation_without_its_base_template(tmp_path: Path) -> None:
    (found,) = _lint(tmp_path, {"other.de.txt": "Hallo\n"})
    assert found.path.endswith("templates/other.de.txt") and found.rule == "template-orphan"


def test_a_translation_is_held_to_the_event_contract_of_its_base(tmp_path: Path) -> None:
    found = _lint(tmp_path, {"t.de.txt": "Hallo {{ event.data.nmae }}\n"})
    assert rules(found) == [("flow.yaml", "error", "contract-undeclared-read")]
    assert "template t.de.txt reads event.data.nmae" in found[0].message
    assert "did you mean 'name'?" in found[0].message
    found = _lint(tmp_path, {"t.de.txt": "Hallo {{ event.data.note }}\n"})
    assert rules(found) == [("flow.yaml", "warning", "contract-optional-read")]


def test_a_fallback_translation_is_held_to_the_contract_too(tmp_path: Path) -> None:
    flow = FLOW.replace(
        "template: t.txt}",
        'template: t.txt}\n    on_failure:\n      - send: {channel: acme.sms, to: "{{ event.data.name }}", template: t.txt}',
    )
    found = _lint(tmp_path, {"t.de.txt": "Hallo {{ event.data.nmae }}\n"}, flow=flow)
    assert [d.rule for d in found] == ["contract-undeclared-read"] * 2  # the send, its fallback
    assert found[1].line == 7  # the fallback's template


def test_a_translation_is_checked_for_variables_and_syntax_like_its_base(tmp_path: Path) -> None:
    found = _lint(tmp_path, {"t.de.txt": "Hallo {{ naem }} {{ locale }}\n"})
    assert [(Path(d.path).name, d.rule) for d in found] == [("t.de.txt", "jinja-undefined-var")]
    assert "variable 'naem' is not available in templates" in found[0].message
    found = _lint(tmp_path, {"t.de.txt": "Hallo {{ event.data.name \n"})
    assert [(Path(d.path).name, d.rule) for d in found] == [("t.de.txt", "jinja-syntax")]


def test_a_tenant_locale_must_be_one_cldr_knows(tmp_path: Path) -> None:
    tenant = "kind: tenant\nname: praxis\nlocale: {}\n"
    assert _lint(tmp_path, {}, tenant=tenant.format("de-AT")) == []
    (found,) = _lint(tmp_path, {}, tenant=tenant.format("deutsch"))
    assert (Path(found.path).name, found.line, found.rule) == ("tenant.yaml", 3, "tenant-locale")
    assert "locale 'deutsch' is not a locale code" in found.message


def test_a_send_locale_written_out_must_be_a_locale(tmp_path: Path) -> None:
    flow = FLOW.replace("template: t.txt}", "template: t.txt, locale: LOCALE}")
    assert (
        _lint(tmp_path, {}, flow=flow.replace("LOCALE", "\"{{ event.data.note | default('') }}\""))
        == []
    )
    (found,) = _lint(tmp_path, {}, flow=flow.replace("LOCALE", "german"))
    assert (Path(found.path).name, found.rule) == ("flow.yaml", "send-locale")


def test_a_whatsapp_template_lists_its_languages_as_cldr_codes(tmp_path: Path) -> None:
    flow = FLOW.replace(
        "template: t.txt}",
        "template: t.txt, whatsapp_template: {name: hello, languages: LANGUAGES}}",
    )
    assert _lint(tmp_path, {}, flow=flow.replace("LANGUAGES", "[en, de, pt_BR]")) == []
    found = _lint(tmp_path, {}, flow=flow.replace("LANGUAGES", "[en, german, pt-BR]"))
    assert [(d.rule, d.message) for d in found] == [
        ("send-locale", "language 'german' is not a locale code CLDR knows (de, en, pt_BR, ...)"),
        ("send-locale", "write the language 'pt-BR' as 'pt_BR', as CLDR and WhatsApp do"),
    ]
    both = flow.replace("languages: LANGUAGES", "language: en, languages: [en]")
    assert [d.rule for d in _lint(tmp_path, {}, flow=both)] == ["schema-value"]


def test_a_subject_comes_inline_or_from_a_file_not_both(tmp_path: Path) -> None:
    flow = FLOW.replace("template: t.txt}", "template: t.txt, subject_template: t.txt}")
    assert _lint(tmp_path, {}, flow=flow) == []
    (found,) = _lint(tmp_path, {}, flow=flow.replace("text: hi,", "subject: hi,"))
    assert (found.rule, found.message) == (
        "send-subject",
        "give subject or subject_template, not both",
    )


# ---- the shipped templates ----

SHIPPED = REPO / "templates"
SHIPPED_LOCALES = ("de",)  # every template is shipped in English (the base) and these


def test_every_shipped_template_has_every_shipped_language() -> None:
    bases = sorted(
        file.relative_to(SHIPPED).as_posix()
        for file in SHIPPED.rglob("*")
        if file.is_file() and split(file.relative_to(SHIPPED).as_posix()) is None
    )
    assert len(bases) >= 10  # sms and email, text and HTML
    missing = [
        variant(base, locale)
        for base in bases
        for locale in SHIPPED_LOCALES
        if locale not in variants(SHIPPED, base)
    ]
    assert missing == [], f"translate these: {missing}"
    assert list(folder_problems(SHIPPED)) == []


@pytest.mark.parametrize("wanted", ["de", "de-AT", "de_CH", "en-GB", "fr", "zh-Hant-TW", "x"])
def test_what_the_worker_may_render_is_what_lint_checked(tmp_path: Path, wanted: str) -> None:
    # "if it lints, it runs": every file resolution picks is among the variants lint checks
    folder = _folder(tmp_path, "a.txt", "a.de.txt", "a.de_CH.txt", "a.zh_Hant.txt", "a.en_GB.txt")
    checked = set(variants(folder, "a.txt").values())
    assert checked == {"a.txt", "a.de.txt", "a.de_CH.txt", "a.zh_Hant.txt", "a.en_GB.txt"}
    for tenant in (None, "de", "fr"):
        assert resolve(folder, "a.txt", preference(wanted, tenant)).name in checked
