"""Where llama-notes keeps what it builds once per machine, and one builder at a time.

The converted SmolLM2 (:mod:`llama_notes.smollm2`), the compiled kernels
(:mod:`llama_notes.kernels`) and compiled steps (:mod:`llama_notes.aot_step`) live
under :func:`cache_root`. Several processes may want
the same thing at once (``make test`` runs three pytest processes): the first to take
:func:`folder_lock` builds it, the others wait and then find it built.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
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


def build_once(path: Path, write: Callable[[Path], None], keep: int | None = None) -> Path:
    """``path``, which ``write(tmp)`` builds into a file ``tmp`` unless this machine has it
    already. One process builds at a time (:func:`folder_lock` on its folder); the others
    wait and find it built. The file is renamed into place, so an interrupted or failed
    build leaves nothing that looks finished.

    Builds are named after what they depend on, so every change to a source or a model
    adds one. With ``keep``, the folder holds the ``keep`` builds used last, and a new
    build removes the others: finding a build counts as using it (its modification time
    becomes now), so what is in use stays.
    """
    if found(path):
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
        _mark_used(path)
        if keep is not None:
            _keep_last_used(path.parent, path.suffix, keep)
    return path


def found(path: Path) -> bool:
    """Whether this machine has built ``path``; finding it counts as using it (see :func:`build_once`)."""
    if not path.is_file():
        return False
    _mark_used(path)
    return True


def _mark_used(path: Path) -> None:
    # The clock itself, to the nanosecond: a file system stamps times with its coarser tick.
    now = time.time_ns()
    with contextlib.suppress(OSError):  # a cache this user may read but not write
        os.utime(path, ns=(now, now))


def _keep_last_used(folder: Path, suffix: str, keep: int) -> None:
    """Remove all but the ``keep`` most recently used builds (``*suffix``) of ``folder``.
    Hidden files (the lock, builds being written) are not builds."""
    builds = [p for p in folder.glob(f"*{suffix}") if not p.name.startswith(".")]
    builds.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in builds[keep:]:
        # A process that loaded it keeps its copy; Windows refuses to remove a loaded library.
        with contextlib.suppress(OSError):
            old.unlink()
