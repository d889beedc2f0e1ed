"""Saliency maps for the methods that place their mask where a partner is salient (SaliencyMix).

:func:`spectral_saliency` is the spectral residual of Hou & Zhang (CVPR 2007), computed for a whole
batch in one pass of FFTs, with the constants of OpenCV's ``StaticSaliencySpectralResidual``; it is
defined on signals, images and volumes alike. :func:`saliency_peaks` turns any saliency map (this
one, or one a caller computed, e.g. from a model) into the coordinates of its maximum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional._checks import check_int

__all__ = ["spectral_saliency", "saliency_peaks"]

#: Luma weights of R, G and B (ITU-R BT.601), for 3-channel inputs; other channel counts are averaged.
_LUMA = (0.299, 0.587, 0.114)
#: Taps and sigma (in working pixels) of the Gaussian that smooths the saliency (as OpenCV's 5x5, sigma 8).
_BLUR_TAPS, _BLUR_SIGMA = 5, 8.0


def _linear_weights(size: int, length: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Where each of ``length`` outputs reads an axis of ``size`` inputs: ``F.interpolate``'s linear rule
    with ``align_corners=False`` (half-pixel centres, clamped at the borders, no antialiasing)."""
    where = ((torch.arange(length, device=device, dtype=torch.float64) + 0.5) * (size / length) - 0.5).clamp_(min=0)
    first = where.floor().long().clamp_(max=size - 1)
    return first, (first + 1).clamp_(max=size - 1), (where - first).clamp_(0, 1)


def _resize(values: Tensor, size: tuple[int, ...]) -> Tensor:
    """``(n, C, *S)`` float resized linearly to ``(n, C, *size)``, one axis at a time.

    Each pass reads only the two input lines around each output line (``index_select``), so
    shrinking a batch touches a fraction of it; the values equal ``F.interpolate(mode="bilinear"/...,
    align_corners=False)`` up to float rounding.
    """
    work = values.dtype if values.dtype in (torch.float32, torch.float64) else torch.float32
    for axis, length in enumerate(size, start=2):
        if values.shape[axis] == length:
            continue
        first, second, weight = _linear_weights(values.shape[axis], length, values.device)
        view = [1] * values.ndim
        view[axis] = length
        low = values.index_select(axis, first).to(work)
        values = low.lerp_(values.index_select(axis, second).to(work), weight.view(view).to(work))
    return values.to(work)


def _filter_axes(values: Tensor, taps: Sequence[float]) -> Tensor:
    """``(n, *s)`` filtered along every axis by the odd 1-D kernel ``taps``, borders reflected (no edge repeat)."""
    radius = len(taps) // 2
    for axis in range(1, values.ndim):
        size = values.shape[axis]
        if size <= radius:  # too short to reflect: the mean of the pixels there are
            values = values.mean(axis, keepdim=True).expand_as(values).contiguous()
            continue
        index = torch.arange(-radius, size + radius, device=values.device).abs()
        index = torch.where(index >= size, 2 * (size - 1) - index, index)
        padded = values.index_select(axis, index)
        out = padded.narrow(axis, 0, size) * taps[0]
        for k in range(1, len(taps)):
            out.add_(padded.narrow(axis, k, size), alpha=taps[k])
        values = out
    return values


