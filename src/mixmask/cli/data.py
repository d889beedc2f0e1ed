"""``mixmask data``: write the embedded shapes data set to disk, or check an image/mask folder."""

from __future__ import annotations

import argparse


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
                               description="Pair the images and masks of a folder (xyz.jpg|png + xyz_mask.png, or "
                               "images/ + masks/), decode them all and report every problem with its file.")
    check.add_argument("root", metavar="DIR")
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
    import torch

    from mixmask.data.folders import ImageMaskFolder

    data = ImageMaskFolder(args.root, verify=True)  # every problem of the folder in one error
    ids = torch.unique(torch.cat([data[i]["mask"].unique() for i in range(len(data))]))
    print(f"{len(data)} image/mask pairs in {data.root} ({data.layout} layout), ids: {ids.tolist()}")
    return 0
