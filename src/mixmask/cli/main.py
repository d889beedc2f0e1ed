"""``mixmask`` entry point: one sub-command per module of this package.

Each module ``mixmask.cli.<name>`` defines ``add_parser(subparsers)``, which registers the
sub-command and sets ``func`` (called with the parsed arguments, returning an exit code).
Modules are imported when the parser is built; their heavy dependencies are imported in ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mixmask.errors import MixMaskError

COMMANDS = ("preview", "bench", "train", "compare", "data")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixmask", description="Mixed-sample data augmentation: "
                                     "previews, benchmarks and training experiments.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"mixmask.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MixMaskError as err:
        print(f"mixmask {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
