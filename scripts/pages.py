"""Read pages the way MkDocs renders them: fences (also inside admonitions and
content tabs, as pymdownx.superfences allows), includes, anchors, links, admonitions.

The doc tests, the translation checks and ``make translations`` all read pages
through this module, so they agree on what a page contains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mkdocs.utils.yaml import yaml_load

from includes import ROOT, include_target

DOCS = ROOT / "docs"
LANGUAGES = ("en", "es", "zh", "ja", "fr")
DEFAULT_LANGUAGE = "en"

FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
HEADING = re.compile(r"^#{1,6}\s+.*?\{#(?P<anchor>[\w-]+)[^}]*\}\s*$")
# Any explicit anchor: headings and definition-list terms (the glossary) alike.
ANCHOR = re.compile(r"\{#(?P<anchor>[\w-]+)[^}]*\}\s*$")
HEADING_ANY = re.compile(r"^#{1,6}\s+\S")
ADMONITION = re.compile(r"^\s*(?:!!!|\?\?\?\+?)\s+(?P<kind>\w+)")
# Markdown links to other pages of the site: [text](path.md#anchor); external URLs are left out.
LINK = re.compile(r"\]\((?P<target>(?!https?:|mailto:)[^)\s]+)\)")
FRONT_MATTER = re.compile(r"\A---\n(?P<yaml>.*?)\n---\n", re.S)


@dataclass(frozen=True)
class Fence:
    """One fenced block: where it starts, its info string and its body, dedented."""

    line: int  # 0-based line of the opening fence
    end: int  # 0-based line of the closing fence
    indent: str
    info: str
    body: list[str]

    @property
    def lang(self) -> str:
        return self.info.split()[0].lstrip("{.") if self.info.split() else ""

    @property
    def includes(self) -> list[str]:
        return [t for t in map(include_target, self.body) if t]

    @property
    def literal_lines(self) -> list[str]:
        """Lines that are neither includes nor blank: code written into the page itself."""
        return [line for line in self.body if line.strip() and include_target(line) is None]


def fences(text: str) -> list[Fence]:
    """Every fenced block of a page, at any indentation."""
    lines = text.split("\n")
    found, i = [], 0
    while i < len(lines):
        match = FENCE_OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        close = re.compile(rf"^{re.escape(indent)}{fence[0]}{{{len(fence)},}}\s*$")
        end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), len(lines))
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines[i + 1 : end]]
        found.append(Fence(i, end, indent, match["info"].strip(), body))
        i = end + 1
    return found


def prose_lines(text: str) -> list[str]:
    """The page's lines outside fences and front matter."""
    lines = FRONT_MATTER.sub(lambda m: "\n" * m.group(0).count("\n"), text).split("\n")
    for fence in fences(text):
        for k in range(fence.line, min(fence.end + 1, len(lines))):
            lines[k] = ""
    return lines


@dataclass(frozen=True)
class Structure:
    """What a translation must keep identical to the English page."""

    includes: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    admonitions: list[str] = field(default_factory=list)


def structure(text: str) -> Structure:
    prose = prose_lines(text)
    return Structure(
        includes=[t for fence in fences(text) for t in fence.includes],
        anchors=[m["anchor"] for line in prose if (m := ANCHOR.search(line))],
        links=[m["target"] for line in prose for m in LINK.finditer(line)],
        admonitions=[m["kind"] for line in prose if (m := ADMONITION.match(line))],
    )


def headings_without_anchor(text: str) -> list[str]:
    return [line for line in prose_lines(text) if HEADING_ANY.match(line) and not HEADING.match(line)]


def pages(language: str, docs: Path = DOCS) -> dict[str, Path]:
    """Pages of one language, keyed by their path relative to the language folder."""
    base = docs / language
    return {p.relative_to(base).as_posix(): p for p in sorted(base.rglob("*.md"))}


def url_path(lang: str, rel: str) -> str:
    """The URL path the site serves page ``rel`` of ``lang`` at: guides/sgd.md in es is /es/guides/sgd/."""
    stem = rel.removesuffix(".md")
    page = "" if stem == "index" else stem.removesuffix("/index") + "/"
    return f"/{'' if lang == DEFAULT_LANGUAGE else lang + '/'}{page}"


def termbase(language: str, docs: Path = DOCS) -> list[dict]:
    """The language's termbase, from the front matter of its glossary page.

    ``termbase:`` lists ``{use: preferred term, not: [regular expressions]}``: the term
    the glossary defines, and the variants this language's pages must not use for it.
    """
    match = FRONT_MATTER.match((docs / language / "glossary.md").read_text(encoding="utf-8"))
    meta = yaml_load(match["yaml"]) if match else None
    return (meta or {}).get("termbase", [])


def is_notebook_page(text: str) -> bool:
    """A jupytext notebook page: its front matter has a ``jupyter:`` header."""
    match = FRONT_MATTER.match(text)
    return bool(match) and re.search(r"^jupyter:", match["yaml"], re.M) is not None


def notebook_for_jupytext(text: str, directory_urls: bool = True) -> str:
    """The page as mkdocs-jupyter should read it.

    Our own front matter key (``source_hash``) would become a visible raw cell, and
    nbconvert ignores ``{#anchor}``: it becomes an ``id`` inside the heading, so links
    and the language switcher's ``#fragment`` find the same section in every language.
    Nor does anything turn links to ``.md`` pages into the URLs MkDocs gives them.
    """
    text = re.sub(r"\A(---\n)source_hash: \S+\n", r"\1", text)
    text = re.sub(r"^(#{1,6} .*?)\s*\{#([\w-]+)\}[ \t]*$", r'\1 <a id="\2"></a>', text, flags=re.M)
    return PAGE_LINK.sub(lambda m: f"]({_page_url(m['path'], directory_urls)}{m['fragment'] or ''})", text)


PAGE_LINK = re.compile(r"\]\((?!https?:)(?P<path>[^)\s#]+)\.md(?P<fragment>#[^)\s]*)?\)")


def _page_url(path: str, directory_urls: bool) -> str:
    """The URL of page ``path`` (relative, without ``.md``) from a page that is not an index."""
    if not directory_urls:
        return f"{path}.html"
    # The notebook itself is served as <name>/, one level below its source folder.
    return f"../{path.removesuffix('index')}" if path.endswith("index") else f"../{path}/"
