"""``--augment crop,flip``: the standard CIFAR augmentation, per training sample, before mixing.

``crop`` pads an image with 4 zero pixels on each side and crops a random window of its own size
(``torchvision.transforms.v2.RandomCrop(size, padding=4)``); ``flip`` mirrors it left-right with
probability 0.5 (``v2.RandomHorizontalFlip``). Segmentation maps move with their image, padded with
the ignore id. Each sample of epoch ``e`` draws from torch's generator seeded with
``(seed, 4, e, index in the training pool)`` inside ``fork_rng``, so the draws depend on neither the
DataLoader workers, the batch composition nor the rank, and the caller's global state is left as it
was. Validation and test data are never augmented.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from mixmask.errors import MixMaskError
from mixmask.train.seeds import derive_seed

__all__ = ["AUGMENTS", "PAD", "parse_augment", "build_augment", "Augmented"]

#: Valid ``--augment`` names, in the order they are applied.
AUGMENTS: tuple[str, ...] = ("crop", "flip")
#: Zero padding of ``crop`` on each side, in pixels (the CIFAR papers' 4).
PAD = 4


def parse_augment(text: str | None) -> tuple[str, ...]:
    """``"crop,flip"`` → ``("crop", "flip")``; ``""`` or None → ``()``.

    Raises:
        MixMaskError: an unknown or repeated name (the valid ones are listed).
    """
    if text is None or not str(text).strip():
        return ()
    if not isinstance(text, str):
        raise MixMaskError(f"--augment must be a comma-separated string of {', '.join(AUGMENTS)}, but got {text!r}")
    names = [n.strip() for n in text.split(",")]
    unknown = [n for n in names if n not in AUGMENTS]
    if unknown:
        raise MixMaskError(f"unknown --augment name(s) {unknown} in {text!r}; valid: {', '.join(AUGMENTS)} "
                           "(comma-separated, e.g. crop,flip)")
    if len(set(names)) != len(names):
        raise MixMaskError(f"--augment {text!r} names a method twice; valid: {', '.join(AUGMENTS)}")
    return tuple(n for n in AUGMENTS if n in names)


def build_augment(names: Sequence[str], input_shape: tuple[int, ...], ignore_index: int | None = None):
    """The torchvision v2 transform of ``names`` for samples of shape ``(C, H, W)`` (None when empty).

    Args:
        names: from :func:`parse_augment`.
        input_shape: ``(C, H, W)`` of one sample.
        ignore_index: fill of segmentation maps where ``crop`` uncovers pixels (None: 0).

    Raises:
        MixMaskError: data that are not images (``(C, L)`` signals, volumes).
    """
    if not names:
        return None
    if len(input_shape) != 3:
        raise MixMaskError(f"--augment {','.join(names)} takes images (C, H, W), but the data's samples have shape "
                           f"{tuple(input_shape)}")
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    steps: list[Any] = []
    if "crop" in names:
        fill = {tv_tensors.Image: 0, tv_tensors.Mask: 0 if ignore_index is None else ignore_index}
        steps.append(v2.RandomCrop(tuple(input_shape[1:]), padding=PAD, fill=fill))
    if "flip" in names:
        steps.append(v2.RandomHorizontalFlip(0.5))
    return v2.Compose(steps)


class Augmented(Dataset):
    """The training samples of one epoch, ``dataset[indices[i]]`` augmented with their own seed.

    Args:
        dataset: the training pool (``(image (C, H, W), target)`` items; a
            :class:`~mixmask.data.classification.TensorData` is gathered a batch at a time).
        indices: ``(N,)`` indices of the training samples in it.
        transform: from :func:`build_augment`.
        seed: the run's seed.
        epoch: the epoch (a new draw each epoch).
        dense: targets are segmentation maps that move with the image.
    """

    def __init__(self, dataset: Dataset, indices: np.ndarray, transform: Any, seed: int, epoch: int,
                 dense: bool = False) -> None:
        self.dataset, self.indices, self.transform = dataset, [int(i) for i in indices], transform
        self.seed, self.epoch, self.dense = seed, epoch, dense

    def __len__(self) -> int:
        return len(self.indices)

    def _one(self, x: Tensor, y: Tensor, index: int) -> tuple[Tensor, Tensor]:
        from torchvision import tv_tensors

        torch.manual_seed(derive_seed(self.seed, 4, self.epoch, index))
        if self.dense:
            image, mask = self.transform(tv_tensors.Image(x), tv_tensors.Mask(y))
            return image.as_subclass(Tensor), mask.as_subclass(Tensor)
        return self.transform(tv_tensors.Image(x)).as_subclass(Tensor), y

    def __getitem__(self, position: int) -> tuple[Tensor, Tensor]:
        return self._items([position])[0]

    @property
    def _batched(self) -> bool:
        from mixmask.train.loaders import gathers_batches

        return gathers_batches(self.dataset)

    def _items(self, positions: Sequence[int]) -> list[tuple[Tensor, Tensor]]:
        chosen = [self.indices[p] for p in positions]
        with torch.random.fork_rng(devices=[]):
            return [self._one(*self.dataset[i], i) for i in chosen]

    def __getitems__(self, positions: Sequence[int]) -> Any:
        """A batch as the pool gives it: stacked ``(inputs, targets)`` for a TensorData, else a list of items."""
        if not self._batched:
            return self._items(positions)
        chosen = [self.indices[p] for p in positions]
        xs, ys = self.dataset.__getitems__(chosen)
        with torch.random.fork_rng(devices=[]):
            pairs = [self._one(x, y, i) for x, y, i in zip(xs, ys, chosen)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
