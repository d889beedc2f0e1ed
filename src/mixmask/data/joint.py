"""Joint per-sample transforms of an image and its segmentation map, with torchvision.transforms.v2.

Positional transforms (crop, flips, affine) move the image and its map with one draw, the map with
nearest interpolation and ``ignore_index`` where pixels are uncovered; colour transforms touch the
image only. torchvision dispatches on the ``tv_tensors.Image`` / ``tv_tensors.Mask`` types, so no
kernel is written here. :class:`JointTransform` gives any such transform its own random stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from mixmask.errors import MixMaskError
from mixmask.functional._checks import check_finite_range, check_int
from mixmask.data.labels import IGNORE_INDEX
from mixmask.streams import ProcessStream, rewinding

__all__ = ["JointTransform", "joint_transforms", "resize_pair"]


def resize_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``(C, H, W)`` → uint8 ``(C, size, size)`` (antialiased bilinear; unchanged when already that size)."""
    if tuple(image.shape[-2:]) == (size, size):
        return image
    out = torch.nn.functional.interpolate(image[None].float(), size=(size, size), mode="bilinear", antialias=True,
                                          align_corners=False)
    return out[0].round_().clamp_(0, 255).to(torch.uint8)


def resize_pair(image: torch.Tensor, mask: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An image and its map at ``size`` x ``size``: the image bilinear, the map nearest (ids never blended).

    Args:
        image: uint8 ``(C, H, W)``.
        mask: int ``(H, W)`` ids.
        size: the side of the result.

    Returns:
        uint8 ``(C, size, size)`` and int64 ``(size, size)``.
    """
    mask = mask.as_subclass(torch.Tensor)
    if tuple(mask.shape[-2:]) != (size, size):
        mask = torch.nn.functional.interpolate(mask.reshape(1, 1, *mask.shape[-2:]).float(), size=(size, size),
                                               mode="nearest")[0, 0]
    return resize_image(image.as_subclass(torch.Tensor), size), mask.reshape(size, size).long()


class JointTransform:
    """Run a torchvision v2 transform on a sample with randomness from its own seeded stream.

    torchvision's transforms draw from torch's global generator. Here each call draws a seed from
    the transform's own stream and runs the transform under a forked global generator seeded with
    it, so results depend on the stream only and the caller's global state is left as it was. Each
    DataLoader worker (per epoch) and each distributed rank gets its own stream, derived from
    ``seed`` (or ``torch.initial_seed()``), the worker's seed and the rank (see :mod:`mixmask.streams`).

    Args:
        transform: any callable on a sample, e.g. a ``v2.Compose`` of positional and colour
            transforms; samples are ``{"image": tv_tensors.Image, "mask": tv_tensors.Mask}``.
        seed: base seed of the streams (None: ``torch.initial_seed()``, so ``torch.manual_seed`` repeats it).

    Returns (when called):
        What ``transform`` returns.

    Example:
        >>> from torchvision.transforms import v2
        >>> mine = JointTransform(v2.Compose([v2.RandomCrop(96), v2.RandomVerticalFlip()]), seed=0)
        >>> data = ImageMaskFolder("shapes/", transform=mine)
    """

    def __init__(self, transform: Callable[[Any], Any], seed: int | None = None) -> None:
        if not callable(transform):
            raise MixMaskError(f"expected a callable transform, but got {type(transform).__name__}")
        self.transform = transform
        self.seed = None if seed is None else check_int("seed", seed, low=0)
        self._stream = ProcessStream(self.seed)

    def generator(self) -> torch.Generator:
        """The stream of this process: one per (worker seed, rank)."""
        return self._stream()

    def __call__(self, sample: Any) -> Any:
        with self._stream.lock, rewinding(self.generator()) as generator:  # a failed call draws nothing
            seed = int(torch.randint(0, 2**62, (), generator=generator))
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(seed)
                return self.transform(sample)

    def __repr__(self) -> str:
        inner = "\n".join("  " + line for line in repr(self.transform).splitlines())
        return f"JointTransform(\n{inner},\n  seed={self.seed})"


def _pair(name: str, value: Sequence[float], low: float, high: float) -> tuple[float, float]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise MixMaskError(f"{name} must be a (low, high) pair, but got {value!r}")
    a, b = (check_finite_range(name, v, low, high) for v in value)
    if a > b:
        raise MixMaskError(f"{name} must have low <= high, but got {tuple(value)}")
    return a, b


def joint_transforms(size: int | tuple[int, int] = 256, *, scale: tuple[float, float] = (0.35, 1.0),
                     ratio: tuple[float, float] = (3 / 4, 4 / 3), hflip: float = 0.5, vflip: float = 0.0,
                     degrees: float = 10.0, translate: float = 0.0, brightness: float = 0.3,
                     contrast: float = 0.3, saturation: float = 0.3, hue: float = 0.02, fill: float = 0,
                     ignore_index: int = IGNORE_INDEX,
                     interpolation: Literal["bilinear", "nearest", "bicubic"] = "bilinear",
                     seed: int | None = None) -> JointTransform:
    """The common joint augmentation of an image and its map, as a seeded ``v2.Compose``.

    In order: ``RandomResizedCrop(size, scale, ratio)``, horizontal/vertical flips, ``RandomAffine``
    (rotation up to ``degrees``, shift up to ``translate`` of the side), ``ColorJitter``. A step
    whose strength is 0 is left out. The map is resized and rotated with nearest interpolation;
    pixels uncovered by the affine step get ``fill`` in the image and ``ignore_index`` in the map.
    Colour changes touch the image only.

    Args:
        size: output side, or ``(H, W)``.
        scale: range of the crop area as a fraction of the image.
        ratio: range of the crop aspect ratio.
        hflip: probability of a horizontal flip.
        vflip: probability of a vertical flip.
        degrees: largest rotation, in degrees.
        translate: largest shift as a fraction of the side.
        brightness, contrast, saturation: jitter strengths in [0, 1] (factor in ``[1 - s, 1 + s]``).
        hue: hue jitter in [0, 0.5].
        fill: image value of uncovered pixels.
        ignore_index: map id of uncovered pixels.
        interpolation: of the image (the map always uses nearest).
        seed: seed of the transform's stream (see :class:`JointTransform`).

    Returns:
        A :class:`JointTransform` around the ``v2.Compose`` (its ``transform`` attribute).

    Raises:
        MixMaskError: for an argument out of range.

    Example:
        >>> data = ShapesDataset(100, size=160, transform=joint_transforms(128, seed=0))
        >>> data[0]["image"].shape, data[0]["mask"].dtype
        (torch.Size([3, 128, 128]), torch.int64)
    """
    from torchvision import tv_tensors
    from torchvision.transforms import InterpolationMode, v2

    sizes = (size, size) if isinstance(size, int) else tuple(size)
    if len(sizes) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes):
        raise MixMaskError(f"size must be a positive int or an (H, W) pair of them, but got {size!r}")
    scale = _pair("scale", scale, 0.0, 1.0)
    if scale[1] <= 0:
        raise MixMaskError(f"scale must have high > 0, but got {scale}")
    ratio = _pair("ratio", ratio, 0.0, math.inf)
    if ratio[0] <= 0:
        raise MixMaskError(f"ratio must be positive, but got {ratio}")
    hflip = check_finite_range("hflip", hflip, 0.0, 1.0)
    vflip = check_finite_range("vflip", vflip, 0.0, 1.0)
    degrees = check_finite_range("degrees", degrees, 0.0, 180.0)
    translate = check_finite_range("translate", translate, 0.0, 1.0)
    jitter = {name: check_finite_range(name, value, 0.0, 1.0) for name, value in
              (("brightness", brightness), ("contrast", contrast), ("saturation", saturation))}
    hue = check_finite_range("hue", hue, 0.0, 0.5)
    fill = check_finite_range("fill", fill, -math.inf, math.inf)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise MixMaskError(f"ignore_index must be an int, but got {ignore_index!r}")
    modes = {"bilinear": InterpolationMode.BILINEAR, "nearest": InterpolationMode.NEAREST,
             "bicubic": InterpolationMode.BICUBIC}
    if interpolation not in modes:
        raise MixMaskError(f"interpolation must be one of {list(modes)}, but got {interpolation!r}")
    steps: list[Any] = [v2.RandomResizedCrop(sizes, scale=scale, ratio=ratio, interpolation=modes[interpolation],
                                             antialias=True)]
    if hflip:
        steps.append(v2.RandomHorizontalFlip(hflip))
    if vflip:
        steps.append(v2.RandomVerticalFlip(vflip))
    if degrees or translate:
        steps.append(v2.RandomAffine(degrees, translate=(translate, translate) if translate else None,
                                     interpolation=modes[interpolation],
                                     fill={tv_tensors.Image: fill, tv_tensors.Mask: ignore_index}))
    if any(jitter.values()) or hue:
        steps.append(v2.ColorJitter(**jitter, hue=hue))
    return JointTransform(v2.Compose(steps), seed=seed)
