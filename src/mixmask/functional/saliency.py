"""Saliency maps for the methods that place their mask where a partner is salient (SaliencyMix).

:func:`spectral_saliency` is the spectral residual of Hou & Zhang (CVPR 2007), computed for a whole
batch in one pass of FFTs, with the constants of OpenCV's ``StaticSaliencySpectralResidual``; it is
defined on signals, images and volumes alike. :func:`saliency_peaks` turns any saliency map (this
one, or one a caller computed, e.g. from a model) into the coordinates of its maximum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional._checks import check_int

__all__ = ["spectral_saliency", "saliency_peaks"]

#: Luma weights of R, G and B (ITU-R BT.601), for 3-channel inputs; other channel counts are averaged.
_LUMA = (0.299, 0.587, 0.114)
#: Taps and sigma (in working pixels) of the Gaussian that smooths the saliency (as OpenCV's 5x5, sigma 8).
_BLUR_TAPS, _BLUR_SIGMA = 5, 8.0
_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _resize(values: Tensor, size: tuple[int, ...]) -> Tensor:
    """``(n, C, *S)`` float resized to ``(n, C, *size)``: linear interpolation at pixel centres, no antialias."""
    if tuple(values.shape[2:]) == tuple(size):
        return values
    return F.interpolate(values, size=size, mode=_MODES[len(size)], align_corners=False)


def _filter_axes(values: Tensor, taps: Tensor) -> Tensor:
    """``(n, *s)`` filtered along every axis by the 1-D kernel ``taps``, borders reflected (no edge repeat)."""
    radius = taps.numel() // 2
    out = values
    for axis in range(1, values.ndim):
        size = out.shape[axis]
        moved = out.movedim(axis, -1).reshape(-1, 1, size)
        if size > radius:
            moved = F.pad(moved, (radius, radius), mode="reflect")
            moved = F.conv1d(moved, taps.view(1, 1, -1))
        else:  # too short to reflect: a mean of the pixels there are
            moved = moved.mean(-1, keepdim=True).expand(-1, 1, size)
        out = moved.reshape(*out.movedim(axis, -1).shape).movedim(-1, axis)
    return out


def spectral_saliency(inputs: Tensor, *, size: int = 64) -> Tensor:
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

    Returns:
        float32 ``(B, *S)`` maps in [0, 1] on the inputs' device.

    Raises:
        MixMaskError: not a ``(B, C, *S)`` tensor of rank 3 to 5, or a bad ``size``.
    """
    if not isinstance(inputs, Tensor) or not 3 <= inputs.ndim <= 5 or inputs.shape[0] == 0:
        got = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise MixMaskError(f"expected a (B, C, *S) batch with 1 to 3 spatial dims, but got {got}")
    size = check_int("size", size, low=4)
    with torch.no_grad():
        shape = tuple(inputs.shape[2:])
        small = tuple(min(s, size) for s in shape)
        values = inputs.detach()
        values = values.float() if values.dtype != torch.float64 else values
        values = _resize(values, small)
        if values.shape[1] == 3:
            weights = torch.tensor(_LUMA, dtype=values.dtype, device=values.device)
            grey = torch.einsum("nc...,c->n...", values, weights)
        else:
            grey = values.mean(1)
        dims = tuple(range(1, grey.ndim))
        spectrum = torch.fft.fftn(grey.double(), dim=dims)
        amplitude = spectrum.abs()
        log_amplitude = torch.log1p(amplitude)
        mean = torch.full((3,), 1.0 / 3.0, dtype=torch.float64, device=grey.device)
        residual = log_amplitude - _filter_axes(log_amplitude, mean)
        phase = torch.where(amplitude > 0, spectrum / amplitude.clamp_min(1e-300), torch.ones_like(spectrum))
        magnitude = torch.fft.ifftn(torch.exp(residual) * phase, dim=dims).abs()
        offsets = torch.arange(_BLUR_TAPS, dtype=torch.float64, device=grey.device) - _BLUR_TAPS // 2
        gauss = torch.exp(-offsets**2 / (2 * _BLUR_SIGMA**2))
        magnitude = _filter_axes(magnitude, gauss / gauss.sum()) ** 2
        peak = magnitude.flatten(1).amax(1).clamp_min(1e-300).view(-1, *[1] * len(small))
        maps = (magnitude / peak).float()
        return _resize(maps.unsqueeze(1), shape)[:, 0].clamp_(0.0, 1.0)


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
