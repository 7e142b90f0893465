"""Fixtures shared by the site tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from includes import ROOT


def build_site(destination: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the strict five-language build into ``destination``; notebooks are executed."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(destination), *extra],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The site as `make site` builds it, once per test session."""
    site = tmp_path_factory.mktemp("site")
    result = build_site(site)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-5000:]}"
    return site
