"""One draw per batch: mixmask's ``per_sample=False`` against timm's ``Mixup(mode="batch")``.

Both mix a float32 batch and make ``(B, 1000)`` soft targets from ``(B,)`` ids; timm mutates its input,
so it gets a fresh copy per call, taken outside the timed region. The calls alternate in one process
(mixmask, timm, mixmask, ...) so drifting load hits both alike; medians over ``--seconds`` per size.

    .venv/bin/python benchmarks/per_batch_vs_timm.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def _time(call, setup, seconds: float) -> list[float]:
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        args = setup()
        start = time.perf_counter()
        call(*args)
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128x3x32x32,16x3x128x128,64x3x224x224,16x3x512x512")
    parser.add_argument("--methods", default="mixup,cutmix")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.5, help="timed seconds per turn")
    parser.add_argument("--turns", type=int, default=4, help="alternating turns per library and size")
    args = parser.parse_args(argv)

    from timm.data import Mixup

    import mixmask as mm

    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, load {os.getloadavg()}")
    for size in args.sizes.split(","):
        shape = tuple(int(v) for v in size.split("x"))
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(shape, generator=gen)
        y = torch.randint(0, 1000, (shape[0],), generator=gen)
        for method in args.methods.split(","):
            ours = {"mixup": mm.MixUp, "cutmix": mm.CutMix}[method](num_classes=1000, per_sample=False, seed=0)
            alphas = {"mixup_alpha": 1.0, "cutmix_alpha": 0.0} if method == "mixup" else \
                {"mixup_alpha": 0.0, "cutmix_alpha": 1.0}
            theirs = Mixup(**alphas, num_classes=1000, mode="batch", label_smoothing=0.0)
            jobs = {"mixmask": (ours, lambda: (x, y)), "timm": (theirs, lambda: (x.clone(), y))}
            times: dict[str, list[float]] = {name: [] for name in jobs}
            for call, setup in jobs.values():  # warm-up
                _time(call, setup, 0.1)
            for _ in range(args.turns):
                for name, (call, setup) in jobs.items():
                    times[name] += _time(call, setup, args.seconds)
            med = {name: statistics.median(v) * 1e3 for name, v in times.items()}
            print(f"{size:14s} {method:7s} mixmask per_sample=False {med['mixmask']:8.3f} ms   "
                  f"timm batch {med['timm']:8.3f} ms   ratio {med['mixmask'] / med['timm']:.2f}")
    print(f"load {os.getloadavg()}")


if __name__ == "__main__":
    main()
