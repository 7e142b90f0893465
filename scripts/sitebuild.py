"""Run the strict MkDocs build, the same way for tests, benchmarks and make."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from includes import ROOT


def build_site(destination: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``mkdocs build --strict`` into ``destination``; notebooks are executed unless env says not."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(destination), *extra],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )
