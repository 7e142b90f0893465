"""Where llama-notes keeps what it builds once per machine, and one builder at a time.

The converted SmolLM2 (:mod:`llama_notes.smollm2`), the compiled kernels
(:mod:`llama_notes.kernels`) and compiled steps (:mod:`llama_notes.aot_step`) live
under :func:`cache_root`. Several processes may want
the same thing at once (``make test`` runs three pytest processes): the first to take
:func:`folder_lock` builds it, the others wait and then find it built.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path

import torch
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


def machine_key() -> str:
    """What a build for this machine depends on besides its own input: torch's version and
    the machine (its ``-march=native`` code is for this processor)."""
    return f"{torch.__version__} {platform.machine()} {platform.node()}"


def build_once(path: Path, write: Callable[[Path], None]) -> Path:
    """``path``, which ``write(tmp)`` builds into a file ``tmp`` unless this machine has it
    already. One process builds at a time (:func:`folder_lock` on its folder); the others
    wait and find it built. The file is renamed into place, so an interrupted or failed
    build leaves nothing that looks finished."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(path.parent):
        if path.is_file():  # built by another process while this one waited
            return path
        tmp = path.with_name(f".{path.stem}-{os.getpid()}{path.suffix}")
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path
