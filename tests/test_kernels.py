"""The C++ kernel's build on first use: once per source, never half-written."""

import pytest

from llama_notes import kernels


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMA_NOTES_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "kernels"


def test_a_source_builds_once_and_again_when_it_changes(tmp_path, cache):
    source = tmp_path / "answer.cpp"
    source.write_text('extern "C" int answer() { return 42; }\n')
    first = kernels.build(source)
    assert first.parent == cache and first.is_file()
    built = first.stat().st_mtime_ns
    assert kernels.build(source) == first and first.stat().st_mtime_ns == built  # not compiled again
    source.write_text('extern "C" int answer() { return 43; }\n')
    second = kernels.build(source)
    assert second != first and second.is_file()


def test_a_failing_build_says_so_and_leaves_no_library(tmp_path, cache):
    source = tmp_path / "broken.cpp"
    source.write_text("int broken( {\n")
    with pytest.raises(RuntimeError, match=r"compiling broken.cpp failed:\n.*broken.cpp:1"):
        kernels.build(source)
    assert list(cache.iterdir()) == []
