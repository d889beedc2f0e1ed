"""``--data shapes``, ``folder:PATH`` and ``seg-folder:PATH`` for ``mixmask train``.

Wraps :class:`mixmask.data.ShapesDataset`, :class:`mixmask.data.ClassFolder` and
:class:`mixmask.data.ImageMaskFolder` as a :class:`~mixmask.data.classification.ClassificationData`
with a held-out test split. Images are resized to ``IMAGE_SIZE`` x ``IMAGE_SIZE`` (maps with nearest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from mixmask.errors import MixMaskError

__all__ = ["IMAGE_SIZE", "SHAPES_SIZE", "load_folder_data"]

#: Side that ``folder:`` and ``seg-folder:`` images are resized to.
IMAGE_SIZE = 64
#: ``shapes``: side, training-pool and test counts (rendered once, kept in memory).
SHAPES_SIZE, SHAPES_TRAIN, SHAPES_TEST = 64, 1800, 200
_TEST_FRACTION = 0.2


class _ResizeImage:
    """Picklable transform for :class:`ClassFolder` items."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Tensor) -> Tensor:
        from mixmask.data.joint import resize_image

        return resize_image(image.as_subclass(Tensor), self.size)


class _Pairs(Dataset):
    """``{"image", "mask"}`` items as ``(image resized, mask resized with nearest)`` tuples."""

    def __init__(self, dataset: Dataset, size: int) -> None:
        self.dataset, self.size = dataset, size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        from mixmask.data.joint import resize_pair

        item = self.dataset[index]
        return resize_pair(item["image"], item["mask"], self.size)


