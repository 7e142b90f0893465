"""Subcommands of ``llama-notes``; see :mod:`llama_notes.cli`."""
