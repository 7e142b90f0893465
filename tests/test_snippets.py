"""Every snippet runs as a standalone script, the way a reader runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from includes import ROOT

SNIPPETS = sorted((ROOT / "snippets").glob("*.py"))


def test_there_are_snippets():
    assert SNIPPETS, "snippets/ holds no script"


@pytest.mark.parametrize("script", SNIPPETS, ids=lambda p: p.name)
def test_snippet_runs_as_script(script, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stderr}"
    # A snippet whose output the docs show keeps it beside it as <name>.txt: the page
    # must show what the script really prints.
    shown = script.with_suffix(".txt")
    if shown.exists():
        assert result.stdout == shown.read_text(encoding="utf-8"), f"{shown.name} no longer matches {script.name}"
