"""The strict build publishes every page in every language, and the language
switcher of each page leads to the same page in the other languages."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest

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
