"""How low a per-sample MixUp call can go at small sizes: mixmask's call against hand-written loops of its work.

At 128x3x32x32 a call is mostly fixed cost (tens of small ops), not arithmetic. This script times, in one
process and interleaved (median µs of ``--rounds`` rounds of ``--calls`` calls each):

- ``timm batch``: timm's ``Mixup(mode='batch')``, one lam per batch, the flipped batch as partner, in place;
- ``mixmask``: ``MixUp(num_classes=K)``, per sample;
- ``same draws, bare``: the ops mixmask's call needs for the same draw, written out with no checks, no policy
  and no bookkeeping (a CPU generator; the same bytes as mixmask's call, checked before timing);
- ``numpy draws, bare``: the same loop with the Beta weights and the permutation drawn by numpy's
  ``Generator`` (other bytes: what a numpy stream would cost);
- ``data only``: the partner gather and the blend, no draw and no labels.

    python benchmarks/small_batch_floor.py --shape 128,3,32,32 --classes 1000
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch

from mixmask import MixUp
from mixmask.functional.sampling import _sample_lam


def _targets(labels: np.ndarray, partners: np.ndarray, weights: np.ndarray, classes: int) -> torch.Tensor:
    """``(B, K)`` float32: ``w`` at the own class, ``1 - w`` at the partner's (1 where they are one class)."""
    out = torch.zeros((labels.shape[0], classes))
    values, rows, partner = out.numpy(), np.arange(labels.shape[0]), labels[partners]
    values[rows, labels] = weights
    values[rows, partner] = np.where(labels == partner, np.float32(1.0), np.float32(1.0) - weights)
    return out


def _blend(x: torch.Tensor, partners: np.ndarray, weights: np.ndarray) -> torch.Tensor:
    out = torch.index_select(x, 0, torch.from_numpy(partners), out=torch.empty_like(x))
    return torch.lerp(out, x, torch.from_numpy(weights).view(-1, *(1,) * (x.ndim - 1)), out=out)


def same_draws(x: torch.Tensor, labels: torch.Tensor, classes: int, generator: torch.Generator):
    """MixUp's draw in mixmask's order (partners, apply coins, Beta weights) and its writes, nothing else."""
    b = x.shape[0]
    order = torch.randperm(b, generator=generator).numpy()
    partners = np.empty_like(order)
    partners[order] = np.concatenate((order[1:], order[:1]))
    torch.rand(b, generator=generator, dtype=torch.float64)  # the apply coins (p = 1: all applied)
    weights = _sample_lam(b, 1.0, generator).numpy().astype(np.float32)
    return _blend(x, partners, weights), _targets(labels.numpy(), partners, weights, classes)


def numpy_draws(x: torch.Tensor, labels: torch.Tensor, classes: int, rng: np.random.Generator):
    """The same loop with numpy's Generator drawing the weights and the permutation."""
    b = x.shape[0]
    order = rng.permutation(b)
    partners = np.empty_like(order)
    partners[order] = np.concatenate((order[1:], order[:1]))
    weights = rng.beta(1.0, 1.0, b).astype(np.float32)
    return _blend(x, partners, weights), _targets(labels.numpy(), partners, weights, classes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="128,3,32,32", help="B,C,H,W of the float32 batch")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from timm.data import Mixup

    shape = tuple(int(v) for v in args.shape.split(","))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g)
    labels = torch.randint(0, args.classes, (shape[0],), generator=g)

    mix = MixUp(num_classes=args.classes, seed=0)
    draw = mix.sample(x, labels, generator=torch.Generator().manual_seed(1))
    expected = mix.apply(draw, x, labels)
    got = same_draws(x, labels, args.classes, torch.Generator().manual_seed(1))
    if not (torch.equal(got[0], expected.inputs) and torch.equal(got[1], expected.targets)):
        raise SystemExit("the bare loop does not give mixmask's bytes: it no longer does the same work")

    timm_mix = Mixup(mixup_alpha=1.0, cutmix_alpha=0.0, mode="batch", num_classes=args.classes, label_smoothing=0.0)
    timm_x, gen, rng = x.clone(), torch.Generator().manual_seed(2), np.random.default_rng(2)
    perm, weights = np.roll(np.arange(shape[0]), 1), np.full(shape[0], 0.5, dtype=np.float32)
    rows = {
        "timm batch": lambda: timm_mix(timm_x, labels),
        "mixmask": lambda: mix(x, labels),
        "same draws, bare": lambda: same_draws(x, labels, args.classes, gen),
        "numpy draws, bare": lambda: numpy_draws(x, labels, args.classes, rng),
        "data only": lambda: _blend(x, perm, weights),
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    faults = dict.fromkeys(rows, 0)
    for _ in range(args.rounds):
        for name, call in rows.items():
            for _ in range(20):
                call()
            laps, before = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(args.calls):
                start = time.perf_counter()
                call()
                laps.append(time.perf_counter() - start)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
            times[name].append(statistics.median(laps) * 1e6)
    print(f"shape {args.shape}, K={args.classes}, {args.threads} threads, median of {args.rounds} rounds x "
          f"{args.calls} calls")
    base = statistics.median(times["timm batch"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:20s} {median:8.0f} µs  x timm batch {median / base:5.2f}  "
              f"{faults[name] / (args.rounds * args.calls):8.1f} page faults/call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
