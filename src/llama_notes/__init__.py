"""llama-notes: the tested code behind the guides.

Three pieces of code from the source posts, implemented for real:
the LLaMA ``generate`` loop (:mod:`llama_notes.generation`), Nielsen's
mini-batch SGD update (:mod:`llama_notes.sgd`) and the device fix
(:mod:`llama_notes.device`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llama-notes")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
