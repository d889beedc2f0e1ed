"""``mixmask bench``: time mixmask against the installed peers and two floors, side by side."""

from __future__ import annotations

import argparse
from typing import Any

_DEFAULT_SIZES = "128x3x32x32,64x3x224x224,16x3x512x512"
_LIBRARIES = "mixmask,timm-batch,timm-elem,torchvision,kornia,mixup-pkg,floor-copy,floor-lerp"
_KERAS_LIBRARIES = "mixmask-keras,keras,keras-cv,floor-gather"
_METHODS = "mixup,cutmix,fmix,gridmask,resizemix,saliencymix,smoothmix,gridmix,cutout,classmix"
_KERAS_METHODS = "mixup,cutmix,fmix,gridmask"


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_parser(subparsers: Any) -> None:
    """Register ``bench`` and its options."""
    parser = subparsers.add_parser(
        "bench", help="time mixmask against timm, torchvision, kornia, the mixup package and copy floors",
        description="Time one call (mix the batch, make soft targets) of mixmask and of every installed "
                    "peer, each (library, method, size) in a fresh process, over interleaved rounds.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--methods", default=None,
                        help=f"comma-separated methods (default torch: {_METHODS}; keras: {_KERAS_METHODS})")
    parser.add_argument("--sizes", default=_DEFAULT_SIZES, help="comma-separated BxCxHxW (or 1-D/3-D) shapes")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--dtype", default="float32", choices=("float32", "uint8"))
    parser.add_argument("--path", default="transform",
                        help="transform (new output; mixmask and peers), collate (mixmask in place into a "
                             "batch it owns), or both: transform,collate")
    parser.add_argument("--framework", default="torch", choices=("torch", "keras"),
                        help="torch: mixmask and the torch peers; keras: mixmask.keras against keras.layers and "
                             "KerasCV in graph mode on TensorFlow (CPU, 2-D sizes)")
    parser.add_argument("--jit", action="store_true", help="keras: compile the graphs with XLA (jit_compile)")
    parser.add_argument("--libraries", default=None,
                        help=f"comma-separated rows to run (default torch: {_LIBRARIES}; keras: {_KERAS_LIBRARIES})")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per job, in interleaved order")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls before timing")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds of timed calls per job and round")
    parser.add_argument("--min-calls", type=int, default=5, help="fewest timed calls per job and round")
    parser.add_argument("--max-calls", type=int, default=500, help="most timed calls per job and round")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per job (default: torch's)")
    parser.add_argument("--num-classes", type=int, default=1000, help="K of the soft targets")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, the draws and the job order")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a job is stopped")
    parser.add_argument("--json", metavar="FILE", help="write every figure, versions and machine as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the table as markdown (for the README)")
    parser.add_argument("--plot", metavar="FILE", help="write a bar chart PNG (images/s, log scale)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _progress_bar(quiet: bool) -> tuple[Any, Any]:
    """``(context manager, callback)`` showing a rich progress bar (nothing when quiet or rich is missing)."""
    import contextlib

    if quiet:
        return contextlib.nullcontext(), None
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    except ImportError:
        return contextlib.nullcontext(), None
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   transient=True)
    task = bar.add_task("starting", total=None)

    def update(done: int, total: int, label: str) -> None:
        bar.update(task, completed=done, total=total, description=label)

    return bar, update


def _argv(args: argparse.Namespace) -> list[str]:
    """The command's arguments with every option spelled out, to rerun it exactly."""
    argv = []
    for name, value in vars(args).items():
        if name in ("command", "func") or value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and write the reports asked for; 0 on success."""
    from mixmask.bench.report import print_table, write_json, write_markdown, write_plot
    from mixmask.bench.runner import BenchConfig, check_memory, parse_sizes, run_bench
    from mixmask.functional._checks import check_int
    from mixmask.resources import check_writable

    check_int("--seed", args.seed, low=0)
    keras = args.framework == "keras"
    if args.methods is None:
        args.methods = _KERAS_METHODS if keras else _METHODS
    if args.libraries is None:
        args.libraries = _KERAS_LIBRARIES if keras else _LIBRARIES
    config = BenchConfig(methods=_csv(args.methods), sizes=parse_sizes(args.sizes), device=args.device,
                         dtype=args.dtype, paths=_csv(args.path), libraries=_csv(args.libraries),
                         framework=args.framework, jit=args.jit,
                         rounds=args.rounds, warmup=args.warmup, min_time=args.min_time,
                         min_calls=args.min_calls, max_calls=args.max_calls, threads=args.threads,
                         num_classes=args.num_classes, seed=args.seed, timeout=args.timeout)
    for option in ("json", "markdown", "plot"):  # the reports are written after the run: check them before it
        if getattr(args, option):
            check_writable(getattr(args, option), f"--{option}", folder=False)
    check_memory(config)
    bar, update = _progress_bar(args.quiet)
    with bar:
        report = run_bench(config, argv=_argv(args), progress=update)
    print_table(report)
    for option, writer in ((args.json, write_json), (args.markdown, write_markdown), (args.plot, write_plot)):
        if option:
            print(f"wrote {writer(report, option)}")
    return 0
