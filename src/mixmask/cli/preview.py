"""``mixmask preview``: a PNG of every method's masks and mixed images."""

from __future__ import annotations

import argparse

from mixmask.errors import MixMaskError
from mixmask.functional.params import METHODS as _IDS

METHODS = _IDS[1:]
#: ``--data`` values: 1-D data sets of ``mixmask train`` whose real signals can be previewed.
SIGNAL_DATA = ("mnist1d",)


def _methods(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(METHODS)}, got {text!r}")
    return names


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("preview", help="write a PNG of masks and mixed batches",
                                   description="Draw masks and mixed images for each method on bundled photos "
                                   "(or your own images / segmentation shapes) and write them as one PNG.")
    parser.add_argument("--task", choices=("classification", "segmentation"), default="classification",
                        help="classification: photos and masks; segmentation: images, id maps and mixed maps")
    parser.add_argument("--methods", type=_methods, default=None, help="comma-separated (default: all; with "
                        "--data: mixup,cutmix,fmix,gridmask, the methods a 1-D preview draws)")
    parser.add_argument("--images", nargs="+", metavar="FILE", help="your own image files (default: bundled photos)")
    parser.add_argument("--data", default=None, choices=SIGNAL_DATA, help="classification: --count real training "
                        "signals of this data set instead of photos, drawn as 1-D curves with each mixed sample's "
                        "label weights (mnist1d)")
    parser.add_argument("--count", type=int, default=4, help="samples per row (default: 4)")
    parser.add_argument("--size", type=int, default=224, help="side of the square images (default: 224; about 100 "
                        "bytes of memory per pixel of the batch, checked before anything is drawn)")
    parser.add_argument("--alpha", type=float, default=1.0, help="Beta(alpha, alpha) of lam (default: 1)")
    parser.add_argument("--decay-power", type=float, default=3.0, help="FMix spectrum decay (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/preview.png", help="PNG path (default: out/preview.png)")
    parser.set_defaults(func=run)


#: Peak memory of a preview per pixel of its batch (count x size x size), measured: about 90 bytes for
#: classification (4 photos of 1024 and 2048 pixels a side) and 80 for segmentation; rounded up.
BYTES_PER_PIXEL = 100


def run(args: argparse.Namespace) -> int:
    from mixmask.resources import check_memory, check_writable

    if args.size < 8:
        raise MixMaskError(f"--size must be at least 8, but got {args.size}")
    if args.count < 2 and args.task == "classification" and not args.images:
        raise MixMaskError(f"--count must be at least 2 (images to mix), but got {args.count}")
    check_writable(args.out, "--out", folder=False)
    count = 4 if args.task == "segmentation" else (len(args.images) if args.images else args.count)
    check_memory(BYTES_PER_PIXEL * count * args.size ** 2, f"--size {args.size} ({count} images of "
                 f"{args.size}x{args.size})", "choose a smaller --size")
    if args.data is not None:
        if args.task != "classification" or args.images:
            raise MixMaskError(f"--data {args.data} previews classification signals; drop --images and --task "
                               f"{args.task}" if args.images else f"--data {args.data} is a classification data set, "
                               f"but got --task {args.task}")
        from mixmask.viz.previews import SIGNAL_METHODS

        other = [m for m in args.methods or () if m not in SIGNAL_METHODS]
        if other:
            raise MixMaskError(f"--data {args.data} previews {','.join(SIGNAL_METHODS)}, but got --methods "
                               f"{','.join(other)}")
        args.methods = args.methods or SIGNAL_METHODS
        return _signals(args)
    args.methods = args.methods or METHODS
    if args.task == "segmentation":
        from mixmask.viz.segmentation import save_segmentation_preview

        path = save_segmentation_preview(args.out, methods=args.methods, seed=args.seed, size=args.size)
    else:
        from mixmask.data.photos import load_photos, sample_photos
        from mixmask.viz.previews import save_classification_preview

        images = load_photos(args.images, args.size) if args.images else sample_photos(args.count, args.size)
        if images.shape[0] < 2:
            raise MixMaskError(f"expected at least 2 images to mix, but got {images.shape[0]}")
        path = save_classification_preview(args.out, images, methods=args.methods, seed=args.seed,
                                           alpha=args.alpha, decay_power=args.decay_power)
    print(path)
    return 0


def _signals(args: argparse.Namespace) -> int:
    """``--data mnist1d``: ``--count`` training signals (seeded choice), mixed by each method, as curves."""
    import torch

    from mixmask.data.classification import load_mnist1d
    from mixmask.viz.previews import save_signal_preview

    data = load_mnist1d()
    inputs, labels = data.train.inputs, data.train.targets
    chosen = torch.randperm(len(labels), generator=torch.Generator().manual_seed(args.seed))[:args.count]
    path = save_signal_preview(args.out, inputs[chosen], labels[chosen], methods=args.methods, seed=args.seed,
                               alpha=args.alpha, decay_power=args.decay_power,
                               title=f"mixmask preview: {args.count} mnist1d training signals (seed {args.seed}); own "
                               "x[i] blue, partner orange, mixed black; shading: mask keeps x[i] (blue) / takes "
                               "x[j[i]] (orange); titles: label weights")
    print(path)
    return 0
