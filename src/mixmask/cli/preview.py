"""``mixmask preview``: a PNG of every method's masks and mixed images."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixmask.cli.labels import add_label_arguments
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
                                   description="Draw masks and mixed images for each method on bundled photos, "
                                   "your own images or mnist1d signals (classification), or on images of shapes or "
                                   "your own images and maps (segmentation), and write them as one PNG.")
    parser.add_argument("--task", choices=("classification", "segmentation"), default="classification",
                        help="classification: photos and masks; segmentation: images, id maps and mixed maps")
    parser.add_argument("--methods", type=_methods, default=None, help="comma-separated (default: all; with "
                        "--data mnist1d: mixup,cutmix,fmix,gridmask, the methods a 1-D preview draws)")
    parser.add_argument("--images", nargs="+", metavar="FILE", help="your own image files (default: bundled "
                        "photos, or shapes for segmentation)")
    parser.add_argument("--masks", nargs="+", metavar="FILE", help="segmentation: the maps of --images, in the "
                        "same order (PNG ids, palette, or colours with --colors)")
    parser.add_argument("--data", metavar="NAME", help="classification: --count real training signals of this "
                        f"data set instead of photos, drawn as 1-D curves with each mixed sample's label weights "
                        f"({', '.join(SIGNAL_DATA)}); segmentation: seg-folder:DIR, images and maps from a folder in "
                        "any layout (VOC, CamVid, Cityscapes, ADE20K, mixmask's)")
    parser.add_argument("--count", type=int, default=None, help="samples per row (classification, default 4); "
                        "samples shown per method (segmentation, default 1)")
    parser.add_argument("--size", type=int, default=224, help="side of the square images (default: 224; about 100 "
                        "bytes of memory per pixel of the batch, checked before anything is drawn)")
    parser.add_argument("--alpha", type=float, default=1.0, help="Beta(alpha, alpha) of lam (default: 1)")
    parser.add_argument("--decay-power", type=float, default=3.0, help="FMix spectrum decay (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/preview.png", help="PNG path (default: out/preview.png)")
    add_label_arguments(parser, what="segmentation with --data or --masks")
    parser.set_defaults(func=run)


#: Peak memory of a preview per pixel of its batch (count x size x size), measured: about 90 bytes for
#: classification (4 photos of 1024 and 2048 pixels a side) and 80 for segmentation; rounded up.
BYTES_PER_PIXEL = 100


def _own_maps(args: argparse.Namespace):
    """``(images, maps, colors, names, ignore_index)`` of the user's data, resized to ``--size``."""
    import torch

    from mixmask.data.folders import ImageMaskFolder, palette_colors, read_image, read_mask
    from mixmask.data.joint import resize_pair
    from mixmask.data.labels import IGNORE_INDEX, read_class_names, read_colors, table_from_colors

    ignore = IGNORE_INDEX if args.ignore_index is None else args.ignore_index
    names = read_class_names(args.class_names) if args.class_names else None
    count = 1 if args.count is None else args.count
    if args.data is not None:
        kind, _, path = args.data.partition(":")
        if kind != "seg-folder" or not path:
            raise MixMaskError(f"--data: expected seg-folder:DIR, but got {args.data!r}")
        if args.images or args.masks:
            raise MixMaskError("--data and --images/--masks both give the samples: pass one of them")
        folder = ImageMaskFolder(path, args.colors, layout=args.layout, classes=names, ignore_index=ignore)
        order = torch.randperm(len(folder), generator=torch.Generator().manual_seed(args.seed))
        chosen = sorted(order[:min(len(folder), max(count, 4))].tolist())
        pairs = [folder[i] for i in chosen]
        pairs = [(p["image"], p["mask"]) for p in pairs]
        colors, names = folder.palette, folder.classes
    else:
        if not args.masks or len(args.masks) != len(args.images):
            raise MixMaskError(f"--masks: expected one map per --images file ({len(args.images)}), but got "
                               f"{len(args.masks or [])}")
        lookup, table_names = read_colors(args.colors) if args.colors else (None, None)
        table = table_from_colors(lookup, table_names, ignore) if lookup else None
        pairs, mismatched = [], []
        for image_path, mask_path in zip(args.images, args.masks):
            image, ids = read_image(image_path), read_mask(mask_path, lookup)
            if tuple(image.shape[1:]) != tuple(ids.shape):
                mismatched.append(f"{image_path!r} is {image.shape[2]}x{image.shape[1]} but {mask_path!r} is "
                                  f"{ids.shape[1]}x{ids.shape[0]}")
            pairs.append((image, ids))
        if mismatched:
            raise MixMaskError("image and map sizes differ (width x height): " + "; ".join(mismatched))
        colors = table.colors if table else palette_colors(Path(args.masks[0]))  # a palette PNG's own colours
        names = names or (table.names if table else None)
    if len(pairs) < 2:
        raise MixMaskError(f"expected at least 2 image/map pairs to mix, but got {len(pairs)}")
    if args.num_classes is not None:
        names = list(names or [str(i) for i in range(args.num_classes)])
        if len(names) != args.num_classes:
            raise MixMaskError(f"--num-classes {args.num_classes} does not match the {len(names)} class names")
    resized = [resize_pair(image, ids, args.size) for image, ids in pairs]
    return (torch.stack([r[0] for r in resized]), torch.stack([r[1] for r in resized]), colors, names, ignore,
            min(count, len(pairs)))


