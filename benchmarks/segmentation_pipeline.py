"""Images/s of a segmentation input pipeline with and without mixing.

Loading PNGs (ImageMaskFolder) + joint v2 transforms (crop, flip, rotation, colour jitter) +
collation in DataLoader workers, then the same with each mixing method inside the collate
(MixCollate, in place). Loaders are kept alive across epochs and timed in interleaved rounds
(the median epoch of each is reported), so worker start-up and drifting machine load do not
favour one configuration.

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

from mixmask import CutMix, FMix, GridMask, MixCollate, MixUp, RandomChoice
from mixmask.data import IGNORE_INDEX, ImageMaskFolder, ShapesDataset, joint_transforms, write_shapes

K = ShapesDataset.num_classes


def _methods(validate):
    common = {"ignore_index": IGNORE_INDEX, "seed": 0, "validate": validate}
    return {
        "cutmix": CutMix(**common),
        "fmix": FMix(**common),
        "gridmask": GridMask(**common),
        "mixup": MixUp(num_classes=K, **common),
        "choice": RandomChoice([CutMix(), FMix(), GridMask()], **common),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=256, help="images per epoch")
    parser.add_argument("--size", type=int, default=256, help="side of the images on disk and after the crop")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per configuration")
    parser.add_argument("--methods", default="cutmix,fmix,gridmask,mixup,choice")
    parser.add_argument("--mask-dtype", choices=("int64", "uint8"), default="int64", help="dtype of the id maps")
    parser.add_argument("--no-validate", action="store_true",
                        help="skip the id range check of each mixed batch (validate=False)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the workers do the work; keep the main process out of their way

    validate = False if args.no_validate else None
    methods = {name: t for name, t in _methods(validate).items() if name in args.methods.split(",")}
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

    base = images / statistics.median(times["none"])
    results = {"config": vars(args), "images_per_s": {}, "overhead_pct": {}}
    print(f"{images} images of {args.size}x{args.size} per epoch, batch {args.batch_size}, {args.workers} workers, "
          f"{args.mask_dtype} maps, validate={validate}, median of {args.rounds} epochs")
    print(f"{'mixing':<10}{'images/s':>10}{'overhead':>10}{'min..max images/s':>22}")
    for name, epochs in times.items():
        rate = images / statistics.median(epochs)
        overhead = 100 * (base / rate - 1)
        results["images_per_s"][name] = round(rate, 1)
        results["overhead_pct"][name] = round(overhead, 1)
        spread = f"{images / max(epochs):.0f}..{images / min(epochs):.0f}"
        print(f"{name:<10}{rate:>10.1f}{overhead:>9.1f}%{spread:>22}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
