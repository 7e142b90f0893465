"""Fixtures shared by the site tests."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sitebuild import build_site


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def site_url() -> str:
    """Where the browser tests serve the site. It is also the build's ``site_url``:
    Material resolves some requests (the sitemap) against the canonical URL."""
    return f"http://127.0.0.1:{_free_port()}/"


@pytest.fixture(scope="session")
def built_site(tmp_path_factory, site_url) -> Path:
    """The site as `make site` builds it, once per test session."""
    site = tmp_path_factory.mktemp("site")
    result = build_site(site, env={"SITE_URL": site_url})
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    return site