def _split(n: int, targets: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    stratify = targets if targets is not None and np.bincount(targets).min(initial=n) >= 2 else None
    keep, held = train_test_split(np.arange(n), test_size=_TEST_FRACTION, random_state=0, stratify=stratify)
    return np.sort(keep), np.sort(held)


def _shapes(limit: int | None, test_limit: int | None = None, ignore_index: int | None = None):
    from mixmask.data import IGNORE_INDEX, ShapesDataset
    from mixmask.data.classification import ClassificationData, TensorData

    def render(count: int, seed: int) -> TensorData:
        data = ShapesDataset(count, size=SHAPES_SIZE, seed=seed)
        items = [data[i] for i in range(count)]
        return TensorData(torch.stack([it["image"] for it in items]), torch.stack([it["mask"] for it in items]))

    train_count = SHAPES_TRAIN if limit is None else min(SHAPES_TRAIN, limit)
    test_count = SHAPES_TEST if test_limit is None else min(SHAPES_TEST, test_limit)
    train, test = render(train_count, 0), render(test_count, 1)
    return ClassificationData("shapes", train, None, test, None, list(ShapesDataset.class_names),
                              (3, SHAPES_SIZE, SHAPES_SIZE), task="segmentation", scale=1 / 255, mean=[0.5] * 3,
                              std=[0.25] * 3, ignore_index=IGNORE_INDEX if ignore_index is None else ignore_index,
                              colors=list(ShapesDataset.colors))


def _class_folder(path: str):
    from mixmask.data import ClassFolder
    from mixmask.data.classification import ClassificationData

    folder = ClassFolder(path, transform=_ResizeImage(IMAGE_SIZE), verify=True)  # every bad file, before training
    if len(folder) < 4:
        raise MixMaskError(f"expected at least 4 images in the class sub-folders of {path!r}, but found {len(folder)}")
    targets = np.asarray(folder.targets, dtype=np.int64)
    keep, held = _split(len(folder), targets)
    channels = folder[0][0].shape[0]
    y = torch.as_tensor(targets)
    return ClassificationData(f"folder:{path}", Subset(folder, keep.tolist()), y[keep], Subset(folder, held.tolist()),
                              y[held], list(folder.classes), (channels, IMAGE_SIZE, IMAGE_SIZE), scale=1 / 255,
                              mean=[0.5] * channels, std=[0.25] * channels)


def _seg_folder(path: str, layout: str = "auto", colors: str | None = None, class_names: str | None = None,
                num_classes: int | None = None, ignore_index: int | None = None):
    """A ``seg-folder:`` data set: its own train/test splits when it has them, else 20 % held out.

    Every map is decoded once here, so unknown colours or values and ids beyond the classes stop
    the run before anything is written.
    """
    from mixmask.data import IGNORE_INDEX, ImageMaskFolder
    from mixmask.data.classification import ClassificationData
    from mixmask.data.folders import count_ids
    from mixmask.data.labels import read_class_names, voc_palette

    ignore = IGNORE_INDEX if ignore_index is None else ignore_index
    names = read_class_names(class_names) if class_names is not None else None
    if names is not None and num_classes is not None and len(names) != num_classes:
        raise MixMaskError(f"--class-names gives {len(names)} names, but --num-classes is {num_classes}")
    options = dict(colors=colors, layout=layout, classes=names, ignore_index=ignore)
    probe = ImageMaskFolder(path, **options)
    if num_classes is not None and probe.num_classes is not None and num_classes != probe.num_classes:
        raise MixMaskError(f"--num-classes {num_classes} does not match the {probe.num_classes} classes of the "
                           f"{probe.layout} data in {path!r}")
    own_splits = probe.train_split is not None and probe.test_split is not None
    parts = ([ImageMaskFolder(path, split=probe.train_split, **options),
              ImageMaskFolder(path, split=probe.test_split, **options)] if own_splits else [probe])
    counts, failures = [], []
    for part in parts:
        part_counts, _, part_failures = count_ids(part)  # images too: truncated files before training
        counts.append(part_counts)
        failures += part_failures
    top = max(len(c) for c in counts)
    if failures:
        raise MixMaskError(f"{len(failures)} map(s) in {path!r} failed to decode: " + "; ".join(failures))
    k = num_classes or probe.num_classes or top
    if top > k:
        raise MixMaskError(f"--num-classes {k}, but the maps of {path!r} hold ids up to {top - 1} (other than "
                           f"--ignore-index {ignore}); raise --num-classes or fix the maps")
    if len(probe) < 4:
        raise MixMaskError(f"expected at least 4 image/mask pairs in {path!r}, but found {len(probe)}")
    classes = list(probe.classes or names or [str(i) for i in range(k)])
    colors = list(probe.palette or voc_palette(k))
    if own_splits:
        train, test = _Pairs(parts[0], IMAGE_SIZE), _Pairs(parts[1], IMAGE_SIZE)
    else:
        pairs = _Pairs(probe, IMAGE_SIZE)
        keep, held = _split(len(pairs), None)
        train, test = Subset(pairs, keep.tolist()), Subset(pairs, held.tolist())
    channels = train[0][0].shape[0]
    return ClassificationData(f"seg-folder:{path}", train, None, test, None, classes, (channels, IMAGE_SIZE, IMAGE_SIZE),
                              task="segmentation", scale=1 / 255, mean=[0.5] * channels, std=[0.25] * channels,
                              ignore_index=ignore, colors=colors,
                              labels={"layout": probe.layout, "root": str(probe.root), "rule": probe.rule,
                                      "splits": probe.splits, "train_split": probe.train_split if own_splits else None,
                                      "test_split": probe.test_split if own_splits else None})


def load_folder_data(kind: str, path: str, limit: int | None = None, test_limit: int | None = None,
                     **labels: Any) -> Any:
    """Load ``shapes``, ``folder:PATH`` or ``seg-folder:PATH``.

    Args:
        kind: ``"shapes"``, ``"folder"`` or ``"seg-folder"``.
        path: the folder (unused for ``shapes``).
        limit, test_limit: render at most this many ``shapes`` training and test images
            (``--train-size``, ``--test-size``; item ``i`` is the same whatever the count).
        labels: ``layout``, ``colors``, ``class_names``, ``num_classes``, ``ignore_index``
            (``seg-folder``; ``shapes`` takes ``ignore_index``).

    Returns:
        :class:`~mixmask.data.classification.ClassificationData`: the data set's own train and
        test splits (VOC, Cityscapes, ADE20K, CamVid with folders), else 20% held out (seed 0).

    Raises:
        MixMaskError: a missing folder, no images, or unreadable files (from the data sets).
    """
    if kind == "shapes":
        return _shapes(limit, test_limit, labels.get("ignore_index"))
    if not Path(path).expanduser().is_dir():
        raise MixMaskError(f"--data {kind}:{path}: expected a folder, but {path!r} does not exist or is not a folder")
    path = str(Path(path).expanduser())
    return _class_folder(path) if kind == "folder" else _seg_folder(path, **labels)
