"""Time and peak memory of FMix grey images (and masks) per spatial shape, one fresh process per shape.

Each shape runs in its own process with a cap on its address space (``--limit-gib``), so a shape that
needs more memory than that fails cleanly instead of pushing the machine into swap or the OOM killer.
Reported per shape: the first call (which fills the caches), the median of ``--rounds`` later calls,
and the peak resident memory the calls added to the process (``ru_maxrss`` after minus before).
``--src`` imports mixmask from another source tree (e.g. an older commit unpacked with ``git archive``),
so two versions can be measured in the same run:

    git archive <commit> src | tar -x -C /tmp/before
    .venv/bin/python benchmarks/fmix_shapes.py --src /tmp/before/src
    .venv/bin/python benchmarks/fmix_shapes.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

DEFAULT_SHAPES = "256x256,16x4096,4x16384,2x2x16384"


def run_shape(shape: tuple[int, ...], batch: int, decay_power: float, rounds: int, masks: bool) -> dict:
    """Time ``batch`` grey images (or masks) of ``shape`` in this process."""
    import resource
    import statistics
    import time

    import torch

    from mixmask.functional import fmix_grey_images, fmix_masks

    generator = torch.Generator().manual_seed(0)
    lam = torch.rand(batch, generator=generator, dtype=torch.float64)

    def call():
        if masks:
            return fmix_masks(lam, shape, generator, decay_power=decay_power)[0]
        return fmix_grey_images(batch, shape, decay_power, generator)

    fmix_grey_images(2, (8, 8), decay_power, generator)  # import-time and first-call costs of torch itself
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    try:
        for _ in range(1 + rounds):
            start = time.perf_counter()
            out = call()
            times.append((time.perf_counter() - start) * 1e3)
            del out
    except (RuntimeError, MemoryError, ValueError) as error:
        return {"status": "error", "error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}",
                "calls_done": len(times)}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"status": "ok", "first_ms": times[0], "median_ms": statistics.median(times[1:]) if rounds else None,
            "peak_added_mib": (peak - rss_before) / 1024}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="comma-separated, e.g. 256x256,16x4096")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--decay-power", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5, help="calls after the first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--masks", action="store_true", help="time fmix_masks (grey images + threshold)")
    parser.add_argument("--limit-gib", type=float, default=8.0, help="address-space cap of each process")
    parser.add_argument("--src", default=None, help="import mixmask from this source folder")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        import resource

        limit = int(args.limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        import torch

        torch.set_num_threads(args.threads)
        shape = tuple(int(n) for n in args.child.split("x"))
        print(json.dumps(run_shape(shape, args.batch, args.decay_power, args.rounds, args.masks)))
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if args.src:
        env["PYTHONPATH"] = os.path.abspath(args.src) + os.pathsep + env.get("PYTHONPATH", "")
    results = {}
    for text in args.shapes.split(","):
        command = [sys.executable, __file__, "--child", text, "--batch", str(args.batch), "--decay-power",
                   str(args.decay_power), "--rounds", str(args.rounds), "--threads", str(args.threads),
                   "--limit-gib", str(args.limit_gib)] + (["--masks"] if args.masks else [])
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            result = {"status": "error", "error": tail[:200]}
        else:
            result = json.loads(lines[-1])
        results[text] = result
        if result["status"] == "ok":
            print(f"{text:>12}: first {result['first_ms']:9.1f} ms, median {result['median_ms'] or 0:9.1f} ms, "
                  f"peak +{result['peak_added_mib']:7.1f} MiB", flush=True)
        else:
            print(f"{text:>12}: {result['error']}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "child"}, "results": results}, f,
                      indent=1)


if __name__ == "__main__":
    main()
