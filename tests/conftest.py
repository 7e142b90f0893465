"""Fixtures shared by the site tests.

The two strict builds they need (the site, then its offline copy) take half a minute
of a process of their own: they start as soon as the tests are collected and run
while the other tests do, and the tests of the built site run last.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sitebuild import build_site

# Test files that use the built site.
SITE_TESTS = {"test_site.py", "test_browser.py"}


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class SiteBuilds:
    """A local server for the built site, bound once to a port the system picks, and
    the builds, one after the other in a background thread: the site as `make site`
    builds it (its ``site_url`` is the server's: Material resolves some requests, the
    sitemap, against it), then `make site-offline` (the notebooks from the cache the
    first build filled). The tests of the site start as soon as the first is built."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="llama-notes-test-sites-"))
        self.site, self.offline = self.root / "site", self.root / "site-offline"
        self.site.mkdir()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(self.site)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.results: dict[Path, object] = {}
        self.built = {self.site: threading.Event(), self.offline: threading.Event()}
        self.thread = threading.Thread(target=self._build, daemon=True)
        self.thread.start()

    def _build(self) -> None:
        builds = {self.site: {"SITE_URL": self.url}, self.offline: {"SITE_URL": "", "LLAMA_NOTES_OFFLINE": "true"}}
        for folder, env in builds.items():
            try:
                self.results[folder] = build_site(folder, env=env)
            finally:  # the tests of the site start while the offline copy builds
                self.built[folder].set()

    def wait(self, folder: Path) -> Path:
        self.built[folder].wait()
        result = self.results.get(folder)
        assert result is not None, "the site build did not run: see the error above"
        assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
        return folder

    def close(self) -> None:
        self.httpd.shutdown()
        self.thread.join()
        shutil.rmtree(self.root, ignore_errors=True)


def _uses_the_site(item) -> bool:
    return item.path.name in SITE_TESTS


def pytest_collection_modifyitems(config, items):
    items.sort(key=_uses_the_site)  # stable: the site's tests last, in their order


def pytest_collection_finish(session):
    if any(_uses_the_site(item) for item in session.items):
        session.config.stash[BUILDS] = SiteBuilds()


def pytest_sessionfinish(session):
    builds = session.config.stash.get(BUILDS, None)
    if builds is not None:
        builds.close()


BUILDS = pytest.StashKey[SiteBuilds]()


@pytest.fixture(scope="session")
def site_builds(request) -> SiteBuilds:
    return request.config.stash[BUILDS]


@pytest.fixture(scope="session")
def site_url(site_builds) -> str:
    """Where the browser tests serve the site; also the build's ``site_url``."""
    return site_builds.url


@pytest.fixture(scope="session")
def built_site(site_builds) -> Path:
    """The site as `make site` builds it."""
    return site_builds.wait(site_builds.site)


@pytest.fixture(scope="session")
def offline_site(site_builds) -> Path:
    """`make site-offline`: a copy that works from file://."""
    return site_builds.wait(site_builds.offline)


@pytest.fixture(scope="session")
def smollm2_gguf():
    """SmolLM2's GGUF file, parsed once for every test that reads it (a parse takes seconds)."""
    from llama_notes.gguf_file import GGUFFile
    from llama_notes.smollm2 import gguf_path

    return GGUFFile(gguf_path())
