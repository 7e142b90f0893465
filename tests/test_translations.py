"""Translations cannot drift: stale and missing pages are found, and readers are told."""

from __future__ import annotations

import textwrap

from sitebuild import build_site
from includes import ROOT
from translations import MISSING, STALE, english_pages, report, source_hash


def test_no_translation_is_missing_or_stale_on_main():
    todo = report(ROOT / "docs")
    assert todo == {lang: {MISSING: [], STALE: []} for lang in todo}, "run `make translations`"


def _fixture_project(tmp_path):
    """A two-language site with one current, one stale and one missing translation."""
    docs = tmp_path / "docs"
    english = {
        "index.md": "# Home {#home}\n\nWelcome.\n",
        "stale.md": "# Stale {#stale}\n\nThe English page changed after it was translated.\n",
        "missing.md": "# Missing {#missing}\n\nNobody translated this page.\n",
    }
    for rel, text in english.items():
        (docs / "en").mkdir(parents=True, exist_ok=True)
        (docs / "en" / rel).write_text(text, encoding="utf-8")
    (docs / "es").mkdir()
    (docs / "es" / "index.md").write_text(
        f"---\nsource_hash: {source_hash(english['index.md'])}\n---\n# Inicio {{#home}}\n\nBienvenida.\n", encoding="utf-8"
    )
    (docs / "es" / "stale.md").write_text(
        f"---\nsource_hash: {source_hash('an older English page')}\n---\n# Antigua {{#stale}}\n", encoding="utf-8"
    )
    config = textwrap.dedent(
        f"""\
        site_name: fixture
        site_url: http://127.0.0.1:8000/
        docs_dir: docs
        theme: {{name: material}}
        hooks: [{ROOT / "scripts" / "hooks.py"}]
        plugins:
          - i18n:
              docs_structure: folder
              languages:
                - {{locale: en, name: English, default: true}}
                - {{locale: es, name: Español}}
        markdown_extensions:
          - pymdownx.snippets: {{base_path: [{ROOT / "snippets"}], check_paths: true}}
        """
    )
    (tmp_path / "mkdocs.yml").write_text(config, encoding="utf-8")
    return docs


def test_report_finds_the_stale_and_the_missing_page(tmp_path):
    docs = _fixture_project(tmp_path)
    assert english_pages(docs) == ["index.md", "missing.md", "stale.md"]
    assert report(docs)["es"] == {MISSING: ["missing.md"], STALE: ["stale.md"]}


def test_build_shows_a_banner_on_stale_and_missing_pages_only(tmp_path):
    docs = _fixture_project(tmp_path)
    result = build_site(tmp_path / "site", "--config-file", str(tmp_path / "mkdocs.yml"))
    assert result.returncode == 0, result.stderr[-3000:]
    site = tmp_path / "site"
    stale = (site / "es" / "stale" / "index.html").read_text(encoding="utf-8")
    missing = (site / "es" / "missing" / "index.html").read_text(encoding="utf-8")
    current = (site / "es" / "index.html").read_text(encoding="utf-8")
    english = (site / "stale" / "index.html").read_text(encoding="utf-8")
    assert 'data-translation="stale"' in stale and "Esta traducción es anterior" in stale
    assert 'href="../../stale/"' in stale  # the English page
    assert 'data-translation="missing"' in missing and "Esta página aún no está traducida" in missing
    assert "Nobody translated this page." in missing  # the English text is shown as the fallback
    assert "translation-stale" not in current and "translation-missing" not in current
    assert "translation-stale" not in english  # English pages carry no banner...
    # ...but their language switcher marks the languages in which they are stale or missing.
    assert 'hreflang="es" class="md-select__link" data-translation="stale">' in english
    assert "(desactualizada)" in english
    assert 'data-translation="missing">' in (site / "missing" / "index.html").read_text(encoding="utf-8")
    assert "data-translation" not in current
