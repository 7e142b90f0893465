"""The package's own C++ kernels, compiled for this machine on first use.

``int4_mm.cpp`` multiplies the 4-bit and 8-bit blocks of :mod:`llama_notes.quant`
(``torch.ops.llama_notes.int4_mm`` and ``int8_mm``), ``bf16_mm.cpp`` the bfloat16
weights of :mod:`llama_notes.bf16` (``torch.ops.llama_notes.bf16_mm``). Both are
written for the CPU they run on: ``-march=native`` lets the compiler use what this
processor has (AVX512-VNNI and AVX512-BF16 on a recent Xeon; AVX2 on most laptops, NEON
on ARM, for the portable paths). Each is compiled once per machine into
``$LLAMA_NOTES_CACHE/kernels`` (a few seconds; ``torch.compile`` needs the same C++
compiler), under a name that changes with the source, the torch version and the flags.
``CXX`` picks the compiler and ``CXXFLAGS`` adds flags, as for any C++ build.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils import cpp_extension

from llama_notes.cache import build_once, cache_root, machine_key


def _blocks_output(x, tiles, out_features, out_dtype=None):
    return x.new_empty(x.numel() // x.shape[-1], out_features, dtype=out_dtype or x.dtype)


def _bf16_output(x, weight):
    return x.new_empty(x.numel() // x.shape[-1], weight.shape[0])


# Each library and the ops it registers, with their output shapes for torch.compile's tracing.
OPS = {
    "int4_mm": {"int4_mm": _blocks_output, "int8_mm": _blocks_output},
    "bf16_mm": {"bf16_mm": _bf16_output},
}


# Libraries kept on disk, the ones used last: each change to a source or to CXXFLAGS builds
# another, and this machine uses one per library at a time.
KEEP_BUILDS = 8


def source_of(name: str) -> Path:
    """The C++ file of the library ``name`` (a key of :data:`OPS`)."""
    if name not in OPS:
        raise ValueError(f"no kernel library {name!r}: the package has {', '.join(OPS)}")
    return Path(__file__).with_name(f"{name}.cpp")


def compile_command(source: Path, output: Path) -> list[str]:
    """The compiler call that builds ``source`` into the shared library ``output``."""
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        raise RuntimeError("4-bit and bfloat16 weights on the CPU need a C++ compiler (g++ or clang++) to build their kernels")
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    command = [cxx, "-O3", "-march=native", "-shared", "-fPIC", "-std=c++20", "-w", f"-D_GLIBCXX_USE_CXX11_ABI={abi}"]
    command += shlex.split(os.environ.get("CXXFLAGS", ""))  # e.g. -mno-avx512vnni: the portable loop
    if sys.platform.startswith("linux"):
        command.append("-fopenmp")  # ATen's parallel_for is OpenMP in torch's Linux wheels
    command += [f"-I{p}" for p in cpp_extension.include_paths()]
    command += [str(source), "-o", str(output)]
    command += [f"-L{p}" for p in cpp_extension.library_paths()] + ["-lc10", "-ltorch_cpu"]
    return command


def library_path(source: Path) -> Path:
    """Where the build of ``source`` for this machine lives: its name hashes what the build depends on."""
    key = hashlib.sha256(source.read_bytes())
    key.update(machine_key().encode())
    key.update(" ".join(compile_command(source, Path("out"))).encode())
    return cache_root() / "kernels" / f"{source.stem}-{key.hexdigest()[:16]}.so"


def build(source: Path) -> Path:
    """Compile ``source`` unless this machine has it already; returns the library.

    One process compiles at a time; the others wait and load its result, and an
    interrupted build leaves nothing that looks finished (:func:`~llama_notes.cache.build_once`).
    """

    def compile_into(tmp: Path) -> None:
        done = subprocess.run(compile_command(source, tmp), capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"compiling {source.name} failed:\n{done.stderr[-4000:]}")

    return build_once(library_path(source), compile_into, keep=KEEP_BUILDS)


@functools.cache
def load(name: str) -> None:
    """Make the ops of the library ``name`` available in this process as
    ``torch.ops.llama_notes.<op>`` (once): see :data:`OPS`."""
    torch.ops.load_library(str(build(source_of(name))))
    for op, output_shape in OPS[name].items():
        torch.library.register_fake(f"llama_notes::{op}", output_shape)
