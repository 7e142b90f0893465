"""MkDocs hooks of the llama-notes site (listed under ``hooks:`` in mkdocs.yml)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mkdocs.plugins import event_priority

from includes import expand_includes
from pages import DEFAULT_LANGUAGE
from translations import BANNERS, CURRENT, ENGLISH_ONLY, MISSING, READ_ENGLISH, status

_notebook_dir = tempfile.TemporaryDirectory(prefix="llama-notes-notebooks-")


@event_priority(100)  # before mkdocs-jupyter wraps the notebook files and i18n sorts them
def on_files(files, config):
    """Give mkdocs-jupyter notebook pages whose includes are already expanded.

    mkdocs-jupyter reads the page file itself (through jupytext), so the
    ``--8<--`` lines in its code cells never reach pymdownx.snippets. Each
    notebook page is expanded with the same snippet settings into a temporary
    file that the plugin executes and renders instead.
    """
    settings = config.mdx_configs["pymdownx.snippets"]
    for file in files:
        if file.src_uri.endswith(".md") and "/notebooks/" in f"/{file.src_uri}":
            expanded = Path(_notebook_dir.name) / file.src_uri
            expanded.parent.mkdir(parents=True, exist_ok=True)
            expanded.write_text(expand_includes(file.content_string, settings), encoding="utf-8")
            file.abs_src_path = str(expanded)
    return files


def on_page_content(html, page, config, files):
    """Warn readers of a missing or stale translation, in their language, with a link to English."""
    lang, source_lang = getattr(page.file, "locale_alternate_of", None), getattr(page.file, "locale", None)
    if lang is None or lang == DEFAULT_LANGUAGE:
        return html
    rel = page.file.src_uri.removeprefix(f"{source_lang}/")
    if rel.startswith(ENGLISH_ONLY):
        return html
    state = MISSING if source_lang != lang else status(Path(config.docs_dir), lang, rel)
    if state == CURRENT:
        return html
    english_url = "../" * page.url.count("/") + page.url.removeprefix(f"{lang}/")
    banner = (
        f'<div class="admonition warning translation-{state}" data-translation="{state}">'
        f'<p class="admonition-title">{BANNERS[state][lang]}</p>'
        f'<p><a href="{english_url}" hreflang="en">{READ_ENGLISH[lang]}</a></p></div>'
    )
    return banner + html
