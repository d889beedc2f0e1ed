"""Share of a segmentation training step that mixing costs: soft targets against pair targets.

One training step of a U-Net (forward, loss, backward, SGD step) on a batch of B images of side S with
K classes, in one process: without mixing, then with each method mixing the batch and its id maps
inside the step — with ``(B, K, S, S)`` soft targets where the mask is soft, and with pair targets
(``target_format="pair"``: own ids, partner ids, the mask). Timed in interleaved rounds (each
configuration once per round, fastest-of-median per configuration), so drifting machine load hits
every configuration alike. The overhead is ``step with mixing / step without - 1``.

    .venv/bin/python benchmarks/segmentation_step.py --batch 8 --classes 21 --size 256 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from mixmask import (ClassMix, CutMix, Cutout, FMix, GridMask, GridMix, MixUp, RandomChoice, ResizeMix, SaliencyMix,
                     SmoothMix, mixed_cross_entropy)
from mixmask.train.models import build_model

IGNORE = 255


def _methods(classes: int, target_format: str):
    common = {"num_classes": classes, "ignore_index": IGNORE, "seed": 0, "target_format": target_format}
    return {
        "mixup": MixUp(**common), "cutmix": CutMix(**common), "fmix": FMix(**common),
        "gridmask": GridMask(**common), "choice": RandomChoice([MixUp(), CutMix(), FMix()], **common),
        "resizemix": ResizeMix(**common), "saliencymix": SaliencyMix(**common), "smoothmix": SmoothMix(**common),
        "gridmix": GridMix(**common), "cutout": Cutout(**common), "classmix": ClassMix(**common),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--classes", type=int, default=21)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--width", type=int, default=8, help="channels of the U-Net's first stage")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--methods", default="mixup,cutmix,fmix,gridmask,choice",
                        help="also: resizemix, saliencymix, smoothmix, gridmix, cutout, classmix")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(f"unet:width={args.width}", (3, args.size, args.size), args.classes, "segmentation")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, 3, args.size, args.size, generator=g)
    maps = torch.randint(0, args.classes, (args.batch, args.size, args.size), generator=g)
    maps[:, :8] = IGNORE

    def step(mix):
        x, target = (images, maps) if mix is None else mix(images, masks=maps)
        loss = mixed_cross_entropy(model(x), target, ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    configs = {"none": None}
    for target_format in ("soft", "pair"):
        for name, mix in _methods(args.classes, target_format).items():
            if name in args.methods.split(","):
                configs[f"{name} {target_format}"] = mix
    for mix in configs.values():  # warm-up: first calls fill caches and the allocator
        step(mix)
    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, mix in configs.items():
            start = time.perf_counter()
            step(mix)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(v) * 1e3 for name, v in times.items()}
    result = {"config": vars(args), "load": os.getloadavg(), "step_ms": medians,
              "overhead": {name: medians[name] / medians["none"] - 1 for name in medians if name != "none"}}
    for name, ms in medians.items():
        extra = "" if name == "none" else f"  {100 * result['overhead'][name]:+.1f} %"
        print(f"{name:16s} {ms:9.1f} ms{extra}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
