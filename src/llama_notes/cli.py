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


class _Stderr:
    """Whatever ``sys.stderr`` is when a record is written (a caller may have swapped it)."""

    def write(self, text: str) -> None:
        sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def show_progress() -> None:
    """Show the package's progress records ("Loaded in ... seconds") on stderr, where a
    person waits for them; stdout stays the program's output. Scripts and notebooks
    that import the package see none of them."""
    log = logging.getLogger("llama_notes")
    if not log.handlers:
        handler = logging.StreamHandler(_Stderr())
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    show_progress()
    if args.command is None:
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
