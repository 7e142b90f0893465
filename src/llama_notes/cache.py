"""Where llama-notes keeps what it builds once per machine, and one builder at a time.

The converted SmolLM2 (:mod:`llama_notes.smollm2`) and the compiled 4-bit kernel
(:mod:`llama_notes.kernels`) live under :func:`cache_root`. Several processes may want
the same thing at once (``make test`` runs three pytest processes): the first to take
:func:`folder_lock` builds it, the others wait and then find it built.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


def cache_root() -> Path:
    """``$LLAMA_NOTES_CACHE``, by default ``~/.cache/llama-notes``."""
    return Path(os.environ.get("LLAMA_NOTES_CACHE") or Path.home() / ".cache" / "llama-notes").expanduser()


@contextlib.contextmanager
def folder_lock(folder: Path):
    """Hold an exclusive lock on ``folder`` (which must exist) while the block runs. The
    lock is on the folder itself, so nothing is left behind; it is released when the block
    ends or the process dies."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
