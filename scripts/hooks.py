"""MkDocs hooks of the llama-notes site (listed under ``hooks:`` in mkdocs.yml)."""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

import jupytext
import nbformat
from jinja2 import FileSystemBytecodeCache

from charts import bar_chart, quality_table
from includes import ROOT, expand_includes
from notebooks import with_outputs
from pages import DEFAULT_LANGUAGE, notebook_for_jupytext
from reader import (
    language_alternates,
    language_sitemaps,
    language_url,
    mark_switcher,
    page_language,
    page_rel,
    search_in_own_language,
    split_search_index,
    to_language_root,
    to_site_root,
)
from translations import BANNERS, CURRENT, ENGLISH_ONLY, MISSING, READ_ENGLISH, status

_notebook_dir = tempfile.TemporaryDirectory(prefix="llama-notes-notebooks-")

# A code block's title is the file it comes from (CONTRIBUTING.md). Linked, it takes the
# reader to that file: package source to its API reference entry, a snippet to the script.
FILENAME = re.compile(r'<span class="filename">(?P<path>(?P<root>snippets|src|benchmarks/results)/(?P<name>[^<]+))</span>')
# Files published once, at the root of the whole site, for those links.
PUBLISHED = {"snippets": "assets/snippets", "benchmarks/results": "assets/benchmarks"}
# A code block showing a benchmark's results, followed by its chart.
RESULTS_BLOCK = re.compile(
    r'(<div class="highlight"><span class="filename"><a [^>]*>benchmarks/results/(?P<name>[\w-]+)\.json</a></span>.*?</div>)', re.S
)
NOT_FOUND = {
    "es": '<h1>404: página no encontrada</h1><p><a href="{home}es/">Volver al inicio</a></p>',
    "zh": '<h1>404：页面不存在</h1><p><a href="{home}zh/">返回首页</a></p>',
    "ja": '<h1>404：ページが見つかりません</h1><p><a href="{home}ja/">ホームに戻る</a></p>',
    "fr": '<h1>404 : page introuvable</h1><p><a href="{home}fr/">Retour à l’accueil</a></p>',
}


# Loggers that fill a build log with routine at INFO level: a notebook conversion, each
# language's set-up, jieba loading its dictionary. The log keeps MkDocs' own lines and problems.
ROUTINE_LOGGERS = ("mkdocs.plugins.mkdocs_jupyter", "mkdocs.mkdocs-jupyter", "mkdocs.plugins.mkdocs_static_i18n", "jieba")


@event_priority(-90)  # before static-i18n's on_config (-100) picks the language it builds
def on_config(config):
    for name in ROUTINE_LOGGERS:  # here, not at import: jieba sets its own level when imported
        logging.getLogger(name).setLevel(logging.WARNING)
    only = config.extra.get("only_language")
    i18n = config.plugins.get("i18n")
    if only and i18n.current_language is None:  # the first build of this configuration
        build_only(i18n, only)


def build_only(i18n, lang: str) -> None:
    """Build one language, into its usual folder (``/es/``), English pages filling its gaps.

    static-i18n's own ``build_only_locale`` makes that language the default one, so
    its missing pages (the English-only reference) have nothing to fall back on.
    Here English stays the default: it is just not built.
    """
    locales = [language.locale for language in i18n.config.languages]
    if lang not in locales:
        raise PluginError(f"LLAMA_NOTES_LANGUAGE={lang!r} is not a language of the site: {', '.join(locales)}")
    for language in i18n.config.languages:
        language.build = language.locale == lang
    i18n.current_language = lang


@event_priority(-150)  # after static-i18n (-100), which recreates every File from its source path
def on_files(files, config):
    """Expand and execute the notebook pages, and publish the snippets for the title links.

    mkdocs-jupyter reads the page file itself (through jupytext), so the ``--8<--``
    lines in its code cells never reach pymdownx.snippets. Each notebook page is
    expanded with the same snippet settings, given the outputs of its code cells
    (``scripts/notebooks.py`` executes them, or takes them from its cache) and written
    as an ``.ipynb`` file that the plugin renders instead.
    """
    settings = config.mdx_configs["pymdownx.snippets"]
    for file in files:
        if _is_notebook(file):
            text = notebook_for_jupytext(expand_includes(file.content_string, settings), config.use_directory_urls)
            nb = jupytext.reads(text, fmt="md")
            for i, cell in enumerate(nb.cells):  # jupytext's ids are random, and nbconvert writes them into the page
                cell.id = str(i)
            if config.extra["notebooks"]["execute"]:
                nb, _ = with_outputs(nb, Path(file.src_uri).stem)
            rendered = (Path(_notebook_dir.name) / file.src_uri).with_suffix(".ipynb")
            rendered.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, rendered)
            file.abs_src_path = str(rendered)
    for source, published in PUBLISHED.items():
        for path in sorted((ROOT / source).iterdir()):
            if path.is_file():
                files.append(File.generated(config, f"{published}/{path.name}", abs_src_path=str(path)))
    return files


def _is_notebook(file) -> bool:
    return file.src_uri.endswith(".md") and "/notebooks/" in f"/{file.src_uri}"


