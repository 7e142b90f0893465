"""Run the strict MkDocs build, the same way for tests, benchmarks and make."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from includes import ROOT


def build_site(destination: Path, *extra: str, env: dict | None = None, strict: bool = True) -> subprocess.CompletedProcess:
    """Run ``mkdocs build --strict`` into ``destination``; notebooks are executed unless env says not."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict" if strict else "--no-strict", "--site-dir", str(destination), *extra],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )


ASSET = re.compile(r'<(?:script|link)[^>]+(?:src|href)="(?P<url>[^"#?]+\.(?:js|css))"')


def page_weight_kb(page: Path) -> float:
    """A built page plus every same-site CSS and JavaScript file it loads, uncompressed."""
    html = page.read_text(encoding="utf-8")
    assets = {(page.parent / m["url"]).resolve() for m in ASSET.finditer(html) if "://" not in m["url"]}
    return (page.stat().st_size + sum(a.stat().st_size for a in assets if a.is_file())) / 1024
