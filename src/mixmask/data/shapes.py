"""An offline segmentation data set: images of shapes on textured backgrounds, with their id maps."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from mixmask.data.folders import _to_tv, check_mask_dtype
from mixmask.data.labels import IGNORE_INDEX
from mixmask.errors import MixMaskError

__all__ = ["SHAPE_CLASSES", "SHAPE_COLORS", "IGNORE_INDEX", "ShapesDataset", "write_shapes"]

#: Class id → name of :class:`ShapesDataset` maps.
SHAPE_CLASSES: tuple[str, ...] = ("background", "rectangle", "ellipse", "triangle")
#: Class id → display colour (also the palette of the mask PNGs written by :func:`write_shapes`).
SHAPE_COLORS: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200))


def _item_generator(seed: int, index: int) -> torch.Generator:
    """A generator for item ``index`` of the data set with ``seed``, independent of access order."""
    state = np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state >> np.uint64(1)))


def _uniform(gen: torch.Generator, low: float, high: float, count: int = 1) -> Tensor:
    return low + (high - low) * torch.rand(count, generator=gen, dtype=torch.float64)


def render_shapes(size: int, generator: torch.Generator, max_shapes: int = 4) -> tuple[Tensor, Tensor]:
    """Draw one image of 1 to ``max_shapes`` shapes and its id map.

    The background is a random two-colour gradient; each shape (a rotated rectangle, a rotated
    ellipse or a triangle, see :data:`SHAPE_CLASSES`) has its own colour and may hide earlier ones;
    Gaussian noise (std 6) is added to the image only.

    Args:
        size: side of the square image.
        generator: CPU generator that all draws come from.
        max_shapes: largest number of shapes.

    Returns:
        uint8 ``(3, size, size)`` image and int64 ``(size, size)`` ids.
    """
    coords = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    ends = _uniform(generator, 20, 235, 6).view(2, 3, 1, 1)
    angle = float(_uniform(generator, 0, 2 * math.pi))
    ramp = ((x - 0.5) * math.cos(angle) + (y - 0.5) * math.sin(angle)) / math.sqrt(2) + 0.5
    image = ends[0] + (ends[1] - ends[0]) * ramp
    ids = torch.zeros((size, size), dtype=torch.int64)
    count = int(torch.randint(1, max_shapes + 1, (), generator=generator))
    for _ in range(count):
        kind = int(torch.randint(1, len(SHAPE_CLASSES), (), generator=generator))
        cx, cy = (float(v) for v in _uniform(generator, 0.2, 0.8, 2))
        radius = float(_uniform(generator, 0.1, 0.25))
        theta = float(_uniform(generator, 0, 2 * math.pi))
        u = (x - cx) * math.cos(theta) + (y - cy) * math.sin(theta)
        v = -(x - cx) * math.sin(theta) + (y - cy) * math.cos(theta)
        aspect = float(_uniform(generator, 0.5, 1.0))
        if kind == 1:
            inside = (u.abs() <= radius) & (v.abs() <= radius * aspect)
        elif kind == 2:
            inside = (u / radius) ** 2 + (v / (radius * aspect)) ** 2 <= 1
        else:
            turns = theta + torch.tensor([0.0, 2.1, 4.2], dtype=torch.float64) + _uniform(generator, -0.3, 0.3, 3)
            vx, vy = cx + radius * 1.3 * torch.cos(turns), cy + radius * 1.3 * torch.sin(turns)
            sides = [(vx[(k + 1) % 3] - vx[k]) * (y - vy[k]) - (vy[(k + 1) % 3] - vy[k]) * (x - vx[k])
                     for k in range(3)]
            inside = ((sides[0] >= 0) & (sides[1] >= 0) & (sides[2] >= 0)) | (
                (sides[0] <= 0) & (sides[1] <= 0) & (sides[2] <= 0))
        color = _uniform(generator, 0, 255, 3).view(3, 1, 1)
        image = torch.where(inside, color, image)
        ids[inside] = kind
    image = image + 6.0 * torch.randn(image.shape, generator=generator, dtype=torch.float64)
    return image.round().clamp(0, 255).to(torch.uint8), ids


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise MixMaskError(f"{name} must be an int >= {low}, but got {value!r}")
    return int(value)


class ShapesDataset(torch.utils.data.Dataset):
    """Images of shapes and their id maps, generated on the fly, deterministic by ``seed``.

    Item ``i`` depends only on ``(seed, i)``, so it is the same in any process, worker or order.
    Ids: 0 background, 1 rectangle, 2 ellipse, 3 triangle (:data:`SHAPE_CLASSES`).

    Args:
        count: number of items.
        size: side of the square images.
        seed: seed of the whole data set.
        transform: called on ``{"image", "mask"}`` (as ``tv_tensors`` when torchvision is
            installed), e.g. :func:`mixmask.data.joint_transforms`.
        max_shapes: largest number of shapes per image.
        mask_dtype: integer dtype of the maps (``torch.uint8``: 8x less memory than int64).

    Returns (items):
        ``{"image": uint8 (3, size, size), "mask": int64 (size, size)}`` (or ``mask_dtype``), or the
        transform's output.

    Example:
        >>> data = ShapesDataset(100, size=64, seed=0)
        >>> data[0]["image"].shape, data.num_classes
        (torch.Size([3, 64, 64]), 4)
    """

    class_names: tuple[str, ...] = SHAPE_CLASSES
    num_classes: int = len(SHAPE_CLASSES)
    colors: tuple[tuple[int, int, int], ...] = SHAPE_COLORS

    def __init__(self, count: int = 1000, size: int = 128, seed: int = 0,
                 transform: Callable[[dict[str, Tensor]], Any] | None = None, *, max_shapes: int = 4,
                 mask_dtype: torch.dtype = torch.int64) -> None:
        self.count = _check_int("count", count, 1)
        self.size = _check_int("size", size, 8)
        self.seed = _check_int("seed", seed, 0)
        self.max_shapes = _check_int("max_shapes", max_shapes, 1)
        self.transform = transform
        self.mask_dtype = check_mask_dtype(mask_dtype)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Any:
        if not -self.count <= index < self.count:
            raise IndexError(f"index {index} is out of range for {self.count} items")
        image, mask = render_shapes(self.size, _item_generator(self.seed, index % self.count), self.max_shapes)
        sample = {"image": image, "mask": mask.to(self.mask_dtype)}
        if self.transform is None:
            return sample
        return self.transform(_to_tv(sample))

    def __repr__(self) -> str:
        return f"ShapesDataset(count={self.count}, size={self.size}, seed={self.seed}, transform={self.transform!r})"


def write_shapes(out: str | Path, count: int = 100, size: int = 128, seed: int = 0, *,
                 layout: Literal["flat", "split"] = "flat", overwrite: bool = False) -> Path:
    """Write :class:`ShapesDataset` items as PNG files that :class:`ImageMaskFolder` reads back.

    ``flat``: ``out/00000.png`` with ``out/00000_mask.png``; ``split``: ``out/images/00000.png`` with
    ``out/masks/00000.png``. Masks are palette PNGs: palette index = class id, palette colours =
    :data:`SHAPE_COLORS`, so they open in any viewer in colour and read back as ids.

    Args:
        out: the folder (created if missing).
        count, size, seed: as for :class:`ShapesDataset`.
        layout: ``"flat"`` (the ``xyz.png`` + ``xyz_mask.png`` layout) or ``"split"``.
        overwrite: write into a folder that is not empty, replacing files of the same names (else
            raise when ``out`` holds anything).

    Returns:
        The folder.

    Raises:
        MixMaskError: bad arguments, ``out`` is a file, or ``out`` is not empty and ``overwrite`` is off.
    """
    from PIL import Image

    if layout not in ("flat", "split"):
        raise MixMaskError(f"layout must be one of ['flat', 'split'], but got {layout!r}")
    data = ShapesDataset(count, size, seed)
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise MixMaskError(f"expected a folder to write the shapes data set into, but {str(out)!r} is a file")
    width = max(5, len(str(count - 1)))
    names = [f"{i:0{width}d}" for i in range(count)]
    if layout == "flat":
        paths = [(out / f"{n}.png", out / f"{n}_mask.png") for n in names]
    else:
        paths = [(out / "images" / f"{n}.png", out / "masks" / f"{n}.png") for n in names]
    present = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if present and not overwrite:
        existing = [str(p) for pair in paths for p in pair if p.exists()]
        clash = f", {len(existing)} of them with the names to write" if existing else ""
        entries = f"{len(present)} {'entry' if len(present) == 1 else 'entries'}"
        raise MixMaskError(f"expected an empty or new folder, but {str(out)!r} holds {entries}{clash} (e.g. "
                           f"{present[0]!r}); pass overwrite=True (--overwrite) to write into it anyway, or choose "
                           "another folder")
    for folder in {p.parent for pair in paths[:1] for p in pair}:
        folder.mkdir(parents=True, exist_ok=True)
    palette = [c for color in SHAPE_COLORS for c in color]
    palette += [255, 255, 255] * (256 - len(SHAPE_COLORS))
    for i, (image_path, mask_path) in enumerate(paths):
        item = data[i]
        Image.fromarray(item["image"].permute(1, 2, 0).numpy()).save(image_path)
        mask = Image.fromarray(item["mask"].to(torch.uint8).numpy())
        mask.putpalette(palette)  # an "L" image with a palette becomes a "P" image
        mask.save(mask_path)
    return out