def _small_saliency(inputs: Tensor, size: int, rows: Tensor | None) -> Tensor:
    """Spectral residual of ``inputs[rows]`` (all rows when None) at the working size: float ``(n, *s)``
    (float32, or float64 for float64 inputs)."""
    shape = tuple(inputs.shape[2:])
    small = tuple(min(s, size) for s in shape)
    values = inputs.detach()
    if rows is not None and 2 * rows.numel() <= values.shape[0]:  # a few rows: copy them, then shrink
        values, rows = values.index_select(0, rows), None
    values = _resize(values, small)  # reads only the lines it interpolates from
    if rows is not None:
        values = values.index_select(0, rows)
    if not values.dtype.is_floating_point or values.dtype in (torch.float16, torch.bfloat16):
        values = values.float()
    if values.shape[1] == 3:
        grey = values[:, 0] * _LUMA[0] + values[:, 1] * _LUMA[1] + values[:, 2] * _LUMA[2]
    else:
        grey = values.mean(1)
    dims = tuple(range(1, grey.ndim))
    spectrum = torch.fft.fftn(grey, dim=dims)
    amplitude = spectrum.abs()
    log_amplitude = torch.log1p(amplitude)
    residual = log_amplitude - _filter_axes(log_amplitude, (1 / 3, 1 / 3, 1 / 3))
    phase = torch.where(amplitude > 0, spectrum / amplitude.clamp_min(torch.finfo(amplitude.dtype).tiny),
                        torch.ones_like(spectrum))
    magnitude = torch.fft.ifftn(torch.exp(residual) * phase, dim=dims).abs()
    gauss = [math.exp(-(k - _BLUR_TAPS // 2) ** 2 / (2 * _BLUR_SIGMA**2)) for k in range(_BLUR_TAPS)]
    magnitude = _filter_axes(magnitude, [g / sum(gauss) for g in gauss]) ** 2
    peak = magnitude.flatten(1).amax(1).clamp_min(torch.finfo(magnitude.dtype).tiny).view(-1, *[1] * len(small))
    return magnitude / peak


def spectral_saliency(inputs: Tensor, *, size: int = 64, rows: Tensor | None = None) -> Tensor:
    """Spectral-residual saliency (Hou & Zhang, 2007) of every sample, in one batched pass.

    Each sample is made grey (BT.601 luma for 3 channels, else the channel mean), resized linearly
    to ``min(S_d, size)`` per axis, Fourier transformed; the log amplitude ``log(1 + |F|)`` minus its
    local mean over 3 bins per axis is the spectral residual, which is brought back with the
    original phase; the magnitude of the result is smoothed (5 taps, sigma 8 working pixels),
    squared, scaled to a maximum of 1 and resized back to ``S``. These are the steps and constants
    of OpenCV's ``StaticSaliencySpectralResidual`` (64 x 64 working size), in any rank.

    Args:
        inputs: ``(B, C, *S)`` float or uint8 batch, S of rank 1 to 3 (not modified, no gradient).
        size: working side per axis (>= 4).
        rows: ``(n,)`` int64 rows of ``inputs`` to compute (repeats allowed), or None for all.

    Returns:
        float32 ``(n, *S)`` maps in [0, 1] on the inputs' device.

    Raises:
        MixMaskError: not a ``(B, C, *S)`` tensor of rank 3 to 5, or a bad ``size``.
    """
    if not isinstance(inputs, Tensor) or not 3 <= inputs.ndim <= 5 or inputs.shape[0] == 0:
        got = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise MixMaskError(f"expected a (B, C, *S) batch with 1 to 3 spatial dims, but got {got}")
    size = check_int("size", size, low=4)
    with torch.no_grad():
        if rows is None:
            maps = _small_saliency(inputs, size, None)
        else:
            unique, inverse = torch.unique(rows.to(inputs.device), return_inverse=True)
            whole = unique.numel() == inputs.shape[0]  # every row is asked for: no selection before shrinking
            maps = _small_saliency(inputs, size, None if whole else unique).index_select(0, inverse)
        return _resize(maps.float().unsqueeze(1), tuple(inputs.shape[2:]))[:, 0].clamp_(0.0, 1.0)


def saliency_peaks(saliency: Tensor) -> Tensor:
    """Coordinates of the maximum of each map (the first in flat order on ties).

    Args:
        saliency: ``(B, *S)`` real maps, S of rank 1 to 3.

    Returns:
        ``(B, D)`` int64 coordinates on the maps' device.

    Raises:
        MixMaskError: not a real ``(B, *S)`` tensor of rank 2 to 4, or a map holding NaN.
    """
    if (not isinstance(saliency, Tensor) or not 2 <= saliency.ndim <= 4 or saliency.is_complex()
            or saliency.shape[0] == 0 or saliency.dtype == torch.bool):
        got = f"{saliency.dtype} {tuple(saliency.shape)}" if isinstance(saliency, Tensor) else type(saliency).__name__
        raise MixMaskError(f"expected real (B, *S) saliency maps with 1 to 3 spatial dims, but got {got}")
    flat = saliency.detach().reshape(saliency.shape[0], -1)
    if flat.dtype.is_floating_point and bool(flat.isnan().any()):
        raise MixMaskError("expected saliency maps without NaN, but got NaN values")
    index = flat.argmax(1)
    coords = []
    for side in reversed(saliency.shape[1:]):
        coords.append(index % side)
        index = torch.div(index, side, rounding_mode="floor")
    return torch.stack(coords[::-1], 1)
