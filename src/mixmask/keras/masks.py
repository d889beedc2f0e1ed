"""Backend-generic samplers of the Keras layers: weights, partners and one mask per sample.

Every function takes ``ops``, a Keras backend module (a layer's ``self.backend``: TensorFlow inside a
``tf.data`` pipeline, else the configured backend), and ``seed`` (a ``keras.random.SeedGenerator``).
The batch size may be a dynamic tensor (``tf.data`` batches of unknown size); spatial shapes are
Python ints. Masks are ``(B, *S)``: bool for binary masks, float32 for soft ones; ``lam`` is the
``(B,)`` float32 mean of each mask, measured, as in :mod:`mixmask.functional.masks`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["sample_lam", "derangement", "other_class_partners", "cutmix_masks", "fmix_grey_images",
           "fmix_masks", "gridmask_masks", "mask_mean"]


def mask_mean(ops: Any, mask: Any) -> Any:
    """``(B,)`` float32 mean of each sample's mask ``(B, *S)``."""
    flat = ops.numpy.reshape(ops.cast(mask, "float32"), (ops.shape(mask)[0], -1))
    return ops.numpy.mean(flat, axis=1)


#: Candidates per Gamma draw (:func:`_log_gamma`): each is accepted with probability > 0.95, so all
#: of them are rejected with probability < 0.05 ** 8 (4e-11).
_CANDIDATES = 8


def _log_gamma(ops: Any, batch: Any, shape: float, seed: Any) -> Any:
    """``(B,)`` float32 ``log G``, ``G ~ Gamma(shape)`` with ``shape >= 1`` (Marsaglia and Tsang, 2000).

    The rejection method run on a fixed number of candidates, the first accepted one kept: only
    normal and uniform draws, which every backend compiles (TensorFlow's Gamma op has no XLA
    kernel). Should every candidate be rejected, the last is kept (clamped to a valid value).
    """
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    normal = ops.random.normal((_CANDIDATES, batch), dtype="float32", seed=seed)
    uniform = ops.random.uniform((_CANDIDATES, batch), dtype="float32", seed=seed)
    cube = ops.numpy.maximum(1.0 + c * normal, 1e-6) ** 3
    positive = (1.0 + c * normal) > 0
    log_cube = ops.numpy.log(cube)
    accept = ops.numpy.logical_and(
        positive, ops.numpy.log1p(-uniform) < 0.5 * normal * normal + d - d * cube + d * log_cube)
    first = ops.numpy.argmax(ops.cast(accept, "int32") + ops.cast(ops.numpy.arange(_CANDIDATES) == _CANDIDATES - 1,
                                                                  "int32")[:, None], axis=0)
    picked = ops.numpy.take_along_axis(log_cube, ops.cast(first, "int32")[None, :], axis=0)[0]
    return math.log(d) + picked


def sample_lam(ops: Any, batch: Any, alpha: float, seed: Any, *, reformulate: bool = False) -> Any:
    """``(B,)`` float32 ``lam ~ Beta(alpha, alpha)`` (``Beta(alpha + 1, alpha)`` with ``reformulate``).

    Drawn as ``G1 / (G1 + G2)`` from two Gamma draws, in log space (``Gamma(a) = Gamma(a + 1) *
    U ** (1 / a)``) so that small alphas, whose Gamma draws underflow, keep the right distribution.
    """
    shapes = (alpha + 1.0 if reformulate else alpha, alpha)
    logs = []
    for a in shapes:
        uniform = ops.random.uniform((batch,), dtype="float32", seed=seed)
        logs.append(_log_gamma(ops, batch, a + 1.0, seed) + ops.numpy.log1p(-uniform) / a)
    return ops.nn.sigmoid(logs[0] - logs[1])


def derangement(ops: Any, batch: Any, seed: Any) -> Any:
    """``(B,)`` int32 random permutation with no fixed point (B >= 2): each sample in a random order
    is paired with the next one. ``[0]`` for B = 1."""
    order = ops.cast(ops.numpy.argsort(ops.random.uniform((batch,), seed=seed)), "int32")
    position = ops.cast(ops.numpy.argsort(order), "int32")
    return ops.numpy.take(order, ops.numpy.mod(position + 1, ops.cast(batch, "int32")), axis=0)


