"""Options that say what a segmentation map means, shared by ``data check``, ``train``, ``compare`` and ``preview``."""

from __future__ import annotations

import argparse

__all__ = ["add_label_arguments"]

_LAYOUT_HELP = ("folder layout: auto (default: found from the folder), flat, split, voc, camvid, cityscapes, "
                "ade20k (docs/segmentation.md shows each)")


def add_label_arguments(parser: argparse.ArgumentParser, *, what: str = "seg-folder:PATH data") -> None:
    """Add ``--layout``, ``--colors``, ``--class-names``, ``--num-classes`` and ``--ignore-index``."""
    group = parser.add_argument_group(f"segmentation maps ({what})")
    group.add_argument("--layout", default="auto", help=_LAYOUT_HELP)
    group.add_argument("--colors", metavar="FILE", help="colour table of RGB masks: CSV name,r,g,b (CamVid's "
                       "class_dict.csv; row = id) or JSON [{\"name\", \"color\": [r, g, b], \"id\"}]; default: the "
                       "data set's own")
    group.add_argument("--class-names", metavar="FILE", help="class names, one per line (or a JSON list); "
                       "default: the data set's or the colour table's, else the ids")
    group.add_argument("--num-classes", type=int, metavar="K", help="number of classes (default: the data set's, "
                       "else the largest id found + 1)")
    group.add_argument("--ignore-index", type=int, metavar="N", help="id of unlabelled pixels, left out of the loss "
                       "and the metrics and drawn white (default 255; VOC borders, Cityscapes' non-train ids and "
                       "ADE20K's 'other' become it)")
