"""Doc tests: every Python fence of every page, in every language, runs as MkDocs shows it.

pytest-markdown-docs parses pages with markdown-it, which neither expands
``--8<--`` includes nor sees fences nested in admonitions and content tabs. Its
``pytest_markdown_docs_markdown_it`` hook lets us hand it a parser that reads
pages the way the site build does (``scripts/pages.py``) and expands includes
with the snippet settings of ``mkdocs.yml`` (``scripts/includes.py``).

Each language's page is its own test, but the five languages include the same
files: a fence whose expanded code already ran in this session is not run again,
it reports the outcome of that run (its first page is in the test's properties).
A fence that shows a whole snippet reports, the same way, the outcome of
``tests/test_snippets.py`` running that file as a script, when it ran first.
"""

from __future__ import annotations

import pytest
from markdown_it.token import Token
from pytest_markdown_docs.plugin import MarkdownInlinePythonItem

from includes import ROOT, expand_includes, resolve, snippet_config
from pages import DOCS, LANGUAGES, fences, is_notebook_page

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


_OUTCOMES: dict[str, tuple[str, Exception | None]] = {}  # code, stripped -> (first test, its error)


def _run_once(item, runtest, code: str, reuse: bool) -> None:
    """Run ``item`` and record its outcome under ``code``; with ``reuse``, report the
    outcome already recorded under the same code instead of running it again."""
    code = code.strip()  # the plugin pads a fence's code with blank lines to its line in the page
    if reuse and code in _OUTCOMES:
        first, error = _OUTCOMES[code]
        item.user_properties.append(("same_code_as", first))
        if error is not None:
            raise error
        return
    try:
        runtest()
    except Exception as error:  # a failure is reported under every page that shows the code
        _OUTCOMES[code] = (item.nodeid, error)
        raise
    _OUTCOMES[code] = (item.nodeid, None)


def pytest_addoption(parser):
    parser.addoption(
        "--language", choices=LANGUAGES, default=None,
        help="keep only the tests of this language and those of none (make test-docs ONLY=es)",
    )


def _language(item) -> str | None:
    """The language a test is about: its page's folder, or its ``lang``/``page`` parameter."""
    if isinstance(item, MarkdownInlinePythonItem):
        return item.path.relative_to(DOCS).parts[0]
    params = getattr(item, "callspec", None) and item.callspec.params
    if not params:
        return None
    if "lang" in params:
        return params["lang"]
    page = params.get("page")
    return page[0] if isinstance(page, tuple) else None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if isinstance(item, MarkdownInlinePythonItem):
            code, reuse = item.code, True
        elif getattr(item, "originalname", None) == "test_snippet_runs_as_script":  # always runs
            code, reuse = item.callspec.params["script"].read_text(encoding="utf-8"), False
        else:
            continue
        item.runtest = lambda item=item, runtest=item.runtest, code=code, reuse=reuse: _run_once(item, runtest, code, reuse)
    only = config.getoption("language")
    if only:
        keep = [item for item in items if _language(item) in (None, only)]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
