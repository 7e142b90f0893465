"""Where llama-notes keeps what it builds once per machine, and one builder at a time.

The converted SmolLM2 (:mod:`llama_notes.smollm2`) and the compiled kernels
(:mod:`llama_notes.kernels`) live under :func:`cache_root`. Several processes may want
the same thing at once (``make test`` runs three pytest processes): the first to take
:func:`folder_lock` builds it, the others wait and then find it built.
"""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock


def cache_root() -> Path:
    """``$LLAMA_NOTES_CACHE``, by default ``~/.cache/llama-notes``."""
    return Path(os.environ.get("LLAMA_NOTES_CACHE") or Path.home() / ".cache" / "llama-notes").expanduser()


def folder_lock(folder: Path) -> FileLock:
    """An exclusive lock on ``folder`` (which must exist), to hold in a ``with`` block: on
    the empty file ``folder/.lock``, which stays. The operating system releases it when the
    block ends or the process dies (``filelock``: ``flock`` on Linux and macOS, ``msvcrt``
    on Windows)."""
    return FileLock(folder / ".lock")
