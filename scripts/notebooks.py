"""Execute the notebook pages for the site build, once per distinct code, with a cache.

The five languages of a notebook page have the same code cells (the same includes in
the same order; the translation checks enforce it) and differ only in their prose.
Their outputs depend on the code cells alone, on the package the code imports and on
the pinned environment. Those make the cache key, so:

- a prose edit, on this page or any other, executes nothing;
- a notebook runs again when a code cell, a snippet it includes (already expanded
  into the cell), a file of ``src/llama_notes`` or ``requirements.lock`` changes;
- the five languages of one notebook share one execution.

Executed notebooks are kept in ``.cache/notebooks/<name>-<key>.ipynb``, one per
notebook name: writing a new one removes the older entries of that name. A run in
which a cell wrote to stderr is reported to the build and not kept.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
from pathlib import Path

import nbformat

from includes import ROOT

CACHE = ROOT / ".cache" / "notebooks"
# What a notebook's outputs depend on besides its code cells.
INPUTS = (ROOT / "src" / "llama_notes", ROOT / "requirements.lock")
KERNEL = "python3"
# The kernel's own start-up warnings (ipykernel warns about TCP transport on every
# start) are not problems of the page: only errors reach the build log.
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR"]

log = logging.getLogger("mkdocs.plugins.llama_notes.notebooks")


def inputs_digest(inputs=INPUTS) -> str:
    """A hash of every file under ``inputs`` (files or folders), by relative path and bytes."""
    hasher = hashlib.sha256()
    for root in inputs:
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if root.is_dir() else [root]
        for path in files:
            hasher.update(path.relative_to(root.parent).as_posix().encode() + b"\0")
            hasher.update(path.read_bytes() + b"\0")
    return hasher.hexdigest()


def cache_key(nb: nbformat.NotebookNode, digest: str) -> str:
    hasher = hashlib.sha256(f"{KERNEL}\0{digest}\0".encode())
    for cell in nb.cells:
        if cell.cell_type == "code":
            hasher.update(cell.source.encode() + b"\0")
    return hasher.hexdigest()[:20]


def _execute(code_only: nbformat.NotebookNode, name: str) -> None:
    from nbclient import NotebookClient

    log.info("Executing notebook %s (code or package changed since its last run)", name)
    with tempfile.TemporaryDirectory(prefix="llama-notes-nb-") as cwd:
        NotebookClient(
            code_only,
            kernel_name=KERNEL,
            timeout=600,
            allow_errors=False,
            extra_arguments=KERNEL_ARGS,
            resources={"metadata": {"path": cwd}},
        ).execute()


def _write_atomically(nb: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)
    os.replace(tmp, path)  # readers see the old entry or the whole new one


def with_outputs(nb: nbformat.NotebookNode, name: str, cache: Path = CACHE, inputs=INPUTS) -> tuple[nbformat.NotebookNode, bool]:
    """``nb`` with the outputs of its code cells, and whether it had to execute them.

    ``name`` names the notebook in the cache and the log (``top-p``); every language
    of a page uses the same name. A cell that fails stops the build with its error.
    """
    key = cache_key(nb, inputs_digest(inputs))
    entry = cache / f"{name}-{key}.ipynb"
    executed = not entry.is_file()
    if executed:
        ran = copy.deepcopy(nb)
        ran.cells = [cell for cell in ran.cells if cell.cell_type == "code"]
        _execute(ran, name)
        if not _stderr(ran):  # a run with warnings is not kept: the next build runs it again
            _write_atomically(ran, entry)
            for old in cache.glob(f"{name}-*.ipynb"):
                if old != entry:
                    old.unlink(missing_ok=True)
    else:
        ran = nbformat.read(entry, as_version=4)
    for text in _stderr(ran):
        # A reader should see results, not the warnings of the machine that built the page.
        log.warning("Notebook %s writes to stderr, which the page would show: %s", name, text.strip()[:300])
    result = copy.deepcopy(nb)
    code_cells = [cell for cell in result.cells if cell.cell_type == "code"]
    for cell, done in zip(code_cells, ran.cells, strict=True):
        cell.outputs, cell.execution_count = done.outputs, done.execution_count
    return result, executed


def _stderr(nb: nbformat.NotebookNode) -> list[str]:
    return [output.text for cell in nb.cells for output in cell.outputs if output.get("name") == "stderr"]