def run(args: argparse.Namespace) -> int:
    from mixmask.functional._checks import check_int
    from mixmask.resources import check_memory, check_writable

    check_int("--seed", args.seed, low=0)
    if args.size < 8:
        raise MixMaskError(f"--size must be at least 8, but got {args.size}")
    if args.count is not None and args.count < 1:
        raise MixMaskError(f"--count must be at least 1, but got {args.count}")
    if args.task == "classification" and args.masks:
        raise MixMaskError("--masks is for --task segmentation")
    if args.data is not None:
        _check_data(args)
    count = 4 if args.count is None else args.count
    if count < 2 and args.task == "classification" and not args.images:
        raise MixMaskError(f"--count must be at least 2 (images to mix), but got {args.count}")
    check_writable(args.out, "--out", folder=False)
    batch = max(4, count) if args.task == "segmentation" else (len(args.images) if args.images else count)
    check_memory(BYTES_PER_PIXEL * batch * args.size ** 2, f"--size {args.size} ({batch} images of "
                 f"{args.size}x{args.size})", "choose a smaller --size")
    if args.task == "classification" and args.data is not None:
        from mixmask.viz.previews import SIGNAL_METHODS

        other = [m for m in args.methods or () if m not in SIGNAL_METHODS]
        if other:
            raise MixMaskError(f"--data {args.data} previews {','.join(SIGNAL_METHODS)}, but got --methods "
                               f"{','.join(other)}")
        args.methods = args.methods or SIGNAL_METHODS
        return _signals(args, count)
    args.methods = args.methods or METHODS
    if args.task == "segmentation":
        from mixmask.viz.segmentation import save_segmentation_preview

        if args.data is not None or args.images or args.masks:
            images, maps, colors, names, ignore, count = _own_maps(args)
            path = save_segmentation_preview(args.out, methods=args.methods, seed=args.seed, images=images, maps=maps,
                                             colors=colors, class_names=names, ignore_index=ignore, count=count)
        else:
            path = save_segmentation_preview(args.out, methods=args.methods, seed=args.seed, size=args.size,
                                             count=1 if args.count is None else args.count,
                                             **({"ignore_index": args.ignore_index} if args.ignore_index is not None
                                                else {}))
    else:
        from mixmask.data.photos import load_photos, sample_photos
        from mixmask.viz.previews import save_classification_preview

        images = load_photos(args.images, args.size) if args.images else sample_photos(count, args.size)
        if images.shape[0] < 2:
            raise MixMaskError(f"expected at least 2 images to mix, but got {images.shape[0]}")
        path = save_classification_preview(args.out, images, methods=args.methods, seed=args.seed,
                                           alpha=args.alpha, decay_power=args.decay_power)
    print(path)
    return 0


def _check_data(args: argparse.Namespace) -> None:
    """``--data``: a signal data set for classification, ``seg-folder:DIR`` for segmentation."""
    if args.data in SIGNAL_DATA:
        if args.task != "classification" or args.images:
            raise MixMaskError(f"--data {args.data} previews classification signals; drop --images and --task "
                               f"{args.task}" if args.images else f"--data {args.data} is a classification data set, "
                               f"but got --task {args.task}")
    elif args.task == "classification":
        raise MixMaskError(f"--data: expected one of {', '.join(SIGNAL_DATA)} (classification), or seg-folder:DIR "
                           f"with --task segmentation, but got {args.data!r}")


def _signals(args: argparse.Namespace, count: int) -> int:
    """``--data mnist1d``: ``--count`` training signals (seeded choice), mixed by each method, as curves."""
    import torch

    from mixmask.data.classification import load_mnist1d
    from mixmask.viz.previews import save_signal_preview

    data = load_mnist1d()
    inputs, labels = data.train.inputs, data.train.targets
    chosen = torch.randperm(len(labels), generator=torch.Generator().manual_seed(args.seed))[:count]
    path = save_signal_preview(args.out, inputs[chosen], labels[chosen], methods=args.methods, seed=args.seed,
                               alpha=args.alpha, decay_power=args.decay_power,
                               title=f"mixmask preview: {count} mnist1d training signals (seed {args.seed}); own "
                               "x[i] blue, partner orange, mixed black; shading: mask keeps x[i] (blue) / takes "
                               "x[j[i]] (orange); titles: label weights")
    print(path)
    return 0
