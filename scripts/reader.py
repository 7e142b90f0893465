"""What the reader's browser gets beyond what Material and static-i18n do by themselves.

- search in the reader's language only: static-i18n merges every language into one
  index; each language gets its own index, and its pages search it;
- absolute ``hreflang`` alternates plus ``x-default``;
- the language switcher marks languages in which this page is missing or stale.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from pages import DEFAULT_LANGUAGE, LANGUAGES
from translations import CURRENT, ENGLISH_ONLY, MISSING, STALE, status

SWITCHER_MARK = {  # in the target language: the reader choosing it reads that language
    MISSING: {"es": "sin traducir", "zh": "未翻译", "ja": "未翻訳", "fr": "non traduit"},
    STALE: {"es": "desactualizada", "zh": "译文过时", "ja": "翻訳が古い", "fr": "traduction ancienne"},
}
CONFIG_BASE = re.compile(r'("base": ")[^"]*(")')
ALTERNATE = re.compile(r'<link rel="alternate" href="[^"]*" hreflang="(?P<lang>[a-z]{2})">')
SWITCHER_LINK = re.compile(r'(<a href="[^"]*" hreflang="(?P<lang>[a-z]{2})" class="md-select__link")>(?P<name>[^<]*)</a>')


def page_language(page) -> str:
    return getattr(page.file, "locale_alternate_of", DEFAULT_LANGUAGE)


def page_rel(page) -> str:
    """The page's path inside its language folder, as in docs/<lang>/."""
    return page.file.src_uri.removeprefix(f"{getattr(page.file, 'locale', DEFAULT_LANGUAGE)}/")


def language_url(page, lang: str) -> str:
    """The page's URL path in ``lang``, relative to the site root."""
    lang_root = "" if lang == DEFAULT_LANGUAGE else f"{lang}/"
    own = page_language(page)
    return lang_root + (page.url if own == DEFAULT_LANGUAGE else page.url.removeprefix(f"{own}/"))


def to_site_root(page) -> str:
    """The relative path from ``page`` to the root of the whole site."""
    return "../" * page.url.count("/")


def to_language_root(page) -> str:
    """The relative path from ``page`` to the root of its language's site (``/es/``, ...)."""
    return "../" * (page.url.count("/") - (0 if page_language(page) == DEFAULT_LANGUAGE else 1))


def search_in_own_language(html: str, page) -> str:
    """Point Material's ``base`` (used to fetch the search index) at the language's root."""
    if page_language(page) == DEFAULT_LANGUAGE:
        return html
    base = to_language_root(page).rstrip("/") or "."
    return CONFIG_BASE.sub(lambda m: f"{m[1]}{base}{m[2]}", html, count=1)


def split_search_index(site_dir: Path) -> None:
    """Give every language its own search index, with locations relative to its root."""
    index_path = site_dir / "search" / "search_index.json"
    if not index_path.exists():  # a site built without the search plugin
        return
    merged = json.loads(index_path.read_text(encoding="utf-8"))
    for lang in LANGUAGES:
        prefix = "" if lang == DEFAULT_LANGUAGE else f"{lang}/"
        if not (site_dir / prefix).is_dir():
            continue  # a site built without this language
        others = tuple(f"{other}/" for other in LANGUAGES if other != DEFAULT_LANGUAGE)
        if lang == DEFAULT_LANGUAGE:
            docs = [d for d in merged["docs"] if not d["location"].startswith(others)]
        else:
            docs = [{**d, "location": d["location"][len(prefix):]} for d in merged["docs"] if d["location"].startswith(prefix)]
        target = site_dir / prefix / "search" / "search_index.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        if lang == "ja":
            # Material segments every ideograph run with jieba, a Chinese word list; for
            # Japanese, lunr's own segmenter (TinySegmenter) must cut the text as it cuts queries.
            docs = [{**d, "title": d["title"].replace("\u200b", ""), "text": d["text"].replace("\u200b", "")} for d in docs]
        # One language's stemmer and trimmer: with all five, lunr's combined trimmer
        # strips Chinese queries down to nothing.
        config = {**merged["config"], "lang": [lang]}
        data = json.dumps({**merged, "config": config, "docs": docs}, ensure_ascii=False)
        target.write_text(data, encoding="utf-8")
        if (site_dir / "search" / "search_index.js").exists():  # the offline plugin's copy for file://
            target.with_suffix(".js").write_text(f"var __index = {data}", encoding="utf-8")


def language_alternates(html: str, site_url: str | None) -> str:
    """Head ``hreflang`` alternates: each language's root, absolute, plus ``x-default``.

    Material's JavaScript reads these links as language roots: it fetches
    ``<href>/sitemap.xml`` from each one to map the current page into the other
    language. static-i18n writes page URLs there, which sends every page to five
    missing sitemaps (console errors). Page-to-page alternates are in the sitemap,
    where static-i18n lists every page with its five translations. A site without a
    URL (the offline copy, read from disk) gets none: nothing to index, nothing to fetch.
    """
    if not site_url:
        return ALTERNATE.sub("", html)
    base = site_url.rstrip("/") + "/"

    def link(lang: str, hreflang: str) -> str:
        root = "" if lang == DEFAULT_LANGUAGE else f"{lang}/"
        return f'<link rel="alternate" href="{base}{root}" hreflang="{hreflang}">'

    html = ALTERNATE.sub(lambda m: link(m["lang"], m["lang"]), html)
    last = list(ALTERNATE.finditer(html))
    if last:
        end = last[-1].end()
        html = html[:end] + link(DEFAULT_LANGUAGE, "x-default") + html[end:]
    return html


def language_sitemaps(site_dir: Path) -> None:
    """Add ``x-default`` to the sitemap and give each language root a copy, where Material looks."""
    sitemap = site_dir / "sitemap.xml"
    if not sitemap.exists():
        return
    text = re.sub(
        rf'(<xhtml:link rel="alternate" hreflang="{DEFAULT_LANGUAGE}" href="(?P<href>[^"]*)"/>)',
        lambda m: f'{m[1]}\n        <xhtml:link rel="alternate" hreflang="x-default" href="{m["href"]}"/>',
        sitemap.read_text(encoding="utf-8"),
    )
    sitemap.write_text(text, encoding="utf-8")
    if (site_dir / "sitemap.xml.gz").exists():
        (site_dir / "sitemap.xml.gz").write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
    for lang in LANGUAGES:
        if lang != DEFAULT_LANGUAGE and (site_dir / lang).is_dir():
            (site_dir / lang / "sitemap.xml").write_text(text, encoding="utf-8")


def mark_switcher(html: str, page, docs: Path) -> str:
    """Mark, in the switcher, the languages in which this page is missing or stale."""
    rel = page_rel(page)

    def mark(m: re.Match) -> str:
        lang = m["lang"]
        if lang == DEFAULT_LANGUAGE or rel.startswith(ENGLISH_ONLY):
            return m[0]
        state = status(docs, lang, rel)
        if state == CURRENT:
            return m[0]
        return f'{m[1]} data-translation="{state}">{m["name"]} ({SWITCHER_MARK[state][lang]})</a>'

    return SWITCHER_LINK.sub(mark, html)
