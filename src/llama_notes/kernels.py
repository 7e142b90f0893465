"""The package's own C++ kernel (``int4_mm.cpp``), compiled for this machine on first use.

The 4-bit matrix product of :mod:`llama_notes.quant` is written for the CPU it runs on:
``-march=native`` lets the compiler use what this processor has (AVX512-VNNI on a recent
Xeon; AVX2 on most laptops, NEON on ARM, for the portable loop). It is compiled once per machine into
``$LLAMA_NOTES_CACHE/kernels`` (a few seconds; ``torch.compile`` needs the same C++
compiler), under a name that changes with the source, the torch version and the flags,
and loaded as ``torch.ops.llama_notes.int4_mm`` (and ``int8_mm``, for 8-bit blocks). ``CXX`` picks the compiler and
``CXXFLAGS`` adds flags, as for any C++ build.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils import cpp_extension

from llama_notes.cache import cache_root, folder_lock

SOURCE = Path(__file__).with_name("int4_mm.cpp")


def compile_command(source: Path, output: Path) -> list[str]:
    """The compiler call that builds ``source`` into the shared library ``output``."""
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        raise RuntimeError("4-bit weights on the CPU need a C++ compiler (g++ or clang++) to build their kernel")
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    command = [cxx, "-O3", "-march=native", "-shared", "-fPIC", "-std=c++20", "-w", f"-D_GLIBCXX_USE_CXX11_ABI={abi}"]
    command += shlex.split(os.environ.get("CXXFLAGS", ""))  # e.g. -mno-avx512vnni: the portable loop
    if sys.platform.startswith("linux"):
        command.append("-fopenmp")  # ATen's parallel_for is OpenMP in torch's Linux wheels
    command += [f"-I{p}" for p in cpp_extension.include_paths()]
    command += [str(source), "-o", str(output)]
    command += [f"-L{p}" for p in cpp_extension.library_paths()] + ["-lc10", "-ltorch_cpu"]
    return command


def library_path(source: Path = SOURCE) -> Path:
    """Where the build of ``source`` for this machine lives: its name hashes what the build depends on."""
    key = hashlib.sha256(source.read_bytes())
    key.update(f"{torch.__version__} {platform.machine()} {platform.node()}".encode())
    key.update(" ".join(compile_command(source, Path("out"))).encode())
    return cache_root() / "kernels" / f"{source.stem}-{key.hexdigest()[:16]}.so"


def build(source: Path = SOURCE) -> Path:
    """Compile ``source`` unless this machine has it already; returns the library.

    One process compiles at a time (a lock on the cache folder); the others wait and
    load its result. The compiler writes a temporary file that is renamed into place,
    so an interrupted build leaves nothing that looks finished.
    """
    out = library_path(source)
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(out.parent):
        if out.is_file():  # built by another process while this one waited
            return out
        tmp = out.with_name(f".{out.stem}-{os.getpid()}.so")
        try:
            done = subprocess.run(compile_command(source, tmp), capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"compiling {source.name} failed:\n{done.stderr[-4000:]}")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return out


@functools.cache
def load() -> None:
    """Make ``torch.ops.llama_notes.int4_mm`` and ``int8_mm`` available in this process (once)."""
    torch.ops.load_library(str(build()))

    def output_shape(x, tiles, out_features, out_dtype=None):  # for torch.compile's tracing
        return x.new_empty(x.numel() // x.shape[-1], out_features, dtype=out_dtype or x.dtype)

    for op in ("int4_mm", "int8_mm"):
        torch.library.register_fake(f"llama_notes::{op}", output_shape)
