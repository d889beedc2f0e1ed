"""Sample photos that ship with scikit-image and scikit-learn: real images that work offline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mixmask.errors import MixMaskError

__all__ = ["sample_photos", "load_photos"]

_SKIMAGE = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "colorwheel")


def _square(image: np.ndarray, size: int) -> Tensor:
    """Centre-crop an ``(H, W, 3)`` uint8 array to a square and resize it: uint8 ``(3, size, size)``."""
    from PIL import Image

    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(np.ascontiguousarray(image[top:top + side, left:left + side, :3]))
    resized = np.asarray(crop.resize((size, size), Image.Resampling.BICUBIC))
    return torch.from_numpy(resized.copy()).permute(2, 0, 1)


def sample_photos(count: int = 8, size: int = 224) -> Tensor:
    """Bundled colour photos (scikit-image's samples, then scikit-learn's), square-cropped.

    Args:
        count: how many, at most 8.
        size: side of the square images.

    Returns:
        uint8 ``(count, 3, size, size)``.
    """
    from skimage import data
    from sklearn.datasets import load_sample_images

    photos = [getattr(data, name)() for name in _SKIMAGE] + list(load_sample_images().images)
    if not 1 <= count <= len(photos):
        raise MixMaskError(f"count must be in [1, {len(photos)}] bundled photos, but got {count}")
    return torch.stack([_square(p, size) for p in photos[:count]])


def load_photos(paths: Sequence[str | Path], size: int = 224) -> Tensor:
    """The user's own image files, square-cropped and resized: uint8 ``(N, 3, size, size)``."""
    from mixmask.data.folders import _cause, _open, _read_errors

    images, bad = [], []
    for path in paths:
        try:
            with _open(path) as im:
                images.append(_square(np.asarray(im.convert("RGB")), size))
        except _read_errors() as err:
            bad.append(f"{str(path)!r} ({_cause(path, err)})")
    if bad:
        raise MixMaskError(f"expected readable image files, but could not read: {', '.join(bad)}")
    if not images:
        raise MixMaskError("expected at least one image path, but got none")
    return torch.stack(images)
