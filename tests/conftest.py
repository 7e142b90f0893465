"""Fixtures shared by the site tests, and the jobs that run in the background.

The two strict builds the site tests need (the site, then its offline copy) and the
snippets run as scripts each take a process of their own: they start as soon as the
tests are collected and run while the other tests do; the tests that need them run last.
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


class Background:
    """Jobs run one after another in a thread of their own, from the end of collection:
    each takes a process of its own (a strict build, a script), so the other tests run
    meanwhile. A test module may define ``background_jobs(items)``, returning
    ``{key: job}`` for the tests of ``items`` it will run; a test then takes
    ``background.wait(key)``: the job's result, or its exception."""

    def __init__(self, jobs: dict):
        self.jobs, self.results, self.done = jobs, {}, {key: threading.Event() for key in jobs}
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        for key, job in self.jobs.items():
            try:
                self.results[key] = job()
            except Exception as error:  # the test that waits for it reports it
                self.results[key] = error
            self.done[key].set()

    def wait(self, key):
        self.done[key].wait()
        if isinstance(self.results[key], Exception):
            raise self.results[key]
        return self.results[key]


class SiteBuilds:
    """A local server for the built site, bound once to a port the system picks, and
    two background jobs: the site as `make site` builds it (its ``site_url`` is the
    server's: Material resolves some requests, the sitemap, against it), then `make
    site-offline` (the notebooks from the cache the first build filled)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="llama-notes-test-sites-"))
        self.site, self.offline = self.root / "site", self.root / "site-offline"
        self.site.mkdir()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(self.site)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def jobs(self) -> dict:
        return {
            self.site: lambda: build_site(self.site, env={"SITE_URL": self.url}),
            self.offline: lambda: build_site(self.offline, env={"SITE_URL": "", "LLAMA_NOTES_OFFLINE": "true"}),
        }

    def close(self) -> None:
        self.httpd.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)


def _module(item):
    return getattr(item, "module", None)  # doc tests have none


def _order(item) -> int:
    """Other tests first; the tests of the built site, then those whose jobs ran in the
    background, last: by then their jobs are done."""
    if item.path.name in SITE_TESTS:
        return 1
    return 2 if hasattr(_module(item), "background_jobs") else 0


def pytest_collection_modifyitems(config, items):
    items.sort(key=_order)  # stable: each group in its collected order


def pytest_collection_finish(session):
    jobs = {}
    if any(item.path.name in SITE_TESTS for item in session.items):
        builds = session.config.stash[BUILDS] = SiteBuilds()
        jobs.update(builds.jobs())
    for module in {_module(item) for item in session.items if hasattr(_module(item), "background_jobs")}:
        jobs.update(module.background_jobs([item for item in session.items if _module(item) is module]))
    session.config.stash[BACKGROUND] = Background(jobs)


def pytest_sessionfinish(session):
    builds = session.config.stash.get(BUILDS, None)
    if builds is not None:
        builds.close()


BUILDS = pytest.StashKey[SiteBuilds]()
BACKGROUND = pytest.StashKey[Background]()


@pytest.fixture(scope="session")
def background(request) -> Background:
    return request.config.stash[BACKGROUND]


@pytest.fixture(scope="session")
def site_builds(request) -> SiteBuilds:
    return request.config.stash[BUILDS]


def _built(background: Background, folder: Path) -> Path:
    result = background.wait(folder)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    return folder


@pytest.fixture(scope="session")
def site_url(site_builds) -> str:
    """Where the browser tests serve the site; also the build's ``site_url``."""
    return site_builds.url


@pytest.fixture(scope="session")
def built_site(background, site_builds) -> Path:
    """The site as `make site` builds it."""
    return _built(background, site_builds.site)


@pytest.fixture(scope="session")
def offline_site(background, site_builds) -> Path:
    """`make site-offline`: a copy that works from file://."""
    return _built(background, site_builds.offline)
