"""A model's one-row steps on the CPU, compiled ahead of time with AOTInductor.

A one-token step of a small model on the CPU takes a few milliseconds, and
``torch.compile`` adds Python work before and after its kernels at every step: Dynamo
checks the model's tensors and modules (some 250 for SmolLM2), and its wrappers pass
each tensor in. Exported with ``torch.export`` and compiled by AOTInductor, the same
step is one C++ call that takes the tokens and the position only: the weights and the
KV cache are the model's own tensors, handed to the compiled code once
(``user_managed``: no copy, and the step writes the model's cache in place).

Attention can be compiled from its definition (:func:`attention_as_sums`) rather than
called as PyTorch's CPU kernel, so that Inductor fuses it with the rotary embedding and
the cache write. A prompt of one row can be compiled the same way, as a second
program that takes any prompt length.

The compiled step is kept in ``$LLAMA_NOTES_CACHE/steps`` under a hash of the
exported program. A model of the same shape and formats finds it again through a hash
of what the export depends on, without exporting, and loads it in a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import operator
import os
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch._C._dynamo.guards import dict_version  # CPython's version tag of a dict, as Dynamo's guards read it

from llama_notes.cache import build_once, cache_root, found, machine_key
from llama_notes.model import Transformer

# Loading a package reads its tree specs through an API torch itself deprecates: torch's
# warning, not the reader's.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)


def attention_as_sums(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """``F.scaled_dot_product_attention`` written as products and sums, for the exported step.

    PyTorch's CPU kernel computes the scores of one query row head by head, each with
    a matrix-vector product from MKL, which runs its generic code on AMD processors:
    called 30 times a token, it shows in the step's time. Written out, the scores,
    the softmax and the weighted sum of the values become loops that Inductor fuses
    with the rotary embedding and the cache write: one kernel per layer. ``query`` is
    ``(bsz, n_heads, seqlen, head_dim)``, ``key`` and ``value``
    ``(bsz, n_kv_heads, cache_len, head_dim)``; each key/value head serves
    ``n_heads // n_kv_heads`` query heads, as with ``enable_gqa=True``.
    """
    if dropout_p or is_causal:
        raise ValueError("attention_as_sums takes neither dropout nor is_causal: the model passes its own mask")
    if attn_mask is not None and not attn_mask.is_floating_point():
        raise TypeError(f"attention_as_sums adds a float mask to the scores, got a {attn_mask.dtype} one")
    bsz, n_heads, seqlen, head_dim = query.shape
    n_kv_heads = key.shape[1]
    if n_heads != n_kv_heads and not enable_gqa:
        raise ValueError(f"{n_heads} query heads and {n_kv_heads} key/value heads need enable_gqa=True")
    # (bsz, n_kv_heads, query heads per key/value head, seqlen, 1, head_dim) against the keys'
    # (bsz, n_kv_heads, 1, 1, cache_len, head_dim)
    q = query.view(bsz, n_kv_heads, n_heads // n_kv_heads, seqlen, 1, head_dim)
    scores = (q * key[:, :, None, None]).sum(-1) * (1 / math.sqrt(head_dim) if scale is None else scale)
    if attn_mask is not None:
        scores = scores + attn_mask
    weights = scores.softmax(-1)  # (..., seqlen, cache_len)
    return (weights[..., None] * value[:, :, None, None]).sum(-2).view(bsz, n_heads, seqlen, head_dim)


class _AttentionAsSums(torch.overrides.TorchFunctionMode):
    """While exporting: ``F.scaled_dot_product_attention`` calls become :func:`attention_as_sums`
    in the exported program (cheaper than decomposing the program once exported, which
    traces it all again)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.scaled_dot_product_attention:
            func = attention_as_sums
        return func(*args, **(kwargs or {}))


# Compiled steps kept on disk, the ones used last: a few megabytes each, a new one for each
# model shape, format and change to the package. A SmolLM2 user has up to four in use (the
# step in float32, bfloat16 and 4 bits, and the 4-bit prompt); the tests use five more.
KEEP_STEPS = 16


