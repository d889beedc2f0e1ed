"""Time the core: each method's transform call and its in-place collate path, against a copy floor.

Each job runs in a fresh process (so no job inherits another's warm pages), with a fixed number of
threads, and reports the median of several rounds after warm-up rounds. ``--profile`` shows where
the time of a call goes instead: the phases (check, draw, write) timed inside real calls, the number
of top-level torch dispatches, and each stage timed alone.

    .venv/bin/python benchmarks/core_speed.py                      # B=64, 3x224x224, 2 threads
    .venv/bin/python benchmarks/core_speed.py --shape 128,3,32,32
    .venv/bin/python benchmarks/core_speed.py --profile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

JOBS = ("floor", "mixup", "cutmix", "fmix", "gridmask", "policy")


def _transform(name: str, num_classes: int, per_sample: bool = True):
    import mixmask as mm

    options = {"num_classes": num_classes, "seed": 0, "per_sample": per_sample}
    return {
        "mixup": lambda: mm.MixUp(alpha=1.0, **options),
        "cutmix": lambda: mm.CutMix(alpha=1.0, **options),
        "fmix": lambda: mm.FMix(alpha=1.0, decay_power=3.0, **options),
        "gridmask": lambda: mm.GridMask(**options),
        "policy": lambda: mm.RandomChoice([mm.MixUp(), mm.CutMix(), mm.FMix()], **options),
    }[name]()


def _median_ms(step, rounds: int, warmup: int, before=None) -> tuple[float, list[float], float]:
    """Median wall time (ms), all wall times, and the median process CPU time (ms) of ``step``.

    CPU time is what the process itself used: on a machine shared with other jobs it is a steadier
    figure than wall time for one thread (with several threads it adds theirs up).
    """
    times, cpu = [], []
    for k in range(warmup + rounds):
        if before is not None:
            before()
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        if k >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
            cpu.append((time.process_time() - start_cpu) * 1e3)
    return statistics.median(times), times, statistics.median(cpu)


def run_job(job: str, path: str, shape: tuple[int, ...], rounds: int, warmup: int, threads: int) -> dict:
    """One job in this process: ``job`` is a method name or ``floor``; ``path`` is call or collate."""
    import torch

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    source = torch.rand(shape, generator=g)
    labels = torch.randint(0, 1000, (shape[0],), generator=g)
    if job == "floor":
        buffer = torch.empty_like(source)
        index = torch.randperm(shape[0], generator=g)
        ms, times, cpu = _median_ms(lambda: torch.index_select(source, 0, index, out=buffer), rounds, warmup)
    elif path == "call":
        t = _transform(job, 1000)
        ms, times, cpu = _median_ms(lambda: t(source, labels), rounds, warmup)
    else:
        from mixmask import MixCollate

        collate = MixCollate(_transform(job, 1000), seed=0)
        batch = source.clone()  # the freshly collated batch, owned by the collate
        ms, times, cpu = _median_ms(lambda: collate._mix(batch, labels, None), rounds, warmup,
                                    before=lambda: batch.copy_(source))
    return {"job": job, "path": path, "median_ms": round(ms, 2), "min_ms": round(min(times), 2),
            "cpu_ms": round(cpu, 2),
            "rounds": rounds, "shape": list(shape), "threads": threads}


def _phases(transform, x, labels, calls: int) -> dict[str, float]:
    """Median µs of each phase (check, draw, write) and of the whole call, timed inside real calls.

    Timed in place, not alone: after a call's passes over the batch the small steps run from cold
    caches and cost about twice what they cost in a loop of their own.
    """
    times: dict[str, list[float]] = {"check": [], "draw": [], "write": [], "call": []}
    for phase in ("check", "draw", "write"):
        method = getattr(transform, f"_{phase}")

        def timed(*args, _method=method, _phase=phase, **kwargs):
            start = time.perf_counter()
            out = _method(*args, **kwargs)
            times[_phase].append(time.perf_counter() - start)
            return out

        setattr(transform, f"_{phase}", timed)  # an instance attribute: only this transform is timed
    for k in range(calls):
        start = time.perf_counter()
        transform(x, labels)
        times["call"].append(time.perf_counter() - start)
    return {name: statistics.median(values[calls // 10:]) * 1e6 for name, values in times.items()}


def _dispatches(transform, x, labels) -> int:
    """Top-level torch dispatches of one call (``torch.profiler``)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        transform(x, labels)
    return sum(1 for event in prof.events() if event.cpu_parent is None)


