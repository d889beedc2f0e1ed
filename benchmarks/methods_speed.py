"""Each method's call time against FMix and against the `mixup` package, calls interleaved in one process.

Every round calls each case once, in an order shuffled per round, so a change of load on a shared
machine falls on every case alike; the figure of merit is the median over rounds of each case's time
divided by mixmask FMix's time *in the same round*. A call mixes a float32 batch and turns ``(B,)`` ids
into ``(B, K)`` soft targets (ClassMix also mixes ``(B, H, W)`` maps); the `mixup` package's calls get
one-hot labels made inside the call, as in ``mixmask bench``.

    .venv/bin/python benchmarks/methods_speed.py --threads 2 --rounds 30 --shape 64,3,224,224
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from mixmask.bench.cases import BENCH_METHODS, has_equivalent, installed, make_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="64,3,224,224", help="B,C,H,W")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--methods", default=",".join(BENCH_METHODS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = [int(v) for v in args.shape.split(",")]
    generator = torch.Generator().manual_seed(args.seed)
    inputs = torch.rand(shape, generator=generator)
    labels = torch.randint(0, 1000, (shape[0],), generator=generator)
    cases = {}
    for method in args.methods.split(","):
        for library in ("mixmask", "mixup-pkg"):
            if has_equivalent(library, method) and installed(library):
                cases[(method, library)] = make_call(library, method, "transform", inputs, labels, 1000, args.seed)
    if ("fmix", "mixmask") not in cases:
        raise SystemExit("the comparison needs mixmask's fmix")
    for call in cases.values():
        for _ in range(args.warmup):
            call()
    keys = list(cases)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
    load_start = os.getloadavg()
    for _ in range(args.rounds):
        for position in torch.randperm(len(keys), generator=generator).tolist():
            key = keys[position]
            out = None
            start = time.perf_counter()
            out = cases[key]()
            times[key].append(time.perf_counter() - start)
            del out
    load_end = os.getloadavg()
    fmix = times[("fmix", "mixmask")]
    print(f"shape {shape}, {args.threads} threads, {args.rounds} interleaved rounds; load average (1, 5, 15 min) "
          f"at start {[round(v, 2) for v in load_start]}, at end {[round(v, 2) for v in load_end]}")
    print(f"{'method':12s} {'library':10s} {'median ms':>10s} {'min ms':>8s} {'x FMix':>7s} {'x ours':>7s}")
    for key in keys:
        ratio = statistics.median(t / f for t, f in zip(times[key], fmix))
        ours = times.get((key[0], "mixmask"))
        versus = statistics.median(t / o for t, o in zip(times[key], ours)) if ours and key[1] != "mixmask" else None
        print(f"{key[0]:12s} {key[1]:10s} {1e3 * statistics.median(times[key]):10.1f} {1e3 * min(times[key]):8.1f} "
              f"{ratio:7.2f} {'' if versus is None else f'{versus:7.2f}'}")


if __name__ == "__main__":
    main()
