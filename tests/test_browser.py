"""What a reader gets, checked in a real browser (Debian's Chromium driven by Playwright)
against the built site served from 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import expect

from includes import ROOT
from pages import DEFAULT_LANGUAGE, LANGUAGES, pages, structure, url_path
from translations import ENGLISH_ONLY

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"  # npm's axe-core, installed by make
# Without the background-networking flags Chromium keeps calling Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps",
]
ENGLISH = sorted(pages(DEFAULT_LANGUAGE))
ANNOTATION = re.compile(r"[ \t]*# \(\d+\)!")


@pytest.fixture(scope="session")
def server(built_site, site_url):
    return site_url.rstrip("/")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it with apt-get")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """A new tab in ``context`` that records what the page loads and what goes wrong.

    ``server`` is the site's root URL: the local server's, or a ``file://`` folder.
    """

    def __init__(self, context, server: str):
        self.server = server
        self.page = context.new_page()
        self.requests, self.failures, self.errors = [], [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("requestfailed", lambda r: self.failures.append(f"{r.url} ({r.failure})"))
        self.page.on("response", lambda r: r.status >= 400 and self.failures.append(f"{r.url} ({r.status})"))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path: str, wait_until: str = "networkidle"):
        self.page.goto(self.server + path, wait_until=wait_until)
        return self.page

    def foreign_requests(self) -> list[str]:
        host = urlsplit(self.server).netloc
        return [u for u in self.requests if urlsplit(u).scheme in ("http", "https") and urlsplit(u).netloc != host]


@pytest.fixture
def reader(browser, server):
    """A fresh browser profile for each test: what one test leaves behind (the palette a
    reader chose stays in the profile's storage) cannot decide how the next one starts."""
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    yield context
    context.close()


@pytest.fixture
def visit(reader, server):
    visit = Visit(reader, server)
    yield visit
    visit.page.close()


def _next_language(lang: str) -> str:
    return LANGUAGES[(LANGUAGES.index(lang) + 1) % len(LANGUAGES)]


def _code_blocks(rel):
    """The snippet files of a page's code blocks, by their titles."""
    text = (ROOT / "docs" / "en" / rel).read_text(encoding="utf-8")
    return re.findall(r'title="(snippets/[^"]+)"', text)


def _lines(code: str) -> list[str]:
    return [line.rstrip() for line in code.rstrip("\n").split("\n")]


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make install` installs axe-core with npm")
    return AXE.read_text(encoding="utf-8")


# The axe-core rules whose outcome depends on colours: the only ones a palette changes.
COLOUR_RULES = ["color-contrast", "link-in-text-block"]


def _axe_violations(page, exclude: list[str], rules: list[str] | None = None) -> list[str]:
    """The axe-core rules (``rules``, or all) the page breaks, with the elements that
    break them; ``exclude``: CSS selectors of parts already checked elsewhere."""
    options = {"resultTypes": ["violations"], **({"runOnly": {"type": "rule", "values": rules}} if rules else {})}
    return page.evaluate(
        """([exclude, options]) => axe.run({include: [["html"]], exclude: exclude.map(s => [s])}, options)
            .then(r => r.violations.map(v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(" ")).join(", ")}`))""",
        [exclude, options],
    )


def _palette_toggle(page):
    return page.locator("form[data-md-component=palette] label:visible").first


def _translation(page, key: str) -> str:
    """One of Material's interface strings, in the page's language."""
    return json.loads(page.locator("#__config").text_content())["translations"][key]


def _check_page(visit, page, lang: str, rel: str, axe_source: str) -> None:
    """Everything about one page as it is shown: its language, each copy button, no
    accessibility defect in either palette, nothing that failed to load."""
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.mouse.wheel(0, 20000)  # scroll to the end: lazy content loads too

    # No accessibility defect that axe-core finds, in the light palette and in the dark one,
    # checked before any copy button is pressed: the confirmation fades out over 400 ms
    # and axe would measure the contrast of its half-transparent text.
    # The API reference is the same English text in every language: its content is
    # checked on the English page, the language's navigation and header on every page.
    page.add_script_tag(content=axe_source)
    exclude = [".md-content"] if rel.startswith(ENGLISH_ONLY) and lang != DEFAULT_LANGUAGE else []
    body = page.locator("body")
    expect(body).to_have_attribute("data-md-color-scheme", "default")  # the reader's system is light
    assert _axe_violations(page, exclude) == [], f"{lang}, light palette"
    _palette_toggle(page).click()
    expect(body).to_have_attribute("data-md-color-scheme", "slate")
    assert _axe_violations(page, exclude, COLOUR_RULES) == [], f"{lang}, dark palette"
    _palette_toggle(page).click()  # the next language opens in the profile's palette
    expect(body).to_have_attribute("data-md-color-scheme", "default")

    copied = page.locator(".md-dialog__inner")
    for i, title in enumerate(_code_blocks(rel)):
        name = title.removeprefix("snippets/")
        block = page.locator(f'div.highlight:has(span.filename a[href$="/{name}"])').first
        page.evaluate("navigator.clipboard.writeText('')")
        block.locator("button[data-clipboard-target]").click()
        # Material confirms a copy in a dialog; the copy itself happens in the click handler.
        expect(copied).to_have_text(_translation(page, "clipboard.copied"))
        # Material drops the code annotation markers from what it copies (it keeps the
        # blanks before them, invisible trailing whitespace, so lines are compared without it).
        expected = ANNOTATION.sub("", (ROOT / title).read_text(encoding="utf-8"))
        assert _lines(page.evaluate("navigator.clipboard.readText()")) == _lines(expected), f"{lang}: block {i} ({title})"

    # Everything the page loaded, the search index and the sitemaps after the load event
    # too, has settled by now (the wait returns at once when it has): nothing failed.
    page.wait_for_load_state("networkidle")
    assert visit.foreign_requests() == [], lang
    assert visit.failures == [], lang
    assert visit.errors == [], lang


@pytest.mark.parametrize("rel", ENGLISH)
def test_page_in_every_language_as_a_reader_uses_it(request, visit, axe_source, rel):
    """One visit per page and language, each language reached through the previous one's
    switcher: every page passes _check_page, and each language's switcher leads to the
    same page and section in the next language. With --language, that language alone."""
    only = request.config.getoption("language")
    languages = [only] if only else list(LANGUAGES)
    anchor = structure((ROOT / "docs" / "en" / rel).read_text(encoding="utf-8")).anchors[-1]
    page = visit.open(f"{url_path(languages[0], rel)}#{anchor}", wait_until="domcontentloaded")
    for lang in languages:
        _check_page(visit, page, lang, rel, axe_source)
        target = _next_language(lang)
        page.locator(".md-header__option .md-select").hover()
        with page.expect_navigation(wait_until="commit"):  # the expectations below wait for the page
            page.locator(f'a.md-select__link[hreflang="{target}"]').click()
        expect(page.locator("html")).to_have_attribute("lang", target)
        assert urlsplit(page.url).path == url_path(target, rel)
        assert urlsplit(page.url).fragment == anchor
        expect(page.locator(":target")).to_have_id(anchor)


def _search(page, query: str) -> list[str]:
    """Type ``query`` in the search box as a reader would; the result links."""
    placeholder = _translation(page, "search.result.placeholder")
    page.locator("input.md-search__input").focus()
    # Ready when the worker has loaded the index and the prompt to type shows.
    page.wait_for_function("t => document.querySelector('.md-search-result__meta').textContent.trim() === t", arg=placeholder)
    # As an input method commits Chinese or Japanese text: the text arrives at once, then a key.
    page.keyboard.insert_text(query)
    page.keyboard.press("End")
    results = page.locator(".md-search-result__item a")
    results.first.wait_for(timeout=15000)
    return results.evaluate_all("els => els.map(e => e.href)")


# A query a reader would type in each language, and the page it must reach.
SEARCHES = [
    ("en", "top-p", "guides/generate.md"),
    ("en", "spaCy", "guides/spacy.md"),
    ("es", "muestreo", "guides/generate.md"),
    ("es", "lematización", "guides/spacy.md"),
    ("zh", "采样", "guides/generate.md"),
    ("zh", "依存句法分析", "guides/spacy.md"),
    ("ja", "デバイス", "guides/device.md"),
    ("ja", "固有表現認識", "guides/spacy.md"),
    ("ja", "単語ベクトル", "guides/spacy.md"),  # compounds of kanji and katakana
    ("ja", "トークン化", "guides/spacy.md"),
    ("fr", "taux d'apprentissage", "guides/sgd.md"),
    ("fr", "périphérique", "guides/device.md"),
]


@pytest.mark.parametrize("lang,query,expected", SEARCHES)
def test_search_finds_the_page_in_the_readers_language_only(visit, lang, query, expected):
    page = visit.open(url_path(lang, "index.md"))
    hrefs = [urlsplit(h).path for h in _search(page, query)]
    prefix = url_path(lang, "index.md")
    others = [f"/{other}/" for other in LANGUAGES if other != DEFAULT_LANGUAGE and other != lang]
    assert all(h.startswith(prefix) and not h.startswith(tuple(others)) for h in hrefs), hrefs
    assert url_path(lang, expected) in hrefs
    assert visit.errors == [] and visit.foreign_requests() == []


NOT_FOUND = {"en": "404 - Not found", "es": "página no encontrada", "zh": "页面不存在", "ja": "ページが見つかりません", "fr": "page introuvable"}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_language_has_its_404_page(visit, lang):
    page = visit.open(f"/{'' if lang == DEFAULT_LANGUAGE else lang + '/'}404.html")
    assert page.locator("html").get_attribute("lang") == lang
    assert NOT_FOUND[lang] in page.locator("article h1").inner_text()
    assert visit.foreign_requests() == [] and visit.failures == [] and visit.errors == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_keyboard_reaches_skip_link_language_menu_and_search(visit, lang):
    """Tab from the top of a home page: the skip link comes first and shows itself,
    then the language menu and the search field are reached, each visibly focused."""
    page = visit.open(url_path(lang, "index.md"), wait_until="load")
    page.keyboard.press("Tab")
    skip = page.locator("a.md-skip")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    reached = set()
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.add(page.evaluate(
            """() => {
                const e = document.activeElement;
                const style = getComputedStyle(e);
                const visible = style.outlineStyle !== "none" || style.boxShadow !== "none";
                if (e.matches(".md-select button, .md-select > .md-header__button")) return visible ? "language" : "language (no focus mark)";
                if (e.matches("input.md-search__input")) return visible ? "search" : "search (no focus mark)";
                return "other";
            }"""
        ))
    assert {"language", "search"} <= reached, reached


@pytest.fixture
def offline_visit(reader, offline_site):
    visit = Visit(reader, offline_site.as_uri())
    yield visit
    visit.page.close()


@pytest.mark.parametrize("lang,query,expected", SEARCHES)
def test_offline_copy_works_from_disk_with_search(offline_visit, offline_site, lang, query, expected):
    # Offline, URLs are files: guides/spacy.md is guides/spacy.html.
    prefix = "" if lang == DEFAULT_LANGUAGE else f"{lang}/"
    page = offline_visit.open(f"/{prefix}index.html", wait_until="load")
    expected_file = (offline_site / prefix / expected.removesuffix(".md")).as_posix() + ".html"
    hrefs = [unquote(urlsplit(h).path) for h in _search(page, query)]
    assert expected_file in hrefs, hrefs
    page.goto(Path(expected_file).as_uri(), wait_until="load")
    assert page.locator("html").get_attribute("lang") == lang
    assert [u for u in offline_visit.requests if not u.startswith(("file://", "data:", "blob:", "about:"))] == []
    assert offline_visit.errors == [] and offline_visit.failures == []
