"""Crawl a built site and report every broken internal link or anchor.

Every ``href``/``src`` of every HTML page that stays on the site must resolve to a
file, and its ``#fragment`` to an element ``id`` (or ``name``) of the target page.
Run as a script: ``python scripts/linkcheck.py site``.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

PAGE_URL = "http://site.invalid/"  # a base to resolve relative links against


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag in ("a", "div", "span", "section") else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "link" and attrs.get("rel") in ("alternate", "canonical"):
            return  # absolute URLs of the deployed site, checked by the hreflang tests
        for key in ("href", "src"):
            if attrs.get(key):
                self.links.append(attrs[key])


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _target_file(site: Path, url_path: str) -> Path | None:
    candidate = site / unquote(url_path).lstrip("/")
    if candidate.is_dir():
        candidate = candidate / "index.html"
    return candidate if candidate.is_file() else None


def broken_links(site: Path) -> list[str]:
    """``"page -> link (reason)"`` for every broken internal link of the site."""
    parsed: dict[Path, _Page] = {}

    def page(path: Path) -> _Page:
        if path not in parsed:
            parsed[path] = _parse(path)
        return parsed[path]

    problems = []
    for html in sorted(site.rglob("*.html")):
        here = urljoin(PAGE_URL, html.relative_to(site).as_posix())
        for link in page(html).links:
            url = urlsplit(urljoin(here, link))
            if f"{url.scheme}://{url.netloc}/" != PAGE_URL:
                continue  # another host: the browser tests make sure none is loaded
            target = _target_file(site, url.path)
            if target is None:
                problems.append(f"{html.relative_to(site)} -> {link} (no such file)")
            elif url.fragment and target.suffix == ".html" and unquote(url.fragment) not in page(target).ids:
                problems.append(f"{html.relative_to(site)} -> {link} (no such anchor)")
    return problems


def main(argv: list[str]) -> int:
    site = Path(argv[1] if len(argv) > 1 else "site")
    problems = broken_links(site)
    print("\n".join(problems) or f"no broken links in {site}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