def other_class_partners(ops: Any, targets: Any, seed: Any) -> Any:
    """``(B,)`` int32: for each sample a uniformly drawn partner whose ``(B, K)`` target row differs,
    or any other sample (:func:`derangement`) when every row equals its own."""
    batch = ops.shape(targets)[0]
    differs = ops.numpy.any(ops.numpy.not_equal(targets[:, None, :], targets[None, :, :]), axis=-1)
    scores = ops.random.uniform((batch, batch), seed=seed)
    fallback = derangement(ops, batch, seed)
    ids = ops.numpy.arange(batch)
    best = ops.numpy.where(differs, scores + 1.0, ops.numpy.zeros_like(scores))
    best = ops.numpy.where(ids[:, None] == ids[None, :], -ops.numpy.ones_like(best), best)
    choice = ops.cast(ops.numpy.argmax(best, axis=1), "int32")
    return ops.numpy.where(ops.numpy.any(differs, axis=1), choice, fallback)


def _axis_view(ops: Any, values: Any, axis: int, dims: int) -> Any:
    """``(B, n)`` as ``(B, 1, .., n, .., 1)`` with ``n`` at spatial ``axis`` of ``dims``."""
    shape = [-1] + [values.shape[1] if k == axis else 1 for k in range(dims)]
    return ops.numpy.reshape(values, shape)


def cutmix_masks(ops: Any, lam: Any, spatial: Sequence[int], seed: Any) -> tuple[Any, Any]:
    """CutMix (Yun et al., 2019): bool masks ``(B, *S)``, 0 inside one box per sample, and its measured lam.

    The box has the image's aspect ratio (side ``round(S_d * (1 - lam) ** (1 / D))``), a centre drawn
    uniformly over the image, and is clipped to it; lam is the area outside the clipped box.
    """
    dims = len(spatial)
    batch = ops.shape(lam)[0]
    sizes = ops.convert_to_tensor(np.asarray(spatial, dtype="float32"))
    sides = ops.numpy.round(sizes * ops.numpy.power(1.0 - lam[:, None], 1.0 / dims))
    centres = ops.numpy.floor(ops.random.uniform((batch, dims), seed=seed) * sizes)
    low = centres - ops.numpy.floor(sides / 2.0)
    high = ops.numpy.clip(low + sides, 0.0, sizes)
    low = ops.numpy.clip(low, 0.0, sizes)
    inside = None
    for d, size in enumerate(spatial):
        coord = ops.numpy.arange(size, dtype="float32")[None, :]
        axis = ops.numpy.logical_and(coord >= low[:, d:d + 1], coord < high[:, d:d + 1])
        axis = _axis_view(ops, axis, d, dims)
        inside = axis if inside is None else ops.numpy.logical_and(inside, axis)
    mask = ops.numpy.logical_not(inside)
    lam_used = 1.0 - ops.numpy.prod(high - low, axis=1) / float(math.prod(spatial))
    return mask, ops.cast(lam_used, "float32")


