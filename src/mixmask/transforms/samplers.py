"""Mask samplers: each method as a pure function of a context, holding only its options.

A sampler draws ``count`` masks for the rows of a batch that a policy gave it and returns a
:class:`MaskDraw`: the masks, their means, the weight of each sample's own label and, for methods
that change the partner before pasting it (ResizeMix), a :class:`~mixmask.functional.PartnerWarp`.
It may read the batch (inputs, labels, dense maps, a saliency map from the caller) through the
:class:`SamplerContext`, never write it, and draws only from the context's generator. Pairing,
apply probability, per-sample choice and everything about targets belong to the policy
(:class:`~mixmask.transforms.MixPolicy`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional import masks as M
from mixmask.functional._checks import (check_bool, check_choice, check_finite_range, check_int, check_int_pair,
                                        check_pair, check_positive, device_generator, to_device)
from mixmask.functional.params import PartnerWarp
from mixmask.functional.saliency import saliency_peaks, spectral_saliency
from mixmask.functional.sampling import _sample_lam
from mixmask.functional.warps import RESIZE_MODES, NoiseWarp, ResizeWarp

__all__ = ["SamplerContext", "MaskDraw", "MaskSampler", "MixUpSampler", "CutMixSampler", "FMixSampler",
           "GridMaskSampler", "ResizeMixSampler", "SaliencyMixSampler", "SmoothMixSampler", "GridMixSampler",
           "CutoutSampler", "ClassMixSampler"]

#: Input dtypes whose blend weights are coarser than float32: soft masks are rounded to them.
_LOW_PRECISION = (torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class SamplerContext:
    """What a sampler may read for the masks it draws (tensors are read-only views).

    Attributes:
        count: number of masks to draw (1 for a policy with ``per_sample=False``).
        rows: ``(count,)`` int64 CPU rows of the batch the masks are for.
        partners: ``(count,)`` int64 CPU partner of each of those rows.
        spatial_shape: ``S``.
        device: where the masks are built (the inputs' device).
        dtype: the inputs' dtype (soft masks are rounded to it when it is float16 or bfloat16, so
            the label weight is the weight the pixels get).
        generator: the CPU generator every draw comes from.
        inputs: ``(B, C, *S)`` the whole batch, channels first, detached.
        labels: the batch's class labels, or None.
        masks: ``(B, *S)`` the batch's dense id maps, or None.
        saliency: ``(B, *S)`` a saliency map given by the caller, or None.
        ignore_index: the policy's id of unlabelled pixels in ``masks`` (not a class), or None.
    """

    count: int
    rows: Tensor
    partners: Tensor
    spatial_shape: tuple[int, ...]
    device: torch.device
    dtype: torch.dtype
    generator: torch.Generator
    inputs: Tensor | None = None
    labels: Tensor | None = None
    masks: Tensor | None = None
    saliency: Tensor | None = None
    ignore_index: int | None = None


@dataclass(frozen=True)
class MaskDraw:
    """What a sampler returns for ``n = count`` samples.

    Attributes:
        lam: ``(n,)`` float32 on the device: the mean of each mask.
        mask: ``(n, *S)`` bool or float32 on the device, or None: with ``boxes``, the boxes' masks, built
            only where they are read (a draw that pastes its boxes never builds them); without, constant
            masks equal to ``lam`` (MixUp: no memory per pixel).
        label_lam: ``(n,)`` weight of each sample's own label, or None for ``lam``.
        warp: a change of the partners of these rows before pasting, or None.
        boxes: ``(n, nb, 2, D)`` int64 CPU corners (low, high) when each mask is exactly 0 inside these
            boxes and 1 elsewhere, or None: kernels may then copy only the boxes.
    """

    lam: Tensor
    mask: Tensor | None = None
    label_lam: Tensor | None = None
    warp: PartnerWarp | None = None
    boxes: Tensor | None = None

    @property
    def from_boxes(self) -> bool:
        """Whether the masks are left to be built from :attr:`boxes` (``mask`` is None)."""
        return self.mask is None and self.boxes is not None

    def full_mask(self, spatial_shape: tuple[int, ...], device: torch.device) -> Tensor:
        """``(n, *S)`` masks: :attr:`mask`, built from :attr:`boxes`, or constant (an expanded view of ``lam``)."""
        if self.mask is not None:
            return self.mask
        if self.boxes is not None:
            return M.stacked_box_weights(self.boxes, spatial_shape, torch.bool, device)
        return self.lam.view(-1, *(1,) * len(spatial_shape)).expand(-1, *spatial_shape)


def pixel_weights(weights: Tensor, dtype: torch.dtype) -> Tensor:
    """Float32 ``weights`` rounded to what inputs of ``dtype`` blend with (float16/bfloat16), else as is."""
    return weights.to(dtype).float() if dtype in _LOW_PRECISION else weights


class MaskSampler:
    """Base of the samplers. A subclass is a frozen dataclass of options with :meth:`draw`.

    Class attributes:
        method: the id name in :data:`~mixmask.functional.METHODS`.
        fills: the partner is not another sample (a fill value, or noise) and labels are kept (GridMask,
            Cutout).
        per_batch: one draw can serve a whole batch (``per_sample=False``); False for a method whose
            mask is made from each partner's own data (ClassMix).
    """

    method: ClassVar[str] = "none"
    fills: ClassVar[bool] = False
    per_batch: ClassVar[bool] = True

    @property
    def soft(self) -> bool:
        """Whether the masks may hold weights other than 0 and 1."""
        return False

    @property
    def constant_fill(self) -> float | None:
        """The constant this method writes as its partner (the policy holds one), or None."""
        return None

    def check(self, spatial_shape: tuple[int, ...], masks: Tensor | None) -> None:
        """Raise :class:`MixMaskError` if this method cannot draw for the batch (before anything is drawn)."""

    def draw(self, ctx: SamplerContext) -> MaskDraw:
        """``ctx.count`` masks."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """The options that differ from their defaults, for ``repr``."""
        return {f.name: getattr(self, f.name) for f in fields(self)  # type: ignore[arg-type]
                if getattr(self, f.name) != f.default}


@dataclass(frozen=True)
class _LamSampler(MaskSampler):
    """A method whose masks follow ``lam ~ Beta(alpha, alpha)`` (or a fixed ``lam``).

    ``reformulate=True`` draws ``lam ~ Beta(alpha + 1, alpha)`` and trains on each sample's own label
    only (label weight 1): the reformulation of MSDA in the FMix paper (Harris et al., 2020).
    """

    alpha: float = 1.0
    lam: float | None = None
    reformulate: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", check_positive("alpha", self.alpha))
        if self.lam is not None:
            object.__setattr__(self, "lam", check_finite_range("lam", self.lam, 0.0, 1.0))
        object.__setattr__(self, "reformulate", check_bool("reformulate", self.reformulate))

    def options(self) -> dict[str, Any]:
        return {"alpha": self.alpha, **{k: v for k, v in super().options().items() if k != "alpha"}}

    def lams(self, ctx: SamplerContext) -> Tensor:
        """``(count,)`` float64 CPU weights."""
        if self.lam is not None:
            return torch.full((ctx.count,), self.lam, dtype=torch.float64)
        return _sample_lam(ctx.count, self.alpha, ctx.generator, self.reformulate)

    def _own_labels(self, lam: Tensor) -> Tensor | None:
        return torch.ones_like(lam) if self.reformulate else None


@dataclass(frozen=True)
class MixUpSampler(_LamSampler):
    """MixUp (Zhang et al., 2018): the mask of sample i is the constant ``lam[i]``."""

    method: ClassVar[str] = "mixup"

    @property
    def soft(self) -> bool:
        return True

    def draw(self, ctx: SamplerContext) -> MaskDraw:
        lam = pixel_weights(to_device(torch.from_numpy(self.lams(ctx).numpy().astype(np.float32)), ctx.device),
                            ctx.dtype)  # float64 to float32 in numpy: the same rounding, no tensor op
        return MaskDraw(lam, None, self._own_labels(lam))


@dataclass(frozen=True)
class CutMixSampler(_LamSampler):
    """CutMix (Yun et al., 2019): ``num_boxes`` boxes of the partner pasted into each sample.

    Boxes have the image's aspect ratio and unclipped volumes adding up to ``(1 - lam) * |S|``; with
    ``size_range`` (timm's ``cutmix_minmax``) each side is drawn in ``size_range`` times the image's
    side instead and the box lies inside the image. lam is the area outside the clipped boxes.
    """

    method: ClassVar[str] = "cutmix"
    num_boxes: int = 1
    size_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "num_boxes", check_int("num_boxes", self.num_boxes, low=1))
        size_range = check_pair("size_range", self.size_range, 0.0, 1.0)
        if size_range is not None and (size_range[1] <= 0 or size_range[0] == size_range[1]):
            raise MixMaskError(f"size_range must have 0 <= low < high <= 1, but got {self.size_range!r}")
        if size_range is not None and self.num_boxes != 1:
            raise MixMaskError(f"size_range draws one box per sample, but got num_boxes={self.num_boxes}")
        object.__setattr__(self, "size_range", size_range)

    def draw(self, ctx: SamplerContext) -> MaskDraw:
        shape = ctx.spatial_shape
        if self.size_range is not None:
            low, high = M.ranged_boxes(ctx.count, shape, self.size_range, ctx.generator)
        else:
            low, high = M._cutmix_boxes(self.lams(ctx), shape, ctx.generator, self.num_boxes)
        boxes = torch.from_numpy(np.stack([M._numpy(low), M._numpy(high)], 2))
        if self.num_boxes == 1:  # lam from the box volumes; the masks are built from the boxes where read
            lam = to_device(M.box_lam(low, high, shape), ctx.device)
            return MaskDraw(lam, None, self._own_labels(lam), boxes=boxes)
        mask, lam = M.box_masks(low, high, shape, ctx.device)  # boxes may overlap: lam is the mask's mean
        return MaskDraw(lam, mask, self._own_labels(lam), boxes=boxes)


@dataclass(frozen=True)
class FMixSampler(_LamSampler):
    """FMix (Harris et al., 2020): the top ``round(lam * |S|)`` pixels of a low-frequency grey image.

    ``decay_power`` is the spectrum's decay (the paper uses 3); ``max_soft > 0`` ramps the ranks
    around the cut from 1 to 0 (a soft mask with the same mean).
    """

    method: ClassVar[str] = "fmix"
    decay_power: float = 3.0
    max_soft: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "decay_power", check_positive("decay_power", self.decay_power))
        object.__setattr__(self, "max_soft", check_finite_range("max_soft", self.max_soft, 0.0, 0.5))

    @property
    def soft(self) -> bool:
        return self.max_soft > 0

    def options(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "decay_power": self.decay_power,
                **{k: v for k, v in super().options().items() if k not in ("alpha", "decay_power")}}

    def draw(self, ctx: SamplerContext) -> MaskDraw:
        mask, lam = M._fmix_masks(self.lams(ctx), ctx.spatial_shape, device_generator(ctx.generator, ctx.device),
                                  decay_power=self.decay_power, max_soft=self.max_soft, device=ctx.device)
        if self.soft and ctx.dtype in _LOW_PRECISION:
            mask = pixel_weights(mask, ctx.dtype)
            lam = M.mask_mean(mask)
        return MaskDraw(lam, mask, self._own_labels(lam))


@dataclass(frozen=True)
class GridMaskSampler(MaskSampler):
    """GridMask (Chen et al., 2020): drop a grid of blocks; the partner is ``fill`` and labels are kept.

    Each sample draws a cell size in ``cell_size`` times the smallest side, a random offset and (2-D)
    a rotation up to ``rotate`` degrees; a block of ``(1 - keep_ratio)`` of each cell's side is dropped.
    """

    method: ClassVar[str] = "gridmask"
    fills: ClassVar[bool] = True
    cell_size: tuple[float, float] = (96 / 224, 1.0)
    keep_ratio: float = 0.6
    rotate: float = 0.0
    fill: float = 0.0

    def __post_init__(self) -> None:
        low, high = check_pair("cell_size", self.cell_size, 0.0, 1.0)
        if low <= 0:
            raise MixMaskError(f"cell_size must be in (0, 1], but got {self.cell_size!r}")
        object.__setattr__(self, "cell_size", (low, high))
        object.__setattr__(self, "keep_ratio", check_finite_range("keep_ratio", self.keep_ratio, 0.0, 1.0,
                                                                  low_open=True, high_open=True))
        object.__setattr__(self, "rotate", check_finite_range("rotate", self.rotate, 0.0, 180.0))
        object.__setattr__(self, "fill", check_finite_range("fill", self.fill, -math.inf, math.inf))

    def options(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def constant_fill(self) -> float:
        return self.fill

    def check(self, spatial_shape: tuple[int, ...], masks: Tensor | None) -> None:
        if self.rotate > 0 and len(spatial_shape) != 2:
            raise MixMaskError(f"GridMask's rotate is defined for 2-D masks only, but got spatial shape "
                               f"{spatial_shape}")

    def draw(self, ctx: SamplerContext) -> MaskDraw:
        mask, lam = M.gridmask_masks(ctx.count, ctx.spatial_shape, ctx.generator, cell_size=self.cell_size,
                                     keep_ratio=self.keep_ratio, rotate=self.rotate, device=ctx.device)
        return MaskDraw(lam, mask, torch.ones_like(lam))


@dataclass(frozen=True)
class ResizeMixSampler(MaskSampler):
    """ResizeMix (Qin et al., 2020): the whole partner resized into a box of side ratio ``tau ~ U(scale)``.

    The box (``round(tau * S_d)`` per axis, the image's aspect ratio) lies at a uniform place inside
    the image; the partner is resized into it (a :class:`~mixmask.functional.warps.ResizeWarp`,
    ``mode`` bilinear or nearest; id maps with the nearest pixel), so the sample keeps its label's
    weight ``1 - box area`` (the mask's mean, measured).
    """

    method: ClassVar[str] = "resizemix"
    scale: tuple[float, float] = (0.1, 0.8)
    mode: str = "bilinear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", check_pair("scale", self.scale, 0.0, 1.0, low_open=True))
        object.__setattr__(self, "mode", check_choice("mode", self.mode, RESIZE_MODES))

    def draw(self, ctx: SamplerContext) -> MaskDraw:
        shape = ctx.spatial_shape
        low, high, _ = M.resizemix_boxes(ctx.count, shape, ctx.generator, scale=self.scale)
        mask, lam = M.box_masks(low[:, None], high[:, None], shape, ctx.device)
        return MaskDraw(lam, mask, None, ResizeWarp(to_device(ctx.rows, ctx.device), low, high, self.mode))


@dataclass(frozen=True)
class SaliencyMixSampler(_LamSampler):
    """SaliencyMix (Uddin et al., ICLR 2021): CutMix's box centred on the peak of the partner's saliency.

    The saliency is the caller's ``saliency=`` map when one is given, else the spectral residual of
    the partner (:func:`~mixmask.functional.saliency.spectral_saliency`, working side
    ``saliency_size``), computed for all partners in one batched pass. The box has CutMix's size for
    ``lam ~ Beta(alpha, alpha)``, is clipped to the image, and lam is the area outside it.
    """

    method: ClassVar[str] = "saliencymix"
    saliency_size: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "saliency_size", check_int("saliency_size", self.saliency_size, low=4))

    def draw(self, ctx: SamplerContext) -> MaskDraw:
        partners = to_device(ctx.partners, ctx.device)
        if ctx.saliency is not None:
            maps = ctx.saliency.detach()
            maps = maps.index_select(0, to_device(ctx.partners, maps.device))
        else:
            maps = spectral_saliency(ctx.inputs, size=self.saliency_size, rows=partners)
        peaks = to_device(saliency_peaks(maps), ctx.device)
        low, high = M._saliencymix_boxes(self.lams(ctx), peaks, ctx.spatial_shape)
        if low.device.type == "cpu":  # as CutMix's boxes
            lam = to_device(M.box_lam(low[:, None], high[:, None], ctx.spatial_shape), ctx.device)
            return MaskDraw(lam, None, self._own_labels(lam), boxes=torch.stack([low, high], 1)[:, None])
        mask, lam = M.box_masks(low[:, None], high[:, None], ctx.spatial_shape, ctx.device)  # no boxes: no device read
        return MaskDraw(lam, mask, self._own_labels(lam))


@dataclass(frozen=True)
class SmoothMixSampler(MaskSampler):
    """SmoothMix (Lee et al., CVPR Workshops 2020): the partner pasted as a Gaussian-edged circle or square.

    ``kind``: ``"circle"``, ``"square"`` or ``"either"`` (drawn per sample); the spread is drawn per
    sample in ``sigma`` (fractions of each side). Soft masks: lam is their mean, dense maps become
    per-pixel soft targets.
    """

    method: ClassVar[str] = "smoothmix"
    kind: str = "circle"
    sigma: tuple[float, float] = (0.25, 0.5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", check_choice("kind", self.kind, M.SMOOTH_KINDS))
        object.__setattr__(self, "sigma", check_pair("sigma", self.sigma, 0.0, math.inf, low_open=True))

    @property
    def soft(self) -> bool:
        return True

    def draw(self, ctx: SamplerContext) -> MaskDraw:
        mask, lam = M.smoothmix_masks(ctx.count, ctx.spatial_shape, ctx.generator, kind=self.kind,
                                      sigma=self.sigma, device=ctx.device)
        if ctx.dtype in _LOW_PRECISION:
            mask = pixel_weights(mask, ctx.dtype)
            lam = M.mask_mean(mask)
        return MaskDraw(lam, mask)


@dataclass(frozen=True)
class GridMixSampler(_LamSampler):
    """GridMix (Baek et al., Pattern Recognition 2021): an ``n x n`` grid, each cell from the sample or its partner.

    ``n`` is drawn per sample in ``grid``; each cell is the sample's own with probability
    ``lam ~ Beta(alpha, alpha)`` (drawn per sample), else the partner's; lam is then measured.
    """

    method: ClassVar[str] = "gridmix"
    grid: tuple[int, int] = (2, 8)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "grid", check_int_pair("grid", self.grid, low=1))

    def check(self, spatial_shape: tuple[int, ...], masks: Tensor | None) -> None:
        if min(spatial_shape) < self.grid[1]:
            raise MixMaskError(f"GridMix's grid={self.grid} cuts every axis into up to {self.grid[1]} cells, which "
                               f"needs sides >= {self.grid[1]}, but got spatial shape {spatial_shape}")

    def draw(self, ctx: SamplerContext) -> MaskDraw:
        mask, lam = M._gridmix_masks(self.lams(ctx), ctx.spatial_shape, ctx.generator, self.grid, ctx.device)
        return MaskDraw(lam, mask, self._own_labels(lam))


@dataclass(frozen=True)
class CutoutSampler(MaskSampler):
    """Cutout (DeVries & Taylor, 2017): ``num_boxes`` boxes filled with ``fill``; labels are kept.

    Box sides are ``size`` (a fraction, or a ``(low, high)`` range drawn per box) times each side;
    centres are uniform over the image and boxes are clipped. ``fill="noise"`` fills with per-pixel
    noise instead of a constant (a :class:`~mixmask.functional.warps.NoiseWarp`: standard normal
    for float inputs, uniform 0-255 for uint8).
    """

    method: ClassVar[str] = "cutout"
    fills: ClassVar[bool] = True
    size: float | tuple[float, float] = 0.5
    num_boxes: int = 1
    fill: float | str = 0.0

    def __post_init__(self) -> None:
        size = self.size
        if isinstance(size, (int, float, np.floating, np.integer)) and not isinstance(size, bool):
            size = (size, size)
        object.__setattr__(self, "size", check_pair("size", size, 0.0, 1.0, low_open=True))
        object.__setattr__(self, "num_boxes", check_int("num_boxes", self.num_boxes, low=1))
        if isinstance(self.fill, str):
            if self.fill != "noise":
                raise MixMaskError(f"fill must be a number or 'noise', but got {self.fill!r}")
        else:
            object.__setattr__(self, "fill", check_finite_range("fill", self.fill, -math.inf, math.inf))

    def options(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def constant_fill(self) -> float | None:
        return None if self.fill == "noise" else self.fill

    def draw(self, ctx: SamplerContext) -> MaskDraw:
        mask, lam = M.cutout_masks(ctx.count, ctx.spatial_shape, ctx.generator, size=self.size,
                                   num_boxes=self.num_boxes, device=ctx.device)
        warp = None
        if self.fill == "noise":
            seed = int(torch.randint(0, 2**62, (), generator=ctx.generator))
            warp = NoiseWarp(to_device(ctx.rows, ctx.device), seed)
        return MaskDraw(lam, mask, torch.ones_like(lam), warp)


@dataclass(frozen=True)
class ClassMixSampler(MaskSampler):
    """ClassMix (Olsson et al., WACV 2021): paste the pixels of half of the classes in the partner's map.

    Needs dense maps (``masks=``); the classes are those present in each partner's map other than
    the policy's ``ignore_index`` (:func:`~mixmask.functional.masks.classmix_masks`). Each mask is
    made from its own partner's map, so a whole batch cannot share one draw (``per_sample=False`` is
    refused).
    """

    method: ClassVar[str] = "classmix"
    per_batch: ClassVar[bool] = False

    def check(self, spatial_shape: tuple[int, ...], masks: Tensor | None) -> None:
        if masks is None:
            raise MixMaskError("ClassMix pastes the classes of each partner's segmentation map, so it needs the "
                               "maps (masks=), but got masks=None")

    def draw(self, ctx: SamplerContext) -> MaskDraw:
        partners = to_device(ctx.partners, ctx.masks.device)
        mask, lam = M._classmix_masks(ctx.masks, partners, ctx.generator, ctx.ignore_index)
        return MaskDraw(to_device(lam, ctx.device), to_device(mask, ctx.device))
