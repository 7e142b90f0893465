"""llama-notes: the tested code behind the guides.

Three pieces of code from the source posts, implemented for real:
the LLaMA ``generate`` loop (:mod:`llama_notes.generation`), Nielsen's
mini-batch SGD update (:mod:`llama_notes.sgd`) and the device fix
(:mod:`llama_notes.device`).
"""

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("llama-notes")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def cache_root() -> Path:
    """Where llama-notes keeps what it builds once per machine (the converted SmolLM2, the
    compiled kernels): ``$LLAMA_NOTES_CACHE``, by default ``~/.cache/llama-notes``."""
    return Path(os.environ.get("LLAMA_NOTES_CACHE") or Path.home() / ".cache" / "llama-notes").expanduser()