class _Step(nn.Module):
    """``Transformer._forward`` with the position as a tensor: the compiled code takes it
    as an input instead of being specialized to one position."""

    def __init__(self, model: Transformer, last_only: bool):
        super().__init__()
        self.model = model
        self.last_only = last_only

    def forward(self, tokens: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        pos = start_pos.item()
        torch._check(pos >= 0)
        torch._check(pos + tokens.shape[1] <= self.model.params.max_seq_len)
        return self.model._forward(tokens, pos, self.last_only)


class AOTStep:
    """Calls ``model._forward(tokens, start_pos)`` through AOTInductor for one row of one
    token, or, with ``prompt``, for one row of 2 to ``max_seq_len`` tokens, of which it
    returns the last position's logits only (``last_only``). It compiles (or loads) at the
    first call, and again whenever one of the model's tensors is no longer the one it was
    given, as after :meth:`~llama_notes.model.Transformer.setup_caches`. ``compiles``
    counts the compilations this object made, loads from the cache included; ``path`` is
    the package it runs. With ``attention_written_out``, the step's attention is
    :func:`attention_as_sums`, fused by Inductor, rather than PyTorch's CPU kernel."""

    def __init__(self, model: Transformer, inductor_options: dict, attention_written_out: bool = False, prompt: bool = False):
        self.model = model
        self.options = inductor_options
        self.attention_written_out = attention_written_out
        self.prompt = prompt
        self.compiles = 0
        self.path = None
        self._runner = None
        # the dict and key of each tensor the step reads, and the tensor there at the last compile
        self._dicts, self._keys, self._held = (), (), []
        self._holders, self._versions = [], []  # those dicts once each, and their versions at the last look
        self._positions = []  # start_pos as the tensor the compiled code takes, one per position

    def __call__(self, tokens: torch.Tensor, start_pos: int) -> torch.Tensor:
        # The same tensors as at the last compile? Unless one of the dicts that hold them has
        # changed since the last look (CPython bumps a dict's version at every change), they
        # are: reading ~200 versions takes half as long as looking up ~250 keys.
        if self._runner is None or list(map(dict_version, self._holders)) != self._versions:
            # One pass in C over (dict, key, tensor): Module.__getattr__ would take 1.4 us per
            # tensor, a third of a millisecond a step.
            if self._runner is None or not all(map(operator.is_, map(dict.get, self._dicts, self._keys), self._held)):
                self._prepare(tokens)
            self._versions = list(map(dict_version, self._holders))
        # A tensor made once per position: a new one at each call costs more than the check.
        position = self._positions[start_pos] if 0 <= start_pos < len(self._positions) else torch.tensor(start_pos)
        # The package's loader itself: the package's __call__ flattens the inputs and rebuilds
        # the output with pytree at every call, Python work that the step's cold caches make
        # slow (see CONTRIBUTING.md).
        return self._runner.loader.run([tokens, position])[0]

    def _tensors(self) -> dict[str, tuple[dict, str]]:
        """Each tensor the step reads, by its name in the exported program: the dict that
        holds it (a module's ``_parameters`` or ``_buffers``, or the model's ``__dict__``
        for the rotary angles, a plain attribute) and its key there."""
        where = {"model.rope": (self.model.__dict__, "rope")}
        for kind in ("parameters", "buffers"):
            for name, _ in getattr(self.model, f"named_{kind}")():
                path, _, key = name.rpartition(".")
                where[f"model.{name}"] = (getattr(self.model.get_submodule(path), f"_{kind}"), key)
        return where

    def _prepare(self, tokens: torch.Tensor) -> None:
        max_seq_len = self.model.params.max_seq_len
        example = torch.zeros((1, 2) if self.prompt else tokens.shape, dtype=tokens.dtype)
        self.path = self._package(example)
        runner = torch._inductor.aoti_load_package(str(self.path))
        where = self._tensors()
        fqns = set(runner.get_constant_fqns())
        # AOTInductor renames the one tensor that the export lifted (_tensor_constant0)
        renamed = [f for f in fqns if f not in where]
        if len(renamed) != 1:
            raise RuntimeError(f"the compiled step reads tensors other than the model's and its rotary angles: {renamed}")
        constants = {f: d[key] for f, (d, key) in where.items() if f in fqns} | {renamed[0]: self.model.rope}
        runner.load_constants(constants, check_full_update=True, user_managed=True)
        self._runner = runner
        self._dicts, self._keys = zip(*where.values())
        self._held = [d[key] for d, key in where.values()]
        self._holders = list({id(d): d for d in self._dicts}.values())
        self._positions = [torch.tensor(p) for p in range(max_seq_len)]
        self.compiles += 1

    def _package(self, example: torch.Tensor) -> Path:
        """The compiled package of this step. Exporting a SmolLM2 step takes 5-6 s, so a
        package is first looked for under a key of what the export depends on (the
        package's code, the model's modules and tensors, the step, torch and this machine).
        Otherwise the step is exported, and compiled unless a package of the same program
        exists: an edit elsewhere in the package changes the first key, not the program."""
        steps = cache_root() / "steps"
        alias = steps / f"step-{self._inputs_key(example)}.alias"  # holds the package's name
        with contextlib.suppress(OSError):  # no alias yet
            if (name := alias.read_text(encoding="utf-8").strip()) and found(steps / name):
                return steps / name
        with torch.inference_mode(False), torch.no_grad():
            dynamic = None
            if self.prompt:  # one program for every prompt length
                seqlen = torch.export.Dim("seqlen", min=2, max=self.model.params.max_seq_len)
                dynamic = {"tokens": {1: seqlen}, "start_pos": None}
            with _AttentionAsSums() if self.attention_written_out else contextlib.nullcontext():
                step = _Step(self.model, last_only=self.prompt)
                program = torch.export.export(step, (example, torch.tensor(0)), dynamic_shapes=dynamic, strict=False)
        path = self._compiled(program)
        tmp = alias.with_name(f".{alias.name}-{os.getpid()}")
        tmp.write_text(path.name, encoding="utf-8")
        os.replace(tmp, alias)  # whole or absent, as the packages
        for other in steps.glob("*.alias"):  # those of packages the cache no longer keeps
            with contextlib.suppress(OSError):
                if not (steps / other.read_text(encoding="utf-8").strip()).is_file():
                    other.unlink()
        return path

    def _inputs_key(self, example: torch.Tensor) -> str:
        """A hash of what exporting the step depends on, read without exporting it."""
        key = hashlib.sha256()
        package = Path(__file__).parent
        for source in sorted([*package.glob("*.py"), *package.glob("*.cpp")]):
            key.update(source.read_bytes())
        model = self.model
        tensors = [*model.named_parameters(), *model.named_buffers(), ("rope", model.rope)]
        key.update(repr([
            model.params, sys.version, machine_key(), sorted(self.options.items()),
            self.prompt, self.attention_written_out, tuple(example.shape), example.dtype,
            [(name, type(m).__module__, type(m).__qualname__) for name, m in model.named_modules()],
            [(name, tuple(t.shape), t.stride(), t.dtype, str(t.device)) for name, t in tensors],
        ]).encode())
        return key.hexdigest()[:20]

    def _compiled(self, program) -> Path:
        """The package of ``program``, compiled unless this machine has it already."""
        key = hashlib.sha256(str(program).encode())
        key.update(repr(sorted(self.options.items())).encode())
        key.update(machine_key().encode())
        options = {**self.options, "aot_inductor.package_constants_in_so": False}
        return build_once(
            cache_root() / "steps" / f"step-{key.hexdigest()[:20]}.pt2",
            lambda tmp: torch._inductor.aoti_compile_and_package(program, package_path=str(tmp), inductor_configs=options),
            keep=KEEP_STEPS,
        )
