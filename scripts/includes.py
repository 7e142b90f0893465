"""Expand ``--8<--`` includes exactly as the site build does.

The doc tests and the notebook hook both need a page's text after pymdownx.snippets
has run, with the settings of ``mkdocs.yml``; this module is the one place that does it.
"""

from __future__ import annotations

import re
from pathlib import Path

import markdown
from mkdocs.utils.yaml import yaml_load

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS = "pymdownx.snippets"

# `--8<-- "name"` or `--8<-- "name:section"`, the only include form the pages use.
INCLUDE = re.compile(r'^(?P<indent>\s*)--8<--\s+"(?P<target>[^"]+)"\s*$')


def snippet_config(mkdocs_yml: Path = ROOT / "mkdocs.yml") -> dict:
    """The ``pymdownx.snippets`` settings of ``mkdocs.yml``, with base paths made absolute."""
    with open(mkdocs_yml, encoding="utf-8") as f:
        config = yaml_load(f)
    for ext in config.get("markdown_extensions", []):
        if isinstance(ext, dict) and SNIPPETS in ext:
            settings = dict(ext[SNIPPETS])
            base = settings.get("base_path", ["."])
            base = [base] if isinstance(base, str) else base
            # MkDocs resolves them against the working directory, which is the project root.
            settings["base_path"] = [str(mkdocs_yml.parent / p) for p in base]
            return settings
    raise ValueError(f"{mkdocs_yml} does not configure {SNIPPETS}")


def expand_includes(text: str, settings: dict) -> str:
    """Return ``text`` with every include replaced by the file or section it names."""
    md = markdown.Markdown(extensions=[SNIPPETS], extension_configs={SNIPPETS: settings})
    return "\n".join(md.preprocessors["snippet"].run(text.split("\n")))


def include_target(line: str) -> str | None:
    """The ``name[:section]`` an include line names, or None for any other line."""
    match = INCLUDE.match(line)
    return match["target"] if match else None


def resolve(target: str, settings: dict) -> Path | None:
    """The file an include target names, searched in the base paths in order."""
    name = target.split(":", 1)[0]
    for base in settings["base_path"]:
        candidate = Path(base) / name
        if candidate.is_file():
            return candidate
    return None
