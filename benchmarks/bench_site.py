"""The site build and what a reader downloads: one JSON object.

- ``build_s``: the strict five-language build, notebooks not executed;
- ``build_s_per_language``: each language built alone, the same way;
- ``pages``, ``site_mb``, ``largest_page_kb`` (HTML alone), ``search_index_kb`` (the
  largest per-language index a reader's browser fetches);
- ``largest_guide_transfer_kb``: a guide page with the CSS and JavaScript it loads,
  uncompressed, the heaviest of all guide pages (target: under 1 MB).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from pages import LANGUAGES  # noqa: E402
from sitebuild import build_site, page_weight_kb  # noqa: E402

NO_NOTEBOOKS = {"LLAMA_NOTES_EXECUTE": "false"}


def timed_build(site: Path, env: dict, strict: bool = True) -> float:
    start = time.perf_counter()
    result = build_site(site, env=env, strict=strict)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"build failed:\n{result.stderr[-3000:]}")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        build_s = timed_build(site, NO_NOTEBOOKS)
        per_language = {
            # Not strict: a language built alone has no English pages to fall back on (the reference).
            lang: round(timed_build(Path(tmp) / f"site-{lang}", {**NO_NOTEBOOKS, "LLAMA_NOTES_LANGUAGE": lang}, strict=False), 2)
            for lang in LANGUAGES
        }
        pages = [p for p in site.rglob("*.html") if p.name != "404.html"]
        guides = [p for p in pages if "/guides/" in p.as_posix()]
        indexes = list(site.rglob("search/search_index.json"))
        print(json.dumps({
            "build_s": round(build_s, 2),
            "build_s_per_language": per_language,
            "pages": len(pages),
            "site_mb": round(sum(f.stat().st_size for f in site.rglob("*") if f.is_file()) / 2**20, 2),
            "largest_page_kb": round(max(p.stat().st_size for p in pages) / 1024, 1),
            "search_index_kb": round(max(i.stat().st_size for i in indexes) / 1024, 1),
            "largest_guide_transfer_kb": round(max(page_weight_kb(p) for p in guides), 1),
        }))


if __name__ == "__main__":
    main()