def _source_link(match: re.Match, page) -> str:
    if match["root"] == "src":
        module = match["name"].removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        href = f"{to_language_root(page)}reference/#{module}"
    else:
        href = f"{to_site_root(page)}{PUBLISHED[match['root']]}/{match['name']}"
    return f'<span class="filename"><a href="{href}">{match["path"]}</a></span>'


def _translation_banner(page, config) -> str:
    """A warning on a missing or stale translation, in the reader's language, linking to English."""
    lang, rel = page_language(page), page_rel(page)
    if lang == DEFAULT_LANGUAGE or rel.startswith(ENGLISH_ONLY):
        return ""
    state = MISSING if page.file.locale != lang else status(Path(config.docs_dir), lang, rel)
    if state == CURRENT:
        return ""
    english_url = to_site_root(page) + language_url(page, DEFAULT_LANGUAGE)
    return (
        f'<div class="admonition warning translation-{state}" data-translation="{state}">'
        f'<p class="admonition-title">{BANNERS[state][lang]}</p>'
        f'<p><a href="{english_url}" hreflang="en">{READ_ENGLISH[lang]}</a></p></div>'
    )


def _with_chart(match: re.Match) -> str:
    results = json.loads((ROOT / "benchmarks" / "results" / f"{match['name']}.json").read_text(encoding="utf-8"))
    return match[1] + bar_chart(results, match["name"]) + quality_table(results)


NOTEBOOK_ANCHOR = re.compile(r'<h[1-6][^>]*>.*?<a id="(?P<id>[\w-]+)"></a>', re.S)


def _notebook_toc(html: str, page) -> None:
    """Point a notebook page's table of contents at the explicit anchors of its headings.

    mkdocs-jupyter slugifies heading text for the contents, which gives CJK headings
    ids like ``_1`` that exist nowhere on the page.
    """
    def flat(items):
        for item in items:
            yield item
            yield from flat(item.children)

    items, ids = list(flat(page.toc)), [m["id"] for m in NOTEBOOK_ANCHOR.finditer(html)]
    if len(items) == len(ids):
        for item, anchor in zip(items, ids):
            item.id = anchor


# A notebook's code cells and outputs scroll sideways: a keyboard reader must be able to
# focus them to scroll (Material does the same for its own code blocks).
NOTEBOOK_SCROLLER = re.compile(r'<div class="(?P<cls>[^"]*\b(?:highlight-ipynb|jp-OutputArea-output)\b[^"]*)"')


def on_page_content(html, page, config, files):
    if _is_notebook(page.file):
        _notebook_toc(html, page)
        html = NOTEBOOK_SCROLLER.sub(r'<div class="\g<cls>" tabindex="0"', html)
    html = FILENAME.sub(lambda m: _source_link(m, page), html)
    html = RESULTS_BLOCK.sub(_with_chart, html)
    return _translation_banner(page, config) + html


TITLE = re.compile(r"<title>.*?</title>")


def on_post_page(output, page, config):
    if page_rel(page) == "index.md":  # every language's home is titled like the site's root: its name alone
        output = TITLE.sub(lambda m: f"<title>{config.site_name}</title>", output, count=1)
    output = search_in_own_language(output, page)
    output = language_alternates(output, config.site_url)
    return mark_switcher(output, page, Path(config.docs_dir))


@event_priority(-200)  # after static-i18n (-100) has built every language and merged their indexes
def on_post_build(config):
    i18n = config.plugins.get("i18n")
    if i18n is not None and i18n.building:
        return  # a nested build of one language; the outer build splits the final index
    split_search_index(Path(config.site_dir))
    language_sitemaps(Path(config.site_dir))


def on_env(env, config, files):
    """Keep Material's templates compiled between builds.

    Every language's build makes a new Jinja environment, which compiled the same hundred
    templates again: about a second of each build, and of each reload under
    ``mkdocs serve``. Jinja's bytecode cache keys each entry on the template's source.
    """
    env.bytecode_cache = FileSystemBytecodeCache(str(_jinja_cache()))
    return env


def _jinja_cache() -> Path:
    path = ROOT / ".cache" / "jinja"
    path.mkdir(parents=True, exist_ok=True)
    return path


def on_post_template(output, template_name, config):
    """Give every language its own 404 page.

    static-i18n builds each language into the same ``site_dir``, so each build's
    404.html would overwrite the previous one (the root 404 page ended up French).
    """
    lang = config.theme["language"]  # static-i18n sets it for each language's build
    if template_name != "404.html":
        return output
    output = language_alternates(output, config.site_url)
    if lang == DEFAULT_LANGUAGE:
        return output
    target = Path(config.site_dir) / lang / "404.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Material's 404 template has its heading in English only.
    home = urlsplit(config.site_url or "/").path  # a 404 page is served at any depth: absolute link
    heading = NOT_FOUND[lang].format(home=home if home.endswith("/") else f"{home}/")
    target.write_text(output.replace("<h1>404 - Not found</h1>", heading, 1), encoding="utf-8")
    return ""  # MkDocs skips writing an empty template: the default language keeps /404.html
