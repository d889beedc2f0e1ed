"""Two versions of mixmask, before and after a change: alternating fresh processes, same calls.

Each round runs the before version, then the after version, each in a fresh process that imports
mixmask from its own ``src`` folder (``PYTHONPATH``) and times every (method, size) call for
``--seconds`` after 30 warm-up calls. Drifting load hits both alike; the smallest median of the
rounds is reported with the ratio after / before. A bench run (``mixmask bench``) cannot tell a 20 %
change on a shared VM: rows of unchanged code move by up to ±35 % between two runs minutes apart.

    git worktree add /tmp/before <commit>
    .venv/bin/python benchmarks/versions_ab.py --before /tmp/before/src --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

SIZES = "128x3x32x32,16x3x128x128,64x3x224x224,16x3x512x512"
CALLS = "MixUp,CutMix,FMix,GridMask,MixUp-batch,CutMix-batch"


def run_calls(calls: list[str], sizes: list[str], threads: int, seconds: float) -> dict[str, float]:
    """Median µs of each ``size:call`` in this process (``Name-batch``: ``per_sample=False``)."""
    import statistics
    import time

    import torch

    import mixmask

    torch.set_num_threads(threads)
    out = {}
    for size in sizes:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(tuple(int(v) for v in size.split("x")), generator=g)
        y = torch.randint(0, 1000, (x.shape[0],), generator=g)
        for call in calls:
            name = call.removesuffix("-batch")
            transform = getattr(mixmask, name)(num_classes=1000, seed=0, per_sample=not call.endswith("-batch"))
            for _ in range(30):
                transform(x, y)
            times, end = [], time.perf_counter() + seconds
            while time.perf_counter() < end or len(times) < 5:
                start = time.perf_counter()
                transform(x, y)
                times.append(time.perf_counter() - start)
            out[f"{size}:{call}"] = statistics.median(times) * 1e6
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="the src folder of the version before the change (required)")
    parser.add_argument("--after", default=str(Path(__file__).resolve().parents[1] / "src"),
                        help="the src folder of the version after (default: this checkout's)")
    parser.add_argument("--calls", default=CALLS, help="mixmask transform names; Name-batch for per_sample=False")
    parser.add_argument("--sizes", default=SIZES)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.4, help="timed seconds per call and round")
    parser.add_argument("--job", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    calls, sizes = args.calls.split(","), args.sizes.split(",")
    if args.job:
        print(json.dumps(run_calls(calls, sizes, args.threads, args.seconds)))
        return 0
    if not args.before:
        parser.error("--before is required: the src folder of the version before the change")
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    job = [sys.executable, __file__, "--job", "--calls", args.calls, "--sizes", args.sizes,
           "--threads", str(args.threads), "--seconds", str(args.seconds)]
    for k in range(args.rounds):
        for version in ("before", "after"):
            env = dict(os.environ, PYTHONPATH=getattr(args, version))
            done = subprocess.run(job, env=env, check=True, capture_output=True, text=True)
            for key, us in json.loads(done.stdout.strip().splitlines()[-1]).items():
                best[version][key] = min(us, best[version].get(key, float("inf")))
        print(f"round {k + 1} of {args.rounds} done, load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    print(f"{'size:call':30s} {'before µs':>10s} {'after µs':>10s} {'ratio':>6s}")
    for key, before in best["before"].items():
        after = best["after"][key]
        print(f"{key:30s} {before:10.0f} {after:10.0f} {after / before:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
