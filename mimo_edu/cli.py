"""`python -m mimo_edu COMMAND ...`: one entry point, one module per stage.

Each module listed in COMMAND_MODULES defines `register(subparsers)`, which adds
its sub-commands and sets `func(args) -> int` on them.
"""

import argparse
import importlib
import sys

from mimo_edu.errors import MimoError

COMMAND_MODULES = (
    "mimo_edu.course",
    "mimo_edu.data.cli",
    "mimo_edu.model.cli",
    "mimo_edu.train.cli",
    "mimo_edu.foundations.cli",
    "mimo_edu.interactive.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mimo_edu", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MimoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
