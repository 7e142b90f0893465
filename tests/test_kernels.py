"""The C++ kernel's build on first use: once per source and flags, never half-written, the
builds used last kept on disk, and its portable loop for CPUs without AVX512-VNNI."""

import os
import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from llama_notes import kernels
from llama_notes.cache import build_once


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMA_NOTES_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "kernels"


def test_a_source_builds_once_and_again_when_it_changes(tmp_path, cache):
    source = tmp_path / "answer.cpp"
    source.write_text('extern "C" int answer() { return 42; }\n')
    first = kernels.build(source)
    assert first.parent == cache and first.is_file()
    built = first.stat().st_ino  # a build renames a new file into place
    assert kernels.build(source) == first and first.stat().st_ino == built  # not compiled again
    source.write_text('extern "C" int answer() { return 43; }\n')
    second = kernels.build(source)
    assert second != first and second.is_file()


def test_the_cache_keeps_the_builds_used_last(tmp_path):
    """A new build removes the builds used least recently beyond ``keep``; finding a build in
    the cache counts as using it. The lock and other hidden files stay."""
    written = []

    def write(name):
        def into(tmp):
            tmp.write_text(name)
            written.append(name)

        return into

    for name in ("a", "b", "c"):
        build_once(tmp_path / f"{name}.so", write(name), keep=2)
    assert sorted(p.name for p in tmp_path.glob("*.so")) == ["b.so", "c.so"]
    build_once(tmp_path / "b.so", write("b"), keep=2)  # found: used, not built again
    build_once(tmp_path / "d.so", write("d"), keep=2)
    assert sorted(p.name for p in tmp_path.glob("*.so")) == ["b.so", "d.so"]
    assert written == ["a", "b", "c", "d"]
    assert (tmp_path / ".lock").is_file()


def test_two_builders_at_once_compile_once(tmp_path, cache, monkeypatch):
    # a compiler that logs each call: the second builder must wait for the first and load its library
    log = tmp_path / "calls"
    cxx = tmp_path / "logging-c++"
    cxx.write_text(f'#!/bin/sh\necho call >> "{log}"\nsleep 1\nexec c++ "$@"\n')
    cxx.chmod(0o755)
    monkeypatch.setenv("CXX", str(cxx))
    source = tmp_path / "answer.cpp"
    source.write_text('extern "C" int answer() { return 42; }\n')
    with ThreadPoolExecutor(2) as pool:
        built = list(pool.map(kernels.build, [source, source]))
    assert built[0] == built[1] and built[0].is_file()
    assert log.read_text() == "call\n"


def test_a_failing_build_says_so_and_leaves_no_library(tmp_path, cache):
    source = tmp_path / "broken.cpp"
    source.write_text("int broken( {\n")
    with pytest.raises(RuntimeError, match=r"compiling broken.cpp failed:\n.*broken.cpp:1"):
        kernels.build(source)
    assert [p.name for p in cache.iterdir()] == [".lock"]  # the build's lock, nothing it wrote


PORTABLE = """
import torch
from llama_notes import quant
torch.manual_seed(0)
q, d, m = torch.randint(0, 16, (13, 96)), (torch.rand(13, 3) * 0.02).half(), (torch.randn(13, 3) * 0.05).half()
x = torch.randn(3, 96).bfloat16()
y = quant.Int4Linear(q, d, m, torch.bfloat16, "cpu")(x, torch.float32)
W = d.double().repeat_interleave(32, 1) * q.double() + m.double().repeat_interleave(32, 1)
exact, magnitude = x.double() @ W.t(), x.double().abs() @ W.abs().t()
print(((y.double() - exact).abs() <= 96 * 2.0**-24 * magnitude).all().item())
"""


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="-mno-avx512vnni is an x86 flag")
def test_a_cpu_without_avx512_vnni_multiplies_bfloat16_in_float32(tmp_path):
    """Most laptops lack AVX512-VNNI: built without it (CXXFLAGS), the kernel takes its
    portable loop, which multiplies bfloat16 activations exactly in float32, within the
    sums' rounding and nothing looser (the 16-bit integer path would not hold that bound)."""
    env = {**os.environ, "CXXFLAGS": "-mno-avx512vnni", "LLAMA_NOTES_CACHE": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", PORTABLE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True"]
    assert len(list((tmp_path / "kernels").glob("int4_mm-*.so"))) == 1
