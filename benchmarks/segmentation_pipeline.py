"""Images/s of a segmentation input pipeline with and without mixing.

Loading PNGs (ImageMaskFolder) + joint v2 transforms (crop, flip, rotation, colour jitter) +
collation in DataLoader workers, then the same with each mixing method inside the collate
(MixCollate, in place), with soft targets and with pair targets (``target_format="pair"``: own ids,
partner ids and the mask instead of ``(B, K, *S)`` soft maps). Loaders are kept alive across epochs and timed in interleaved rounds
(the median epoch of each is reported), so worker start-up and drifting machine load do not
favour one configuration. Then the same work in one process and one thread, step by step (fastest
of ``--repeats`` calls, robust on a shared machine): per image, loading and the joint transform; per
batch, collation and each mixing collate; the overhead is the extra time of a mixing collate over
plain collation, relative to the work of a whole batch.

    .venv/bin/python benchmarks/segmentation_pipeline.py --count 256 --size 256 --workers 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch
from torch.utils.data import DataLoader, default_collate

from mixmask import (ClassMix, CutMix, Cutout, FMix, GridMask, GridMix, MixCollate, MixUp, RandomChoice, ResizeMix,
                     SaliencyMix, SmoothMix)
from mixmask.data import IGNORE_INDEX, ImageMaskFolder, ShapesDataset, joint_transforms, write_shapes

K = ShapesDataset.num_classes


def _methods(validate, target_format):
    common = {"ignore_index": IGNORE_INDEX, "seed": 0, "validate": validate, "target_format": target_format}
    return {
        "cutmix": CutMix(**common),
        "fmix": FMix(**common),
        "gridmask": GridMask(**common),
        "mixup": MixUp(num_classes=K, **common),
        "choice": RandomChoice([CutMix(), FMix(), GridMask()], **common),
        "resizemix": ResizeMix(**common),
        "saliencymix": SaliencyMix(**common),
        "smoothmix": SmoothMix(num_classes=K, **common),
        "gridmix": GridMix(**common),
        "cutout": Cutout(**common),
        "classmix": ClassMix(**common),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=256, help="images per epoch")
    parser.add_argument("--size", type=int, default=256, help="side of the images on disk and after the crop")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per configuration")
    parser.add_argument("--methods", default="cutmix,fmix,gridmask,mixup,choice",
                        help="also: resizemix, saliencymix, smoothmix, gridmix, cutout, classmix")
    parser.add_argument("--mask-dtype", choices=("int64", "uint8"), default="int64", help="dtype of the id maps")
    parser.add_argument("--no-validate", action="store_true",
                        help="skip the id range check of each mixed batch (validate=False)")
    parser.add_argument("--repeats", type=int, default=7, help="calls per step in the one-process breakdown")
    parser.add_argument("--target-formats", default="soft,pair",
                        help="soft: ids or (B, K, *S) soft maps; pair: own ids, partner ids and the mask")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the workers do the work; keep the main process out of their way

    validate = False if args.no_validate else None
    methods = {f"{name}" if fmt == "soft" else f"{name}-pair": t for fmt in args.target_formats.split(",")
               for name, t in _methods(validate, fmt).items() if name in args.methods.split(",")}
    with tempfile.TemporaryDirectory() as root:
        write_shapes(root, count=args.count, size=args.size, seed=0)
        data = ImageMaskFolder(root, transform=joint_transforms(args.size, seed=0),
                               mask_dtype=getattr(torch, args.mask_dtype))
        collates = {"none": default_collate}
        collates.update({name: MixCollate(t, targets="masks", seed=0) for name, t in methods.items()})
        loaders = {name: DataLoader(data, batch_size=args.batch_size, num_workers=args.workers, collate_fn=fn,
                                    persistent_workers=args.workers > 0, drop_last=True,
                                    generator=torch.Generator().manual_seed(0))
                   for name, fn in collates.items()}
        for loader in loaders.values():  # warm-up epoch: workers started, caches filled
            for _ in loader:
                pass
        times: dict[str, list[float]] = {name: [] for name in loaders}
        images = (args.count // args.batch_size) * args.batch_size
        for _ in range(args.rounds):
            for name, loader in loaders.items():
                start = time.perf_counter()
                for batch in loader:
                    pass
                times[name].append(time.perf_counter() - start)
        del loaders
        breakdown = _breakdown(data, collates, args)

    base = images / statistics.median(times["none"])
    results = {"config": vars(args), "images_per_s": {}, "overhead_pct": {}}
    print(f"{images} images of {args.size}x{args.size} per epoch, batch {args.batch_size}, {args.workers} workers, "
          f"{args.mask_dtype} maps, validate={validate}, median of {args.rounds} epochs")
    print(f"{'mixing':<14}{'images/s':>10}{'overhead':>10}{'min..max images/s':>22}")
    for name, epochs in times.items():
        rate = images / statistics.median(epochs)
        overhead = 100 * (base / rate - 1)
        results["images_per_s"][name] = round(rate, 1)
        results["overhead_pct"][name] = round(overhead, 1)
        spread = f"{images / max(epochs):.0f}..{images / min(epochs):.0f}"
        print(f"{name:<14}{rate:>10.1f}{overhead:>9.1f}%{spread:>22}")
    print(f"one process, one thread, fastest of {args.repeats}: load {breakdown['load_ms']:.1f} ms + joint "
          f"transform {breakdown['transform_ms']:.1f} ms per image; per batch of {args.batch_size}:")
    for name, ms in breakdown["collate_ms"].items():
        print(f"  {name:<14}{ms:>8.1f} ms  overhead {breakdown['overhead_pct'][name]:5.1f}%")
    results["breakdown"] = breakdown
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


def _fastest(fn, repeats: int) -> float:
    """Fastest of ``repeats`` calls of ``fn``, in ms."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def _breakdown(data: ImageMaskFolder, collates: dict, args: argparse.Namespace) -> dict:
    """Per-step costs in this process: load and transform per image, each collate per batch."""
    from mixmask.data.folders import _to_tv

    raw = data.transform
    data.transform = None
    load = _fastest(lambda: data[0], args.repeats)
    sample = _to_tv(data[0])
    transform = _fastest(lambda: raw(sample), args.repeats)
    batch = [raw(_to_tv(data[i])) for i in range(args.batch_size)]
    data.transform = raw
    costs = {name: _fastest(lambda fn=fn: fn(batch), args.repeats) for name, fn in collates.items()}
    work = args.batch_size * (load + transform) + costs["none"]
    return {"load_ms": round(load, 2), "transform_ms": round(transform, 2),
            "collate_ms": {k: round(v, 2) for k, v in costs.items()},
            "overhead_pct": {k: round(100 * (v - costs["none"]) / work, 1) for k, v in costs.items()}}


if __name__ == "__main__":
    main()
