"""The `llama-notes` console command answers --help and --version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import llama_notes
from llama_notes import cli
from llama_notes.generation import Llama

# The console script pip installed beside this interpreter, whether or not the venv is activated.
LLAMA_NOTES = str(Path(sys.executable).parent / "llama-notes")


def _run(*args):
    return subprocess.run([LLAMA_NOTES, *args], capture_output=True, text=True, timeout=120)


def test_version_is_the_installed_one():
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"llama-notes {llama_notes.__version__}"
    assert llama_notes.__version__ == "0.1.0"


def test_help_lists_the_subcommands():
    result = _run("--help")
    assert result.returncode == 0
    assert "usage: llama-notes" in result.stdout
    from llama_notes.cli import COMMANDS

    for name in COMMANDS:
        assert name in result.stdout


def test_unknown_subcommand_is_an_error():
    result = _run("no-such-command")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["Hi", "--top-p=1.5"], "top_p=1.5 must be in (0, 1]"),
    (["Hi", "--max-gen-len=0"], "max_gen_len=0 must be at least 1"),
    (["Hi", "--temperature=-1"], "temperature=-1.0 must be a finite number >= 0"),
    (["Hi", "--temperature=nan"], "temperature=nan must be a finite number >= 0"),
    (["  "], "the prompt is empty"),
    (["Hi", "--max-gen-len=100000"], "max_gen_len=100000 does not fit: prompt and answer share 2048 positions"),
])
def test_generate_rejects_bad_options_before_loading_the_model(monkeypatch, capsys, args, message):
    def build(*args, **kwargs):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(Llama, "build", build)
    assert cli.main(["generate", *args]) == 2
    assert f"llama-notes generate: error: {message}" in capsys.readouterr().err


def test_generate_offers_the_weight_formats(monkeypatch, capsys):
    """--weights takes the formats of Llama.build and hands the choice to it; a wrong one is
    refused by the parser, before anything loads."""
    seen = {}

    def build(**kwargs):
        seen.update(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(Llama, "build", build)
    assert cli.main(["generate", "Hi", "--weights", "q4"]) == 2
    assert seen["weights"] == "q4"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", "Hi", "--weights", "q3"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'q3' (choose from 'fp32', 'bf16', 'fp16', 'fp64', 'q4')" in capsys.readouterr().err


def test_build_rejects_an_unknown_weight_format_before_loading(monkeypatch):
    monkeypatch.setattr("llama_notes.generation.load", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(ValueError, match="weights='int3' is not a weight format: choose one of fp32, bf16, fp16, fp64, q4"):
        Llama.build(weights="int3")
