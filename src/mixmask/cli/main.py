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
    """Run one sub-command; errors are one line ``mixmask <command>: error: ...`` on stderr and exit code 2.

    Bad arguments are :class:`MixMaskError` raised before any output is written; a fault of the
    machine met on the way (a full disk, a vanished folder: an ``OSError``) is reported the same way,
    naming the file, instead of a traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MixMaskError as err:
        message = str(err)
    except OSError as err:
        from mixmask.resources import describe_os_error

        message = f"could not complete: {describe_os_error(err)}"
    print(f"mixmask {args.command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
