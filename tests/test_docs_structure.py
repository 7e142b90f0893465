"""Pages hold prose and includes only, and translations keep the English structure."""

from __future__ import annotations

import re

import pytest
from mkdocs.utils.yaml import yaml_load

from includes import ROOT
from pages import DEFAULT_LANGUAGE, LANGUAGES, fences, headings_without_anchor, pages, prose_lines, structure, termbase

TRANSLATIONS = [lang for lang in LANGUAGES if lang != DEFAULT_LANGUAGE]
ALL_PAGES = [(lang, rel, path) for lang in LANGUAGES for rel, path in pages(lang).items()]
TRANSLATED_PAGES = [(lang, rel, path) for lang, rel, path in ALL_PAGES if lang != DEFAULT_LANGUAGE]


def _id(item):
    return f"{item[0]}/{item[1]}"


def test_every_language_has_pages():
    for lang in LANGUAGES:
        assert pages(lang), f"docs/{lang} has no page"


@pytest.mark.parametrize("page", ALL_PAGES, ids=_id)
def test_no_literal_code(page):
    lang, rel, path = page
    literal = [(f.line + 1, f.literal_lines[0]) for f in fences(path.read_text(encoding="utf-8")) if f.literal_lines]
    assert not literal, f"docs/{lang}/{rel} has code written into the page instead of an include: {literal}"


@pytest.mark.parametrize("page", ALL_PAGES, ids=_id)
def test_every_heading_has_an_explicit_anchor(page):
    lang, rel, path = page
    missing = headings_without_anchor(path.read_text(encoding="utf-8"))
    assert not missing, f"docs/{lang}/{rel}: headings without {{#anchor}}: {missing}"


@pytest.mark.parametrize("page", TRANSLATED_PAGES, ids=_id)
def test_translation_keeps_the_english_structure(page):
    lang, rel, path = page
    english = pages(DEFAULT_LANGUAGE).get(rel)
    assert english is not None, f"docs/{lang}/{rel} has no English source page"
    source = structure(english.read_text(encoding="utf-8"))
    translated = structure(path.read_text(encoding="utf-8"))
    for part in ("includes", "anchors", "links", "admonitions"):
        assert getattr(translated, part) == getattr(source, part), (
            f"docs/{lang}/{rel}: {part} differ from docs/en/{rel} (set or order)"
        )


def _interface_labels(lang: str) -> list[str]:
    """The labels mkdocs.yml gives this language's navigation and admonitions."""
    with open(ROOT / "mkdocs.yml", encoding="utf-8") as f:
        plugins = yaml_load(f)["plugins"]
    i18n = next(p["i18n"] for p in plugins if isinstance(p, dict) and "i18n" in p)
    language = next(entry for entry in i18n["languages"] if entry["locale"] == lang)
    return [*(language.get("nav_translations") or {}).values(), *(language.get("admonition_translations") or {}).values()]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_pages_use_the_terms_of_their_glossary(lang):
    """Each glossary's termbase (its front matter) names the rejected variants of its
    terms; no page, navigation label or admonition title of that language uses one."""
    entries = termbase(lang)
    assert entries, f"docs/{lang}/glossary.md has no termbase in its front matter"
    texts = {f"docs/{lang}/{rel}": prose_lines(path.read_text(encoding="utf-8")) for rel, path in pages(lang).items()}
    texts["mkdocs.yml (navigation and admonition labels)"] = _interface_labels(lang)
    found = [
        f"{where}:{n}: {line.strip()!r} has {pattern!r}, use {entry['use']!r}"
        for where, lines in texts.items()
        for n, line in enumerate(lines, 1)
        for entry in entries
        for pattern in entry["not"]
        if re.search(pattern, line)
    ]
    assert found == []
