"""The strict build publishes every page in every language, and the language
switcher of each page leads to the same page in the other languages."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from urllib.parse import urljoin

import pytest

from includes import ROOT
from linkcheck import broken_links
from pages import DEFAULT_LANGUAGE, LANGUAGES, pages, url_path
from sitebuild import page_weight_kb


def _html(site, lang, rel):
    return (site / url_path(lang, rel).lstrip("/") / "index.html").read_text(encoding="utf-8")


ENGLISH_PAGES = sorted(pages(DEFAULT_LANGUAGE))


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("rel", ENGLISH_PAGES)
def test_page_is_published_in_every_language(built_site, lang, rel):
    html = _html(built_site, lang, rel)
    assert f'<html lang="{lang}"' in html


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("rel", ENGLISH_PAGES)
def test_switcher_leads_to_the_same_page(built_site, lang, rel):
    html = _html(built_site, lang, rel)
    links = dict(
        (m["lang"], m["href"])
        for m in re.finditer(r'<a href="(?P<href>[^"]*)" hreflang="(?P<lang>[a-z]{2})" class="md-select__link"', html)
    )
    assert sorted(links) == sorted(LANGUAGES)
    here = url_path(lang, rel)
    for other, href in links.items():
        assert urljoin(here, href) == url_path(other, rel), f"the {other} switcher link of {here} is {href}"


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("rel", ENGLISH_PAGES)
def test_hreflang_alternates_are_absolute_with_x_default(built_site, site_url, lang, rel):
    alternates = dict(
        (m["lang"], m["href"])
        for m in re.finditer(r'<link rel="alternate" href="(?P<href>[^"]*)" hreflang="(?P<lang>[a-z-]+)">', _html(built_site, lang, rel))
    )
    assert alternates == {
        **{other: f"{site_url}{'' if other == DEFAULT_LANGUAGE else other + '/'}" for other in LANGUAGES},
        "x-default": site_url,
    }


def test_sitemap_lists_every_page_with_its_alternates(built_site, site_url):
    sitemap = (built_site / "sitemap.xml").read_text(encoding="utf-8")
    for rel in ENGLISH_PAGES:
        for lang in LANGUAGES:
            url = f"{site_url}{url_path(lang, rel).lstrip('/')}"
            assert f'hreflang="{lang}" href="{url}"' in sitemap
        assert f'hreflang="x-default" href="{site_url}{url_path(DEFAULT_LANGUAGE, rel).lstrip("/")}"' in sitemap
    for lang in LANGUAGES[1:]:  # Material looks for a sitemap at each language's root
        assert (built_site / lang / "sitemap.xml").read_text(encoding="utf-8") == sitemap


def test_no_broken_link_or_anchor_anywhere(built_site):
    assert broken_links(built_site) == []


def test_every_guide_page_weighs_under_a_megabyte_with_its_css_and_javascript(built_site):
    guides = [p for p in built_site.rglob("*.html") if "/guides/" in p.as_posix()]
    assert guides
    heavy = {p.relative_to(built_site).as_posix(): kb for p in guides if (kb := page_weight_kb(p)) >= 1024}
    assert heavy == {}


NOTEBOOK_OUTPUT = re.compile(r'<div class="[^"]*\bjp-OutputArea-output\b[^"]*"(?P<attrs>[^>]*)>(?P<text>.*?)</div>', re.S)


def test_no_page_shows_the_build_machine_or_a_warning(built_site):
    """Pages carry nothing of the machine that built them (its checkout path), and the
    notebooks' outputs hold results, not warnings; every notebook page has outputs."""
    # The checkout, the site folder, and the temporary folder where the build runs notebooks.
    build_paths = {str(ROOT), str(built_site), tempfile.gettempdir() + "/", f"{Path.home()}/"}
    leaks = [
        p.relative_to(built_site).as_posix()
        for p in built_site.rglob("*.html")
        if any(path in p.read_text(encoding="utf-8") for path in build_paths)
    ]
    assert leaks == []
    for lang in LANGUAGES:
        for rel in ENGLISH_PAGES:
            if rel.startswith("notebooks/"):
                outputs = list(NOTEBOOK_OUTPUT.finditer(_html(built_site, lang, rel)))
                assert outputs, f"{url_path(lang, rel)} has no output"
                noise = [o[0] for o in outputs if "Warning" in o["text"] or "stderr" in o["attrs"]]
                assert noise == [], url_path(lang, rel)


CELL_ID = re.compile(r'id="cell-id=([^"]*)"')


def test_notebook_cells_are_numbered_not_random(built_site):
    """The ids that nbconvert writes into a notebook page are the cells' positions (jupytext
    draws random ones), so a page builds to the same HTML every time."""
    for lang in LANGUAGES:
        for rel in ENGLISH_PAGES:
            if rel.startswith("notebooks/"):
                ids = CELL_ID.findall(_html(built_site, lang, rel))
                assert ids and ids == [str(i) for i in range(len(ids))], url_path(lang, rel)


PRIMARY_NAV = re.compile(r'<nav class="md-nav md-nav--primary".*?<ul class="md-nav__list"(?P<list>.*?)</nav>', re.S)
LINK_LABEL = re.compile(r'class="md-nav__link[^"]*"[^>]*>\s*<span class="md-ellipsis">\s*(?P<label>[^<]*?)\s*</span>')


@pytest.mark.parametrize("lang", LANGUAGES)
def test_one_title_scheme_and_no_repeated_site_name_in_the_sidebar(built_site, lang):
    """Every language's home is titled by the site's name alone, as the root is; every
    other page "<page> - llama-notes"; the sidebar names the site once, as its title."""
    for rel in ENGLISH_PAGES:
        title = re.search(r"<title>(.*?)</title>", _html(built_site, lang, rel))[1]
        if rel == "index.md":
            assert title == "llama-notes", url_path(lang, rel)
        else:
            assert title.endswith(" - llama-notes") and not title.startswith("llama-notes"), (url_path(lang, rel), title)
    nav = PRIMARY_NAV.search(_html(built_site, lang, "guides/sgd.md"))["list"]
    assert "llama-notes" not in [m["label"] for m in LINK_LABEL.finditer(nav)]