def profile(shape: tuple[int, ...], rounds: int, threads: int) -> None:
    """Where the time of the MixUp, CutMix and FMix calls goes: phases inside calls, then stages alone."""
    import math

    import numpy as np
    import torch

    from mixmask.functional import masks as M
    from mixmask.functional.kernels import mix_class_targets, mix_inputs
    from mixmask.functional.params import mask_mean
    from mixmask.functional.sampling import sample_lam, sample_partners

    torch.set_num_threads(threads)
    b, spatial = shape[0], tuple(shape[2:])
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g)
    labels = torch.randint(0, 1000, (b,), generator=g)
    calls = max(20, rounds * 100)
    print(f"phases inside {calls} calls (median µs), float32 batch {shape}, {threads} threads")
    print(f"{'call':10s} {'check':>8s} {'draw':>8s} {'write':>8s} {'call':>8s} {'dispatches':>11s}")
    for name in ("mixup", "cutmix", "fmix", "mixup_batch", "cutmix_batch"):
        method = name.removesuffix("_batch")
        transform = _transform(method, 1000, per_sample=not name.endswith("_batch"))
        for _ in range(5):
            transform(x, labels)
        count = _dispatches(transform, x, labels)
        us = _phases(transform, x, labels, calls if method != "fmix" or math.prod(shape) < 1e6 else rounds)
        print(f"{name:12s} {us['check']:8.0f} {us['draw']:8.0f} {us['write']:8.0f} {us['call']:8.0f} {count:11d}")

    lam = sample_lam(b, 1.0, g)
    n = math.prod(spatial)
    stages = {
        "sample lam + partners": lambda: (sample_lam(b, 1.0, g), sample_partners(b, g)),
        "fmix: spectrum draw": lambda: torch.randn(b, *spatial[:-1], spatial[-1] // 2 + 1, 2, generator=g),
        "fmix: grey images (draw + irfftn)": lambda: M.fmix_grey_images(b, spatial, 3.0, g),
    }
    grey = M.fmix_grey_images(b, spatial, 3.0, g).reshape(b, n)
    counts = torch.round(lam * n).long()
    stages.update({
        "fmix: threshold (selection)": lambda: M._kth_largest(grey, counts),
        "fmix: full np.sort (old threshold)": lambda: np.sort(grey.numpy(), axis=1),
        "fmix: masks (whole sampler)": lambda: M.fmix_masks(lam, spatial, g),
        "cutmix: masks": lambda: M.cutmix_masks(lam, spatial, g),
        "gridmask: masks": lambda: M.gridmask_masks(b, spatial, g),
    })
    low, high = M._cutmix_boxes(lam, spatial, g)
    stages["cutmix: bool mask from boxes"] = lambda: M.box_masks(low, high, spatial, "cpu")
    stages["cutmix: blend weights from boxes"] = lambda: M.box_weights(low, high, spatial, x.dtype, "cpu")
    mask = M.fmix_masks(lam, spatial, g)[0]
    stages["mask mean"] = lambda: mask_mean(mask)
    for name in ("fmix", "cutmix", "mixup"):
        params = _transform(name, 1000).sample(x)
        stages[f"{name}: mix_inputs (new tensor)"] = lambda p=params: mix_inputs(x, p)
        stages[f"{name}: class targets"] = lambda p=params: mix_class_targets(labels, p, num_classes=1000)
        stages[f"{name}: sample()"] = lambda t=_transform(name, 1000): t.sample(x)
    workspace, batch = torch.empty_like(x), x.clone()
    params = _transform("fmix", 1000).sample(x)
    stages["fmix: mix_inputs in place + workspace"] = lambda: mix_inputs(batch, params, inplace=True,
                                                                         workspace=workspace)
    stages["gather only (index_select into workspace)"] = lambda: torch.index_select(x, 0, params.index,
                                                                                     out=workspace)
    print(f"\nstages alone, median of {rounds}")
    print(f"{'stage':48s} {'median':>8s} {'min':>8s} {'cpu':>8s} (ms)")
    for name, step in stages.items():
        ms, times, cpu = _median_ms(step, rounds, 2)
        print(f"{name:48s} {ms:8.2f} {min(times):8.2f} {cpu:8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="64,3,224,224", help="B,C,*S of the float32 batch")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--profile", action="store_true", help="phases inside calls, dispatch counts, stages alone")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="call", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shape = tuple(int(s) for s in args.shape.split(","))
    if args.profile:
        profile(shape, args.rounds, args.threads)
        return 0
    if args.job:
        print(json.dumps(run_job(args.job, args.path, shape, args.rounds, args.warmup, args.threads)))
        return 0
    import torch

    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {args.threads} threads, float32 batch {shape}, median of {args.rounds}")
    print(f"load average {os.getloadavg()[0]:.1f}; wall = median wall time, cpu = median process CPU time (ms)")
    print(f"{'job':10s} {'call wall':>10s} {'call cpu':>9s} {'collate wall':>13s} {'collate cpu':>12s}")
    for job in args.jobs.split(","):
        row = {}
        for path in ("call",) if job == "floor" else ("call", "collate"):
            cmd = [sys.executable, __file__, "--job", job, "--path", path, "--shape", args.shape,
                   "--rounds", str(args.rounds), "--warmup", str(args.warmup), "--threads", str(args.threads)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            row[path] = json.loads(out.strip().splitlines()[-1])
        collate = row.get("collate", {"median_ms": float("nan"), "cpu_ms": float("nan")})
        print(f"{job:10s} {row['call']['median_ms']:10.2f} {row['call']['cpu_ms']:9.2f} "
              f"{collate['median_ms']:13.2f} {collate['cpu_ms']:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
