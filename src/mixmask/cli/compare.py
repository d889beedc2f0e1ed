"""``mixmask compare``: train every mixing SPEC with several seeds and tabulate the difference."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from mixmask.cli.train import config_from_args, set_threads
    from mixmask.train.compare import compare

    set_threads(args)
    base = config_from_args(args, out=args.out, resume=True, seed=args.seed)
    try:
        result = compare(base, args.mix, seeds=args.seeds)
    except KeyboardInterrupt:
        print("mixmask compare: interrupted; run the same command again to continue (finished runs are kept)")
        return 130
    print(f"mixmask compare: wrote {args.out}/compare.md, compare.json and compare.png "
          f"({len(result['methods'])} methods x {args.seeds} seeds)")
    return 0


def add_parser(subparsers) -> None:
    """Register ``mixmask compare``."""
    from mixmask.cli.train import add_training_arguments

    parser = subparsers.add_parser(
        "compare", help="train several mixing methods x seeds and tabulate test accuracy (mean ± std, gain)",
        description="Runs `mixmask train` for each SPEC and seed, one after the other, in OUT/<spec>/seed<S>; "
        "finished runs are skipped and interrupted ones resumed, so the command can simply be run again. "
        "Writes compare.md, compare.json and compare.png.")
    add_training_arguments(parser, mix_help="comma-separated SPECs (default none,mixup,cutmix,fmix,gridmask); "
                           "an item with '=' belongs to the SPEC before it: none,mixup:alpha=0.4,cutmix")
    parser.set_defaults(mix="none,mixup,cutmix,fmix,gridmask")
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds per SPEC (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (seeds are SEED, SEED+1, ...)")
    parser.add_argument("--out", default="runs/compare", help="output folder (default runs/compare)")
    parser.set_defaults(func=_run)
