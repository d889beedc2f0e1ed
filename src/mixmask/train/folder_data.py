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
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Subset

from mixmask.errors import MixMaskError

__all__ = ["IMAGE_SIZE", "SHAPES_SIZE", "load_folder_data"]

#: Side that ``folder:`` and ``seg-folder:`` images are resized to.
IMAGE_SIZE = 64
#: ``shapes``: side, training-pool and test counts (rendered once, kept in memory).
SHAPES_SIZE, SHAPES_TRAIN, SHAPES_TEST = 64, 800, 200
_TEST_FRACTION = 0.2


def _resize_image(image: Tensor, size: int) -> Tensor:
    """uint8 ``(C, H, W)`` → uint8 ``(C, size, size)`` (antialiased bilinear)."""
    if tuple(image.shape[-2:]) == (size, size):
        return image
    out = F.interpolate(image[None].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out[0].round_().clamp_(0, 255).to(torch.uint8)


class _ResizeImage:
    """Picklable transform for :class:`ClassFolder` items."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Tensor) -> Tensor:
        return _resize_image(image.as_subclass(Tensor), self.size)


class _Pairs(Dataset):
    """``{"image", "mask"}`` items as ``(image resized, mask resized with nearest)`` tuples."""

    def __init__(self, dataset: Dataset, size: int) -> None:
        self.dataset, self.size = dataset, size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        item = self.dataset[index]
        image, mask = item["image"].as_subclass(Tensor), item["mask"].as_subclass(Tensor)
        if tuple(mask.shape[-2:]) != (self.size, self.size):
            mask = F.interpolate(mask.reshape(1, 1, *mask.shape[-2:]).float(), size=(self.size, self.size),
                                 mode="nearest")[0, 0].long()
        return _resize_image(image, self.size), mask.reshape(self.size, self.size).long()


def _split(n: int, targets: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    stratify = targets if targets is not None and np.bincount(targets).min(initial=n) >= 2 else None
    keep, held = train_test_split(np.arange(n), test_size=_TEST_FRACTION, random_state=0, stratify=stratify)
    return np.sort(keep), np.sort(held)


def _shapes(limit: int | None, test_limit: int | None = None):
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
                              std=[0.25] * 3, ignore_index=IGNORE_INDEX)


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


def _seg_folder(path: str):
    from mixmask.data import IGNORE_INDEX, ImageMaskFolder
    from mixmask.data.classification import ClassificationData
    from mixmask.data.folders import read_mask

    folder = ImageMaskFolder(path, verify=True)  # every problem of the folder, before training
    if len(folder) < 4:
        raise MixMaskError(f"expected at least 4 image/mask pairs in {path!r}, but found {len(folder)}")
    top = 0
    for _, mask_path in folder.samples:
        ids = read_mask(mask_path)
        ids = ids[ids != IGNORE_INDEX]
        top = max(top, int(ids.max()) if ids.numel() else 0)
    pairs = _Pairs(folder, IMAGE_SIZE)
    keep, held = _split(len(pairs), None)
    channels = pairs[0][0].shape[0]
    return ClassificationData(f"seg-folder:{path}", Subset(pairs, keep.tolist()), None, Subset(pairs, held.tolist()),
                              None, [str(i) for i in range(top + 1)], (channels, IMAGE_SIZE, IMAGE_SIZE),
                              task="segmentation", scale=1 / 255, mean=[0.5] * channels, std=[0.25] * channels,
                              ignore_index=IGNORE_INDEX)


def load_folder_data(kind: str, path: str, limit: int | None = None, test_limit: int | None = None) -> Any:
    """Load ``shapes``, ``folder:PATH`` or ``seg-folder:PATH``.

    Args:
        kind: ``"shapes"``, ``"folder"`` or ``"seg-folder"``.
        path: the folder (unused for ``shapes``).
        limit, test_limit: render at most this many ``shapes`` training and test images
            (``--train-size``, ``--test-size``; item ``i`` is the same whatever the count).

    Returns:
        :class:`~mixmask.data.classification.ClassificationData` (20% held out as test, seed 0).

    Raises:
        MixMaskError: a missing folder, no images, or unreadable files (from the data sets).
    """
    if kind == "shapes":
        return _shapes(limit, test_limit)
    if not Path(path).expanduser().is_dir():
        raise MixMaskError(f"--data {kind}:{path}: expected a folder, but {path!r} does not exist or is not a folder")
    path = str(Path(path).expanduser())
    return _class_folder(path) if kind == "folder" else _seg_folder(path)
