"""``mixmask data``: write the embedded shapes data set to disk, or check an image/mask folder."""

from __future__ import annotations

import argparse

from mixmask.cli.labels import add_label_arguments


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="write the shapes segmentation data set, check a folder",
                                   description="Data sets on disk: write the embedded shapes segmentation data "
                                   "set, or check that a folder of images and masks reads.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    shapes = actions.add_parser("shapes", help="write images of shapes and their id maps as PNG files",
                                description="Write N images of shapes (xyz.png) with their id maps (xyz_mask.png, "
                                "palette PNGs: 0 background, 1 rectangle, 2 ellipse, 3 triangle), "
                                "deterministic by seed.")
    shapes.add_argument("--out", required=True, metavar="DIR", help="folder to write into (created)")
    shapes.add_argument("--count", type=int, default=100, help="number of images (default: 100)")
    shapes.add_argument("--size", type=int, default=128, help="side of the square images (default: 128)")
    shapes.add_argument("--seed", type=int, default=0, help="seed of the data set (default: 0)")
    shapes.add_argument("--layout", choices=("flat", "split"), default="flat",
                        help="flat: xyz.png + xyz_mask.png; split: images/xyz.png + masks/xyz.png (default: flat)")
    shapes.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty, replacing "
                        "files of the same names")
    shapes.set_defaults(func=run_shapes)
    check = actions.add_parser("check", help="read every image and mask of a folder and report problems",
                               description="Find the folder's layout (Pascal VOC, CamVid, Cityscapes, ADE20K, or "
                               "mixmask's xyz.png + xyz_mask.png / images/ + masks/), pair its images and masks, "
                               "decode them all, and report the pairs per split, the classes present with their "
                               "pixel shares, and every problem with its file (exit code 2 if there is one).")
    check.add_argument("root", metavar="DIR")
    check.add_argument("--split", default=None, help="check only this split (train, val...; default: all)")
    add_label_arguments(check, what="what the masks mean")
    check.set_defaults(func=run_check)


#: Peak memory of rendering and writing one shapes image, per pixel (measured: about 100 bytes at 4096x4096).
SHAPES_BYTES_PER_PIXEL = 128


def run_shapes(args: argparse.Namespace) -> int:
    from mixmask.data.shapes import SHAPE_CLASSES, write_shapes
    from mixmask.resources import check_memory, check_writable

    check_writable(args.out, "--out", folder=True)
    check_memory(SHAPES_BYTES_PER_PIXEL * args.size ** 2, f"--size {args.size} (one {args.size}x{args.size} image "
                 "at a time)", "choose a smaller --size")
    out = write_shapes(args.out, args.count, args.size, args.seed, layout=args.layout, overwrite=args.overwrite)
    print(f"wrote {args.count} images of {args.size}x{args.size} and their id maps to {out} "
          f"(classes: {', '.join(f'{i} {n}' for i, n in enumerate(SHAPE_CLASSES))})")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from mixmask.data.folders import check_folder
    from mixmask.data.labels import IGNORE_INDEX, read_class_names
    from mixmask.errors import MixMaskError

    names = read_class_names(args.class_names) if args.class_names else None
    report = check_folder(args.root, args.colors, layout=args.layout, split=args.split, classes=names,
                          ignore_index=IGNORE_INDEX if args.ignore_index is None else args.ignore_index,
                          num_classes=args.num_classes)
    print("\n".join(report.lines()), flush=True)
    if report.problems:
        raise MixMaskError(f"{len(report.problems)} problem(s) in {args.root!r}: " + "; ".join(report.problems))
    return 0
