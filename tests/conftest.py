"""Fixtures shared by the site tests."""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sitebuild import build_site


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site_server(tmp_path_factory):
    """``(folder, url)``: a local server for the built site, bound once to a port the
    system picks, before the site is built into its folder."""
    folder = tmp_path_factory.mktemp("site")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="session")
def site_url(site_server) -> str:
    """Where the browser tests serve the site. It is also the build's ``site_url``:
    Material resolves some requests (the sitemap) against the canonical URL."""
    return site_server[1]


@pytest.fixture(scope="session")
def built_site(site_server) -> Path:
    """The site as `make site` builds it, once per test session."""
    folder, url = site_server
    result = build_site(folder, env={"SITE_URL": url})
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    return folder
