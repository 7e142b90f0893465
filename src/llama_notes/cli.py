"""The ``llama-notes`` command: one subcommand per module in :mod:`llama_notes.commands`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from llama_notes import __version__

# Each module defines ``add_parser(subparsers)``, which registers its subcommand and
# sets ``func`` to a callable taking the parsed arguments and returning an exit code.
# Heavy imports (torch, transformers) stay inside those callables so that
# ``--help`` answers at once.
COMMANDS: tuple[str, ...] = ("doctor", "train", "generate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llama-notes",
        description="Run the examples of the llama-notes guides.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"llama_notes.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # The package reports progress ("Loaded in ... seconds") as log records: on stderr
    # here, where a person waits for it; stdout stays the program's output.
    logging.basicConfig(format="%(message)s", stream=sys.stderr, force=True)
    logging.getLogger("llama_notes").setLevel(logging.INFO)
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
