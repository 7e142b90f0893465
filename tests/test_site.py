"""The strict build publishes every page in every language, and the language
switcher of each page leads to the same page in the other languages."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest

from pages import DEFAULT_LANGUAGE, LANGUAGES, pages


def _url_dir(rel: str) -> str:
    # MkDocs' directory URLs: guides/sgd.md -> guides/sgd/, index.md -> ''.
    stem = rel[: -len(".md")]
    return "" if stem == "index" else stem.removesuffix("/index") + "/"


def _html(site, lang, rel):
    prefix = "" if lang == DEFAULT_LANGUAGE else f"{lang}/"
    return (site / prefix / _url_dir(rel) / "index.html").read_text(encoding="utf-8")


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
    here = f"/{'' if lang == DEFAULT_LANGUAGE else lang + '/'}{_url_dir(rel)}"
    for other, href in links.items():
        prefix = "" if other == DEFAULT_LANGUAGE else f"{other}/"
        assert urljoin(here, href) == f"/{prefix}{_url_dir(rel)}", f"the {other} switcher link of {here} is {href}"
