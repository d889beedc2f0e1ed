"""Partner warps: changes of a partner before it is pasted, ``out = M * x + (1 - M) * warp(x[j])``.

:class:`ResizeWarp` is ResizeMix's: the whole partner resized into the sample's box.
:class:`NoiseWarp` is Cutout's noise fill: the partner replaced by per-pixel noise. Both follow
:class:`~mixmask.functional.params.PartnerWarp`, hold only tensors of their rows and a few
numbers, and compare equal when those are equal, so a replayed draw applies the same change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional._checks import check_choice, to_device
from mixmask.functional._memory import empty
from mixmask.functional.params import _same

__all__ = ["RESIZE_MODES", "resize_into_boxes", "ResizeWarp", "NoiseWarp"]

#: How ResizeMix resizes a partner: linear interpolation at pixel centres, or the nearest pixel.
RESIZE_MODES: tuple[str, ...] = ("bilinear", "nearest")


def _read_positions(low: Tensor, high: Tensor, size: int, linear: bool, device: torch.device
                    ) -> tuple[Tensor, Tensor, Tensor | None]:
    """Per row, where box-local position ``c`` of an axis reads the partner: ``(i0, i1, weight)`` ``(n, size)``.

    Position ``c`` of a box of side ``s`` stands at ``(c + 0.5) / s`` of the box, which is
    ``(c + 0.5) * size / s`` partner pixels from its start: linear reads the two pixel centres around
    that point (the half-pixel rule of ``F.interpolate`` with ``align_corners=False``, clamped at the
    borders), nearest reads the pixel it falls in (``"nearest-exact"``). Columns past ``s`` are unused.
    """
    side = to_device((high - low).clamp(min=1), device)[:, None]
    # in exact integers: the point is ((2c + 1) * size) / (2 * side) pixels from the partner's start
    twice = (2 * torch.arange(size, device=device)[None] + 1) * size
    if not linear:
        index = torch.div(twice, 2 * side, rounding_mode="floor").clamp_(max=size - 1)
        return index, index, None
    centre = (twice - side).clamp_(min=0)  # minus half a pixel: between pixel centres
    first = torch.div(centre, 2 * side, rounding_mode="floor")
    weight = (centre - first * 2 * side).double() / (2 * side).double()
    last = first >= size - 1
    first = first.clamp_(max=size - 1)
    return first, (first + 1).clamp_(max=size - 1), weight.masked_fill_(last, 0.0)


def _resample(values: Tensor, axis: int, first: Tensor, second: Tensor, weight: Tensor | None,
              work: torch.dtype) -> Tensor:
    """``values`` read along ``axis`` at per-row positions ``(n, L)`` (and blended by ``weight``).

    ``out[i, ..., l, ...] = lerp(values[i, ..., first[i, l], ...], values[i, ..., second[i, l], ...], weight[i, l])``:
    whole contiguous lines are copied (``index_select``) when ``axis`` is not the innermost one,
    else a ``gather``; the result has length ``L`` along ``axis``.
    """
    n, length = values.shape[0], first.shape[1]
    shape = values.shape[:axis] + (length,) + values.shape[axis + 1:]

    grad = values.requires_grad and torch.is_grad_enabled()

    def read(index: Tensor) -> Tensor:
        into = None if grad else empty(shape, values.dtype, values.device)  # out= has no autograd
        if axis == values.ndim - 1:
            view = (n,) + (1,) * (values.ndim - 2) + (length,)
            return torch.gather(values, axis, index.view(view).expand(shape), out=into)
        size, lines = values.shape[axis], math.prod(values.shape[1:axis])
        base = torch.arange(n * lines, device=values.device).view(n, lines, 1) * size
        rows = (base + index.view(n, 1, length)).view(-1)
        flat = values.reshape(n * lines * size, -1)
        if grad:
            return flat.index_select(0, rows).view(shape)
        torch.index_select(flat, 0, rows, out=into.view(rows.shape[0], -1))
        return into

    low = read(first)
    if weight is None:
        return low
    view = [n] + [1] * (values.ndim - 1)
    view[axis] = length
    weight = weight.view(view).to(work)
    if low.dtype != work or grad:
        return torch.lerp(low.to(work), read(second).to(work), weight)
    return low.lerp_(read(second), weight)


def resize_into_boxes(inputs: Tensor, low: Tensor, high: Tensor, mode: str = "bilinear", *,
                      out: Tensor | None = None) -> Tensor:
    """Paste each sample, resized whole, into its own box of the same grid (ResizeMix's partner).

    Inside ``low <= coord < high`` the result equals ``F.interpolate(inputs[i:i+1], size=box side,
    mode="linear"/"bilinear"/"trilinear", align_corners=False)`` (``"nearest"``: ``"nearest-exact"``,
    both with exact rational positions) placed at ``low``. Outside the boxes it holds values that
    a mask with 0 in the box never shows (``out``'s, or other finite values of the sample). The
    resize is separable: one pass per axis over the boxes' extent, whole lines copied where the
    axis is not the innermost, then the lines are written into place.

    Args:
        inputs: ``(n, C, *S)``, S of rank 1 to 3; float (interpolated in float32, float64 kept) or, for
            ``"nearest"``, any dtype (copied exactly). uint8 with ``"bilinear"`` is rounded back.
        low, high: ``(n, D)`` int64 CPU box corners, ``0 <= low < high <= S``.
        mode: one of :data:`RESIZE_MODES`.
        out: a contiguous tensor like ``inputs`` to write into (it may be ``inputs`` itself: every value
            is read before any is written); written in place unless it requires grad.

    Returns:
        ``out`` (or a new tensor); differentiable with respect to float inputs.

    Raises:
        MixMaskError: an unknown mode, or boxes that do not match the inputs.
    """
    check_choice("mode", mode, RESIZE_MODES)
    if low.shape != (inputs.shape[0], inputs.ndim - 2) or high.shape != low.shape:
        raise MixMaskError(f"expected ({inputs.shape[0]}, {inputs.ndim - 2}) box corners for inputs of shape "
                           f"{tuple(inputs.shape)}, but got {tuple(low.shape)} and {tuple(high.shape)}")
    return _paste_resized(inputs, low.cpu(), high.cpu(), mode, inputs.clone() if out is None else out, False)


def _paste_resized(inputs: Tensor, low: Tensor, high: Tensor, mode: str, out: Tensor, channels_last: bool) -> Tensor:
    """:func:`resize_into_boxes` on ``(n, C, *S)`` or, with ``channels_last``, ``(n, *S, C)`` tensors.

    Every spatial axis but the last is resampled into a canvas of the largest box side (box-local
    positions); the last one into its full length, position ``p`` reading box-local position
    ``(p - low) mod S`` (so columns land where they belong); the canvas lines are then written to
    rows ``(low + c) mod S``, which are distinct and outside the box for ``c`` past the box's side.
    """
    dims = inputs.ndim - 2
    axes = [1 + d if channels_last else 2 + d for d in range(dims)]
    shape = tuple(inputs.shape[k] for k in axes)
    device, linear = inputs.device, mode == "bilinear"
    work = torch.float64 if inputs.dtype == torch.float64 else torch.float32
    values = inputs.contiguous()
    for d, (axis, size) in enumerate(zip(axes, shape)):
        first, second, weight = _read_positions(low[:, d], high[:, d], size, linear, device)
        if d < dims - 1:
            extent = int((high[:, d] - low[:, d]).max())
            first, second = first[:, :extent], second[:, :extent]
            weight = weight[:, :extent] if weight is not None else None
        else:
            local = (torch.arange(size, device=device)[None] - to_device(low[:, d], device)[:, None]) % size
            first, second = first.gather(1, local), second.gather(1, local)
            weight = weight.gather(1, local) if weight is not None else None
        values = _resample(values, axis, first, second, weight, work)
    if values.dtype != inputs.dtype:
        values = (values.round_().clamp_(0, 255) if inputs.dtype == torch.uint8 else values).to(inputs.dtype)
    grad = out.requires_grad and torch.is_grad_enabled()
    if dims == 1:
        return values if grad else out.copy_(values)
    # the canvas' lines (everything after the last canvas axis) go to rows (low + c) mod S
    n, last = inputs.shape[0], axes[-2]
    lines = torch.zeros((), dtype=torch.long, device=device)
    for k in range(1, last + 1):
        size = out.shape[k]
        if k in axes:
            d = axes.index(k)
            index = (to_device(low[:, d], device)[:, None] + torch.arange(values.shape[k], device=device)) % size
            view = [n] + [1] * last
            view[k] = values.shape[k]
            lines = lines * size + index.view(view)
        else:
            view = [1] * (last + 1)
            view[k] = size
            lines = lines * size + torch.arange(size, device=device).view(view)
    lines = (torch.arange(n, device=device).view(-1, *[1] * last) * math.prod(out.shape[1:last + 1]) + lines)
    flat, rows = out.view(-1, math.prod(out.shape[last + 1:])), values.reshape(-1, math.prod(values.shape[last + 1:]))
    if grad:
        return flat.index_copy(0, lines.reshape(-1), rows).view(out.shape)
    flat.index_copy_(0, lines.reshape(-1), rows)
    return out


@dataclass(frozen=True, eq=False)
class ResizeWarp:
    """ResizeMix (Qin et al., 2020): each partner resized whole into its row's box.

    Attributes:
        rows: ``(n,)`` int64 rows of the batch this warp changes, ascending (on the mask's device).
        low, high: ``(n, D)`` int64 CPU box of each row (read on the host: no device sync).
        mode: ``"bilinear"`` or ``"nearest"`` for inputs; id maps always take the nearest pixel.
    """

    rows: Tensor
    low: Tensor
    high: Tensor
    mode: str = "bilinear"

    def warp_inputs(self, partners: Tensor, channels_last: bool) -> Tensor:
        """``(n, C, *S)`` (or ``(n, *S, C)``) contiguous partners, each resized into its box; written into
        ``partners`` (a buffer of the kernel's) unless they require grad."""
        return _paste_resized(partners, self.low, self.high, self.mode, partners, channels_last)

    def warp_ids(self, ids: Tensor) -> Tensor:
        """``(n, *S)`` id maps resized into the boxes with the nearest pixel (ids never blend), written into ``ids``."""
        ids = ids.contiguous()
        return _paste_resized(ids.unsqueeze(1), self.low, self.high, "nearest", ids.unsqueeze(1), False)[:, 0]

    def for_rows(self, rows: Tensor) -> ResizeWarp:
        """The same box for each of ``rows`` (a draw shared by the batch)."""
        n = rows.shape[0]
        return ResizeWarp(rows, self.low[:1].expand(n, -1), self.high[:1].expand(n, -1), self.mode)

    def to(self, device: torch.device) -> ResizeWarp:
        """The same warp with its rows on ``device`` (the box corners stay on the CPU)."""
        return ResizeWarp(to_device(self.rows, device), self.low, self.high, self.mode)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResizeWarp):
            return NotImplemented
        return self.mode == other.mode and all(_same(getattr(self, n), getattr(other, n))
                                               for n in ("rows", "low", "high"))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ResizeWarp(rows={self.rows.tolist()}, mode={self.mode!r})"


@dataclass(frozen=True, eq=False)
class NoiseWarp:
    """Cutout's noise fill: the partner of each row is per-pixel noise drawn from ``seed``.

    Float inputs get standard normal values (images are usually normalised: timm's RandomErasing
    ``mode='pixel'``), uint8 inputs uniform integers in [0, 255]. The noise is drawn on the
    partners' device from a generator seeded with ``seed``, channels first, so a replay, and a
    channels-last batch, get the same values at the same pixel and channel.

    Attributes:
        rows: ``(n,)`` int64 rows of the batch (on the mask's device).
        seed: seed of the noise.
    """

    rows: Tensor
    seed: int

    def warp_inputs(self, partners: Tensor, channels_last: bool) -> Tensor:
        """Noise shaped like ``partners`` (which are not read)."""
        shape: Sequence[int] = partners.shape
        first = (shape[0], shape[-1], *shape[1:-1]) if channels_last else tuple(shape)
        generator = torch.Generator(device=partners.device).manual_seed(self.seed)
        if partners.dtype == torch.uint8:
            noise = torch.randint(0, 256, first, generator=generator, device=partners.device, dtype=torch.uint8)
        else:
            noise = torch.randn(first, generator=generator, device=partners.device).to(partners.dtype)
        return noise.movedim(1, -1) if channels_last else noise

    def warp_ids(self, ids: Tensor) -> Tensor:
        """Id maps unchanged (a filled pixel keeps its own id, or ``ignore_index``)."""
        return ids

    def for_rows(self, rows: Tensor) -> NoiseWarp:
        """Noise for each of ``rows``."""
        return NoiseWarp(rows, self.seed)

    def to(self, device: torch.device) -> NoiseWarp:
        """The same warp with its rows on ``device``."""
        return NoiseWarp(to_device(self.rows, device), self.seed)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NoiseWarp):
            return NotImplemented
        return self.seed == other.seed and _same(self.rows, other.rows)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"NoiseWarp(rows={self.rows.tolist()}, seed={self.seed})"
