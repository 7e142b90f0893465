"""`llama-notes doctor` from Python: versions, devices, backend, and what fits in memory here."""

from llama_notes.cli import main

main(["doctor"])
