"""Which translations are missing or stale, and the banner a reader sees on them.

A translated page records in its front matter the hash of the English page it was
translated from (``source_hash``). When the English page changes, the hashes no
longer match and the translation is stale until a translator catches up and
records the new hash. ``make translations`` (this file run as a script) lists the
missing and stale pages of each language with the English diff since.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from mkdocs.utils.yaml import yaml_load

from pages import DEFAULT_LANGUAGE, FRONT_MATTER, LANGUAGES, ROOT, pages

# Pages generated from the package's docstrings stay in English, as FastAPI's do.
ENGLISH_ONLY = ("reference/",)

CURRENT, STALE, MISSING = "current", "stale", "missing"

BANNERS = {
    STALE: {
        "en": "This translation is older than the English page.",
        "es": "Esta traducción es anterior a la versión actual de la página en inglés.",
        "zh": "本译文落后于当前的英文页面。",
        "ja": "この翻訳は現在の英語版ページより古い内容です。",
        "fr": "Cette traduction est plus ancienne que la page anglaise actuelle.",
    },
    MISSING: {
        "en": "This page has not been translated yet.",
        "es": "Esta página aún no está traducida; se muestra la versión en inglés.",
        "zh": "本页尚未翻译，以下为英文原文。",
        "ja": "このページはまだ翻訳されていません。英語版を表示しています。",
        "fr": "Cette page n'est pas encore traduite ; voici la version anglaise.",
    },
}
READ_ENGLISH = {
    "en": "Read the English page",
    "es": "Leer la página en inglés",
    "zh": "阅读英文页面",
    "ja": "英語版ページを読む",
    "fr": "Lire la page en anglais",
}


def source_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def declared_hash(text: str) -> str | None:
    match = FRONT_MATTER.match(text)
    meta = yaml_load(match["yaml"]) if match else None
    return meta.get("source_hash") if isinstance(meta, dict) else None


def status(docs: Path, lang: str, rel: str) -> str:
    """CURRENT, STALE or MISSING for page ``rel`` (relative to the language folder)."""
    translated = docs / lang / rel
    if not translated.exists():
        return MISSING
    english = (docs / DEFAULT_LANGUAGE / rel).read_text(encoding="utf-8")
    return CURRENT if declared_hash(translated.read_text(encoding="utf-8")) == source_hash(english) else STALE


def english_pages(docs: Path) -> list[str]:
    return list(pages(DEFAULT_LANGUAGE, docs))


def report(docs: Path) -> dict[str, dict[str, list[str]]]:
    """For each translated language, the pages that are missing or stale."""
    result = {}
    for lang in LANGUAGES:
        if lang == DEFAULT_LANGUAGE:
            continue
        states = {rel: status(docs, lang, rel) for rel in english_pages(docs) if not rel.startswith(ENGLISH_ONLY)}
        result[lang] = {
            MISSING: [rel for rel, s in states.items() if s == MISSING],
            STALE: [rel for rel, s in states.items() if s == STALE],
        }
    return result


def english_diff_since(docs: Path, lang: str, rel: str) -> str:
    """The English change since the version the translation was made from (from git history)."""
    wanted = declared_hash((docs / lang / rel).read_text(encoding="utf-8"))
    path = (docs / DEFAULT_LANGUAGE / rel).relative_to(ROOT).as_posix()
    commits = subprocess.run(
        ["git", "log", "--format=%H", "--", path], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for commit in commits:
        old = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True, text=True)
        if old.returncode == 0 and source_hash(old.stdout) == wanted:
            return subprocess.run(
                ["git", "diff", commit, "--", path], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
    return f"(no commit of {path} has hash {wanted}; compare the whole page)\n"


def main() -> int:
    docs = ROOT / "docs"
    todo = report(docs)
    for lang, states in todo.items():
        print(f"{lang}: {len(states[MISSING])} missing, {len(states[STALE])} stale")
        for rel in states[MISSING]:
            print(f"  missing  {rel}")
        for rel in states[STALE]:
            print(f"  stale    {rel}  (record source_hash: {source_hash((docs / 'en' / rel).read_text('utf-8'))})")
            print("".join(f"    | {line}\n" for line in english_diff_since(docs, lang, rel).splitlines()))
    return 1 if any(any(states.values()) for states in todo.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
