"""The `llama-notes` console command answers --help and --version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import llama_notes

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