@functools.lru_cache(maxsize=16)
def _spectrum_scale(side: int, dims: int, decay_power: float) -> np.ndarray:
    """Amplitudes of the half spectrum ``(side,) * (dims - 1) + (side // 2 + 1,)`` of a cube of ``side``.

    ``1 / max(f, 1 / side) ** decay_power`` (``f`` in cycles per pixel), the same rule as the torch
    core, with the zero (and Nyquist) column of the last axis times ``sqrt(2)``: an inverse real
    transform counts every other bin of that axis twice (for its conjugate), so this weighting makes
    it equal in distribution to the real part of a full complex transform of i.i.d. bins.
    """
    axes = [np.fft.fftfreq(side)] * (dims - 1) + [np.fft.rfftfreq(side)]
    grids = np.meshgrid(*axes, indexing="ij")
    scale = 1.0 / np.maximum(np.sqrt(sum(g ** 2 for g in grids)), 1.0 / side) ** decay_power
    edge = np.zeros(side // 2 + 1, dtype=bool)
    edge[0] = True
    edge[-1] |= side % 2 == 0
    return (scale * np.where(edge, math.sqrt(2.0), 1.0)).astype("float32")


def _complex_transform(ops: Any, real: Any, imag: Any, axes: tuple[int, ...]) -> tuple[Any, Any]:
    """A discrete Fourier transform of ``(real, imag)`` over the leading spatial ``axes`` (one or two).

    The forward transform: for the spectra drawn here (i.i.d. bins, amplitudes even in ``f``) it has
    the distribution of the inverse one. Keras transforms the last axes, so the axes are moved there.
    """
    rank = len(real.shape)
    order = [0] + [a for a in range(1, rank) if a not in axes] + list(axes)
    back = [order.index(a) for a in range(rank)]
    real, imag = ops.numpy.transpose(real, order), ops.numpy.transpose(imag, order)
    real, imag = (ops.math.fft if len(axes) == 1 else ops.math.fft2)((real, imag))
    return ops.numpy.transpose(real, back), ops.numpy.transpose(imag, back)


def fmix_grey_images(ops: Any, batch: Any, spatial: Sequence[int], decay_power: float, seed: Any) -> Any:
    """Low-frequency grey images for FMix (Harris et al., 2020), float32 ``(B, *S)``.

    A complex spectrum with independent Gaussian real and imaginary parts, scaled by
    ``1 / max(f, 1 / max(S)) ** decay_power``; the grey image is the real part of its Fourier
    transform, computed as an inverse real transform of a half spectrum of the same distribution,
    as in the torch core. The field is drawn on a cube of side ``max(S)`` and cropped to ``S``, so
    its statistics are the same along every axis (isotropic) for any shape.
    """
    dims, side = len(spatial), max(spatial)
    scale = ops.convert_to_tensor(_spectrum_scale(side, dims, float(decay_power)))
    shape = (batch,) + (side,) * (dims - 1) + (side // 2 + 1,)
    real = ops.random.normal(shape, dtype="float32", seed=seed) * scale
    imag = ops.random.normal(shape, dtype="float32", seed=seed) * scale
    if dims > 1:
        real, imag = _complex_transform(ops, real, imag, tuple(range(1, dims)))
    grey = ops.math.irfft((real, imag), fft_length=side)
    return grey[(slice(None),) + tuple(slice(0, n) for n in spatial)]


def _ordered_keys(ops: Any, values: Any) -> Any:
    """int32 keys in the order of the float32 ``values``: the bits, with those of negatives reversed."""
    bits = ops.numpy.view(ops.cast(values, "float32"), "int32")
    return ops.numpy.where(bits < 0, ops.numpy.bitwise_xor(bits, np.int32(0x7FFFFFFF)), bits)


def _kth_largest_key(ops: Any, keys: Any, counts: Any) -> Any:
    """``(B,)`` the ``counts[i]``-th largest of row ``i`` of int32 ``keys`` ``(B, N)``, exactly, without a sort.

    A radix select: the threshold is built bit by bit from the top (32 passes of one comparison and
    a count), each bit kept when at least ``counts[i]`` keys are still above the threshold. On a CPU
    this is several times faster than sorting the rows (TensorFlow's sort is a full top-k).
    """
    batch = ops.shape(keys)[0]
    wanted = ops.cast(counts, "int32")[:, None]
    zero = ops.numpy.zeros((batch, 1), dtype="int32")
    # the sign bit first: is the answer >= 0?
    threshold = ops.numpy.where(ops.numpy.sum(ops.cast(keys >= 0, "int32"), axis=1, keepdims=True) >= wanted,
                                zero, zero + np.int32(-2**31))
    for bit in range(30, -1, -1):
        candidate = threshold + np.int32(1 << bit)  # bit ``bit`` of the threshold is 0 here: no carry
        enough = ops.numpy.sum(ops.cast(keys >= candidate, "int32"), axis=1, keepdims=True) >= wanted
        threshold = ops.numpy.where(enough, candidate, threshold)
    return threshold[:, 0]


def fmix_masks(ops: Any, lam: Any, spatial: Sequence[int], seed: Any, *, decay_power: float = 3.0,
               max_soft: float = 0.0) -> tuple[Any, Any]:
    """FMix masks: 1 on the top ``round(lam * |S|)`` values of each sample's grey image.

    Returns ``(mask, lam)``: bool ``(B, *S)`` (float32 with a soft edge when ``max_soft > 0``, as in
    :func:`mixmask.functional.fmix_masks`) and the measured mean of each mask.
    """
    batch = ops.shape(lam)[0]
    n = math.prod(spatial)
    grey = ops.numpy.reshape(fmix_grey_images(ops, batch, spatial, decay_power, seed), (batch, n))
    counts = ops.cast(ops.numpy.round(lam * float(n)), "int32")
    if max_soft > 0:
        order = ops.numpy.argsort(-grey, axis=1)
        ranks = ops.cast(ops.numpy.argsort(order, axis=1), "float32")  # 0 for the largest value
        soft = ops.numpy.floor(float(n) * ops.numpy.minimum(max_soft, ops.numpy.minimum(lam, 1.0 - lam)))
        low = (ops.cast(counts, "float32") - soft)[:, None]
        width = (2.0 * soft)[:, None]
        ramp = ops.numpy.clip(1.0 - (ranks - low) / ops.numpy.maximum(width - 1.0, 1.0), 0.0, 1.0)
        hard = ops.cast(ranks < ops.cast(counts, "float32")[:, None], "float32")
        mask = ops.numpy.where(width > 0, ramp, hard)
    else:
        keys = _ordered_keys(ops, grey)
        kth = _kth_largest_key(ops, keys, counts)
        mask = ops.numpy.logical_and(keys >= kth[:, None], (counts > 0)[:, None])
    mask = ops.numpy.reshape(mask, (batch,) + tuple(spatial))
    return mask, mask_mean(ops, mask)


def gridmask_masks(ops: Any, batch: Any, spatial: Sequence[int], seed: Any, *,
                   cell_size: tuple[float, float] = (96 / 224, 1.0), keep_ratio: float = 0.6,
                   rotate: float = 0.0) -> tuple[Any, Any]:
    """GridMask (Chen et al., 2020): bool masks ``(B, *S)``, 0 on a grid of dropped blocks, and the kept share.

    As :func:`mixmask.functional.gridmask_masks`: a cell size ``d`` per sample (an int in
    ``cell_size * min(S)``), a random offset per axis in ``[0, d)``, in 2-D a rotation in
    ``[-rotate, rotate]`` degrees; in each cell a block of side ``(1 - keep_ratio) * d`` is dropped.
    """
    dims = len(spatial)
    smallest = min(spatial)
    d_low, d_high = max(2, int(cell_size[0] * smallest)), max(2, int(cell_size[1] * smallest))
    cells = ops.numpy.floor(ops.random.uniform((batch, 1), seed=seed) * float(d_high + 1 - d_low)) + float(d_low)
    cells = ops.numpy.minimum(cells, float(d_high))
    offsets = ops.random.uniform((batch, dims), seed=seed) * cells
    dropped_side = (1.0 - keep_ratio) * cells
    coords = [ops.numpy.arange(n, dtype="float32") - (n - 1) / 2.0 for n in spatial]
    view = (-1,) + (1,) * dims
    if rotate > 0 and dims == 2:
        angles = (ops.random.uniform((batch,), seed=seed) * 2.0 - 1.0) * math.radians(rotate)
        cos, sin = (ops.numpy.reshape(f(angles), (-1, 1, 1)) for f in (ops.numpy.cos, ops.numpy.sin))
        y, x = ops.numpy.reshape(coords[0], (1, -1, 1)), ops.numpy.reshape(coords[1], (1, 1, -1))
        coords = [cos * y - sin * x, sin * y + cos * x]
    else:
        coords = [ops.numpy.reshape(c, [1] + [n if k == d else 1 for k, n in enumerate(spatial)])
                  for d, c in enumerate(coords)]
    period = ops.numpy.reshape(cells, view)
    dropped = None
    for d in range(dims):
        shift = ops.numpy.reshape(offsets[:, d], view)
        axis = ops.numpy.mod(coords[d] + shift, period) < ops.numpy.reshape(dropped_side, view)
        dropped = axis if dropped is None else ops.numpy.logical_and(dropped, axis)
    mask = ops.numpy.logical_not(dropped)  # (B, *S): every axis contributed its own dim
    return mask, mask_mean(ops, mask)
