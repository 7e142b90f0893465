"""Doc tests: every Python fence of every page, in every language, runs as MkDocs shows it.

pytest-markdown-docs parses pages with markdown-it, which neither expands
``--8<--`` includes nor sees fences nested in admonitions and content tabs. Its
``pytest_markdown_docs_markdown_it`` hook lets us hand it a parser that reads
pages the way the site build does (``scripts/pages.py``) and expands includes
with the snippet settings of ``mkdocs.yml`` (``scripts/includes.py``).
"""

from __future__ import annotations

import pytest
from markdown_it.token import Token

from includes import ROOT, expand_includes, resolve, snippet_config
from pages import fences, is_notebook_page

SETTINGS = snippet_config()
SOURCE = ROOT / "src"


def _shows_package_source(fence) -> bool:
    # A fence that shows the package's own source (a function, a section of a
    # module) is not a script: tests/ covers that code. Everything else runs.
    return any(
        (path := resolve(target, SETTINGS)) is not None and SOURCE in path.parents
        for target in fence.includes
    )


class MkDocsPageParser:
    """Presents a page to pytest-markdown-docs as fence tokens, includes expanded."""

    def parse(self, text: str) -> list[Token]:
        tokens = []
        for fence in fences(text):
            if fence.info.lstrip("{.").startswith("python") and _shows_package_source(fence):
                info = f"{fence.info} notest"
            elif is_notebook_page(text):
                info = f"{fence.info} notest"  # notebook pages are executed by the site build
            else:
                info = fence.info
            content = expand_includes("\n".join(fence.body), SETTINGS) + "\n"
            tokens.append(Token("fence", "code", 0, map=[fence.line, fence.end], info=info, content=content))
        return tokens


@pytest.hookimpl
def pytest_markdown_docs_markdown_it():
    return MkDocsPageParser()
