"""The notebook cache of the site build (scripts/notebooks.py), with a real kernel.

A notebook runs again when, and only when, its code or the package it calls
changes: a prose edit, or the same notebook in another language, reuses the outputs.
"""

from __future__ import annotations

import textwrap

import nbformat
import pytest

from notebooks import cache_key, inputs_digest, with_outputs


def _notebook(package, runs, prose: str) -> nbformat.NotebookNode:
    code = textwrap.dedent(
        f"""\
        import sys
        sys.path.insert(0, {str(package.parent)!r})
        with open({str(runs)!r}, "a") as f:  # one line per real execution
            f.write("ran\\n")
        from pkg.mod import answer
        print(answer())
        """
    )
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(prose), nbformat.v4.new_code_cell(code)])


@pytest.fixture
def project(tmp_path):
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("def answer():\n    return 41\n")
    return package, tmp_path / "runs.txt", tmp_path / "cache"


def _printed(nb) -> str:
    (cell,) = [c for c in nb.cells if c.cell_type == "code"]
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


def test_prose_edits_reuse_the_outputs_and_a_package_change_runs_again(project):
    package, runs, cache = project
    inputs = [package]

    nb, executed = with_outputs(_notebook(package, runs, "# Answer"), "answer", cache, inputs)
    assert executed and _printed(nb) == "41\n"
    assert nb.cells[0].source == "# Answer"

    # The page's prose edited, then the same notebook in another language: no kernel starts.
    for prose in ("# The answer, edited", "# La respuesta"):
        nb, executed = with_outputs(_notebook(package, runs, prose), "answer", cache, inputs)
        assert not executed and _printed(nb) == "41\n"
        assert nb.cells[0].source == prose
    assert runs.read_text() == "ran\n"

    # The package function the notebook calls changes: it runs again, with the new result,
    # and the cache keeps only the new entry.
    (package / "mod.py").write_text("def answer():\n    return 42\n")
    nb, executed = with_outputs(_notebook(package, runs, "# Answer"), "answer", cache, inputs)
    assert executed and _printed(nb) == "42\n"
    assert runs.read_text() == "ran\nran\n"
    assert len(list(cache.glob("answer-*.ipynb"))) == 1


def test_the_key_covers_code_and_every_input_file_but_not_prose(project):
    package, runs, _ = project
    digest = inputs_digest([package])
    key = cache_key(_notebook(package, runs, "# One"), digest)
    assert cache_key(_notebook(package, runs, "# Two"), digest) == key
    assert cache_key(_notebook(package, runs.with_name("other.txt"), "# One"), digest) != key
    (package / "new.py").write_text("")  # a new module changes the package too
    assert inputs_digest([package]) != digest


def test_a_failing_cell_stops_the_build_and_caches_nothing(project, tmp_path):
    package, runs, cache = project
    (package / "mod.py").write_text("def answer():\n    raise RuntimeError('broken package')\n")
    with pytest.raises(Exception, match="broken package"):
        with_outputs(_notebook(package, runs, "# Answer"), "answer", cache, [package])
    assert not cache.exists() or list(cache.iterdir()) == []


def test_a_run_that_writes_to_stderr_is_reported_and_not_kept(project, caplog):
    package, runs, cache = project
    (package / "mod.py").write_text("import sys\ndef answer():\n    print('converting the cache', file=sys.stderr)\n    return 41\n")
    for _ in range(2):  # not cached: the second build runs it again, and reports it again
        nb, executed = with_outputs(_notebook(package, runs, "# Answer"), "answer", cache, [package])
        assert executed and sorted(_printed(nb).splitlines()) == ["41", "converting the cache"]
    assert runs.read_text() == "ran\nran\n"
    assert caplog.text.count("Notebook answer writes to stderr") == 2
    assert not cache.exists() or list(cache.iterdir()) == []
