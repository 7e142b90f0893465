"""Every snippet runs as a standalone script, the way a reader runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

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


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_generate_runs_on_the_card():
    """snippets/gpu_generate.sh, run by a shell from the repository root: doctor sees the card, generate uses it."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", "snippets/gpu_generate.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    # doctor's devices: "cuda: <n> device(s): <names>" where a card is found, "cuda: not available" elsewhere
    cuda = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("cuda:")]
    assert cuda and "not available" not in cuda[0], result.stdout
    assert "torch.distributed backend: nccl" in result.stdout, result.stdout
    assert "achieved tok/s:" in result.stderr, result.stderr


def _new_shell_env() -> dict:
    """The environment of a new terminal: nothing of this test run's virtual environment."""
    venv_bin = os.path.dirname(sys.executable)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    return {**{k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}, "PATH": path, "MPLBACKEND": "Agg"}


@pytest.mark.slow
def test_the_home_page_examples_run_as_written(tmp_path):
    """snippets/run_examples.sh, line by line in a new shell, from a clone's folder after
    `make test` (here a folder with this checkout's .venv and snippets/)."""
    (tmp_path / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (tmp_path / "snippets").symlink_to(ROOT / "snippets", target_is_directory=True)
    result = subprocess.run(
        ["bash", "-e", "snippets/run_examples.sh"], cwd=tmp_path, env=_new_shell_env(),
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("test accuracy:") == 2  # the script and `llama-notes train`
    assert " The largest animal is" in result.stdout  # generate's greedy answer
    assert "torch.distributed backend:" in result.stdout  # doctor


def test_the_quickstart_commands_are_make_targets():
    """snippets/quickstart.sh runs `make test` (the suite that runs this test) and `make
    serve`: each line is a target of the Makefile."""
    lines = [line.split("#")[0].split() for line in (ROOT / "snippets" / "quickstart.sh").read_text().splitlines()]
    targets = [words[1] for words in lines if words]
    assert targets == ["test", "serve"] and all(words[0] == "make" for words in lines if words)
    for target in targets:
        assert subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True).returncode == 0, target
