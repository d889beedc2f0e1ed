"""FMix grey images of elongated shapes, in time and memory that grow with ``|S|``, not ``max(S) ** D``.

The grey image of :func:`mixmask.functional.fmix_grey_images` is a periodic Gaussian field on a cube
of side ``T = max(S)`` cropped to ``S``; its covariance is

    C(r) = 2 / T^(2D) * sum_k A(k)^2 cos(2 pi k.r / T),   A(k) = T^delta / max(|k|, 1)^delta,

``k`` over the ``T^D`` lattice. Here the axes are split into *long* axes, drawn at their full period
``T`` by an inverse real FFT (then cropped to ``S_d``), and *short* axes (``M`` positions in all). For
a long-axis frequency ``k_L`` the field's Fourier coefficient along the long axes is a complex
circular Gaussian vector over the short positions, independent of the other frequencies, with the
real, symmetric, block-Toeplitz covariance

    C_kL(delta) = T^(-2 n_short) * sum_ks A(ks, kL)^2 prod_d cos(2 pi ks_d delta_d / T)

(the sine terms cancel: ``A`` depends on ``|k|`` only). It is drawn as ``R (z1 + i z2)`` with ``R``
the symmetric square root of ``C_kL`` (unique, so the draw does not depend on which basis an
eigensolver picks for a repeated eigenvalue), placed in the half spectrum of the long axes with the
cube's ``sqrt(2)`` weight on the zero and Nyquist bins of the last long axis, and inverse-FFT'd. The
result has the distribution of the cube's crop, scale included, at a cost per sample of about
``M * T ** n_long * log`` for the FFT plus ``#kL * M ** 2`` for the square roots.

The modes outside the ball ``|k| > K`` that hold at most :data:`TAIL` of the field's variance are
left out (a bound on the lattice sum, see :func:`ball_radius`), so for the usual decay powers only a
few dozen frequencies per axis are drawn. The way to draw each shape (the cube, or which axes are
long) is chosen by an estimate of its cost that depends on the shape and decay power only.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from mixmask.errors import MixMaskError

__all__ = ["TAIL", "FieldPlan", "ball_radius", "build_plan", "choose_long_axes", "normals_shape", "plan_fields"]

#: Largest share of the cube field's variance that the modes left out may hold.
TAIL = 1e-6
#: Largest table of square roots (float32 bytes) that a plan may hold; larger plans are not chosen.
_TABLE_BYTES = 64 << 20
#: Longest estimated preparation of a plan (ns), and the number of samples it is shared by when
#: plans are compared with the cube (a plan is prepared once per process, shape and device).
_PREPARE_NS, _AMORTIZE = 1e10, 1000
#: Most values a way of drawing a non-cubic shape may compute per sample: this many (4 GiB of float32)
#: or :data:`_FIELD_EXCESS` times the shape's own size, whichever is larger. A shape that no way fits
#: is refused (cubic shapes are always drawn on their cube).
_FIELD_VALUES = 1 << 30
_FIELD_EXCESS = 16
#: Float64 values per chunk of the covariance sums.
_CHUNK = 1 << 22
#: Square roots of at most this size are applied by broadcasting instead of a batched matmul, whose
#: cost per matrix dominates for tiny ones.
_SMALL_FACTOR = 8
#: Estimated CPU nanoseconds per unit of work, for choosing a plan (rough figures from a 2-core x86 VM;
#: only their ratios matter): one normal draw, one value written or copied, one value of an FFT per
#: factor 2 of its length, one multiply-add in a batched matmul or in a broadcast product, the fixed
#: cost of a plan's extra steps per sample; to prepare a plan: one power of the spectrum, one float64
#: multiply-add, one unit of ``M ** 3`` of an eigendecomposition.
_NS_DRAW, _NS_WRITE, _NS_FFT, _NS_MATMUL, _NS_BROADCAST, _NS_PLAN = 4.0, 1.0, 0.25, 0.15, 1.0, 2000.0
_NS_POWER, _NS_MAC64, _NS_EIGH = 20.0, 1.0, 5.0


def ball_radius(ndim: int, size: int, decay_power: float) -> float:
    """Radius ``K`` (lattice units) outside which the modes of the ``size ** ndim`` cube hold at most
    :data:`TAIL` of its variance; ``inf`` when no such ball leaves any lattice point out.

    With ``P(k) = max(|k|, 1) ** (-2 decay_power)`` the field's variance is at least
    ``P(0) + sum_{|k| = 1} P = 1 + 2 ndim``, and, ``P`` being radial and decreasing, the tail is
    bounded by an integral: ``sum_{|k| > K} P(k) <= w (1 + h / r) ** (ndim - 1) r ** (ndim - 2 decay_power)
    / (2 decay_power - ndim)`` with ``h = sqrt(ndim) / 2``, ``r = K - 2h`` and ``w`` the area of the unit
    sphere. The tail diverges (no ball) when ``2 decay_power <= ndim``.
    """
    exponent = 2.0 * decay_power - ndim
    farthest = math.sqrt(ndim) * (size // 2)
    if exponent <= 0 or size < 3:
        return math.inf
    sphere = (2.0, 2.0 * math.pi, 4.0 * math.pi)[ndim - 1]
    h = math.sqrt(ndim) / 2
    target = TAIL * (1 + 2 * ndim)

    def bound(k: float) -> float:
        r = k - 2 * h
        return sphere * (1 + h / r) ** (ndim - 1) * r ** (-exponent) / exponent

    radius = math.ceil(2 * h + (sphere / (exponent * target)) ** (1 / exponent))  # bound >= target here
    while radius < farthest and bound(radius) > target:
        radius += 1
    return float(radius) if radius < farthest else math.inf


def _frequencies(size: int, radius: float, half: bool) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """Signed lattice frequencies of one axis within ``radius``, and the ``(start, stop)`` ranges of FFT
    bins that hold them, in that order. ``half``: the non-negative half of a real FFT's last axis."""
    top = size // 2
    kmax = top if radius == math.inf else min(top, math.floor(radius))
    if half:
        return np.arange(kmax + 1), ((0, kmax + 1),)
    if 2 * kmax + 1 >= size:  # the whole axis (for an even size, -size/2 too)
        return np.concatenate([np.arange((size + 1) // 2), np.arange(-(size // 2), 0)]), ((0, size),)
    return np.concatenate([np.arange(kmax + 1), np.arange(-kmax, 0)]), ((0, kmax + 1), (size - kmax, size))


@dataclass(frozen=True, eq=False)
class FieldPlan:
    """How grey images of one shape and decay power are drawn (see the module's docstring).

    ``factor`` is ``(F, M, M)``: the square root of the short-axis covariance for each of the ``F``
    long-axis frequencies of ``box`` (flattened in C order), ``sqrt(2)`` included on the edge bins.
    ``placements`` pairs slices of the box with slices of the long axes' half spectrum.
    """

    shape: tuple[int, ...]
    long_axes: tuple[int, ...]
    short_axes: tuple[int, ...]
    size: int
    box: tuple[int, ...]
    placements: tuple[tuple[tuple[slice, ...], tuple[slice, ...]], ...]
    factor: Tensor


def _folded_frequencies(size: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative frequencies ``|k|`` within ``radius`` of one axis of the lattice, and how many
    lattice frequencies each stands for (``+k`` and ``-k``; 0 and an even size's ``size / 2`` once)."""
    top = size // 2
    kmax = top if radius == math.inf else min(top, math.floor(radius))
    count = np.full(kmax + 1, 2.0)
    count[0] = 1.0
    if size % 2 == 0 and kmax == top:
        count[-1] = 1.0
    return np.arange(kmax + 1), count


def _short_covariances(q_long: np.ndarray, short_sizes: tuple[int, ...], size: int, radius: float,
                       decay_power: float) -> np.ndarray:
    """``(Q, *short_sizes)`` float64: ``sum_ks P(ks, kL) prod_d cos(2 pi ks_d lag_d / size)`` for each
    squared long-axis norm ``q_long`` and each lag, ``P(k) = max(|k|, 1) ** (-2 decay_power)`` inside the
    ball of ``radius``, 0 outside. The cosines are even, so each axis is summed over ``|k|`` with counts."""
    folded = [_folded_frequencies(size, radius) for _ in short_sizes]
    q_short = functools.reduce(np.add.outer, [k * k for k, _ in folded])
    # count(k) cos(2 pi k lag / size), k * lag reduced mod size first: exact arguments for any size
    cosines = [count[:, None] * np.cos(2 * np.pi * (np.outer(k, np.arange(n)) % size) / size)
               for (k, count), n in zip(folded, short_sizes)]
    out = np.empty((len(q_long), *short_sizes))
    step = max(1, _CHUNK // q_short.size)
    for start in range(0, len(q_long), step):
        q = q_long[start:start + step].reshape(-1, *[1] * len(short_sizes)) + q_short
        weight = np.maximum(q, 1).astype(np.float64) ** -decay_power  # q = |k|^2
        if radius != math.inf:
            weight[q > radius * radius] = 0.0
        weight = weight @ cosines[-1]  # (c, [b1,] S_last)
        if len(short_sizes) == 2:
            weight = np.matmul(cosines[0].T, weight)  # (c, S1, S2)
        out[start:start + step] = weight
    return out


def _square_roots(covariances: np.ndarray, short_sizes: tuple[int, ...]) -> Tensor:
    """``(Q, M, M)`` float64: symmetric square roots of the block-Toeplitz matrices of ``covariances``
    ``(Q, *short_sizes)`` (negative rounding-level eigenvalues set to 0)."""
    positions = np.stack(np.meshgrid(*[np.arange(n) for n in short_sizes], indexing="ij"), -1).reshape(-1, len(
        short_sizes))
    lags = tuple(np.abs(positions[:, None, d] - positions[None, :, d]) for d in range(len(short_sizes)))
    m = positions.shape[0]
    out = torch.empty(covariances.shape[0], m, m, dtype=torch.float64)
    step = max(1, _CHUNK // (m * m))
    for start in range(0, covariances.shape[0], step):
        matrices = torch.from_numpy(covariances[(slice(start, start + step),) + lags])
        values, vectors = torch.linalg.eigh(matrices)
        out[start:start + step] = (vectors * values.clamp_min(0).sqrt()[:, None, :]) @ vectors.transpose(1, 2)
    return out


def build_plan(shape: tuple[int, ...], decay_power: float, long_axes: tuple[int, ...], dtype: torch.dtype,
               device: torch.device) -> FieldPlan:
    """The plan that draws ``shape``'s grey images with ``long_axes`` drawn by FFT (see the module).

    The tables are computed in float64 on the CPU, then stored as ``dtype`` on ``device``.
    """
    size, ndim = max(shape), len(shape)
    short_axes = tuple(d for d in range(ndim) if d not in long_axes)
    short_sizes = tuple(shape[d] for d in short_axes)
    radius = ball_radius(ndim, size, decay_power)
    axes = [_frequencies(size, radius, half=i == len(long_axes) - 1) for i in range(len(long_axes))]
    box = tuple(len(freqs) for freqs, _ in axes)
    q_long = functools.reduce(np.add.outer, [freqs * freqs for freqs, _ in axes]).reshape(-1)
    q_unique, inverse = np.unique(q_long, return_inverse=True)
    roots = _square_roots(_short_covariances(q_unique, short_sizes, size, radius, decay_power), short_sizes)
    # the zero and Nyquist bins of a real FFT's last axis stand for themselves only, the others for a
    # conjugate pair; A^2 / T^(2 n_short) with A = T^delta gives the cube's scale
    last = axes[-1][0]
    edge = (last == 0) | ((size % 2 == 0) & (last == size // 2))
    weight = np.where(edge, math.sqrt(2.0), 1.0) * float(size) ** (decay_power - len(short_axes))
    weight = np.broadcast_to(weight, box).reshape(-1).copy()
    factor = roots[torch.from_numpy(inverse.reshape(-1))] * torch.from_numpy(weight)[:, None, None]
    # each long axis holds its frequencies in one or two runs of FFT bins, in the box's order
    runs = []
    for _, ranges in axes:
        starts = np.cumsum([0] + [b - a for a, b in ranges])
        runs.append([(slice(int(o), int(o) + b - a), slice(a, b)) for o, (a, b) in zip(starts, ranges)])
    placements = tuple((tuple(s for s, _ in combo), tuple(t for _, t in combo)) for combo in itertools.product(*runs))
    return FieldPlan(shape, tuple(long_axes), short_axes, size, box, placements,
                     factor.to(device=device, dtype=dtype))


def normals_shape(plan: FieldPlan) -> tuple[int, int, int]:
    """Per-sample shape ``(F, M, 2)`` of the standard normal draws that :func:`plan_fields` takes."""
    return (plan.factor.shape[0], plan.factor.shape[1], 2)


def plan_fields(plan: FieldPlan, normals: Tensor) -> Tensor:
    """Grey images ``(B, *S)`` from standard normals ``(B, F, M, 2)`` (real and imaginary parts), a
    linear map; dtype and device of the plan."""
    factor = plan.factor
    count, m = factor.shape[:2]
    b = normals.shape[0]
    if m <= _SMALL_FACTOR:
        products = factor[None, :, :, 0, None] * normals[:, :, None, 0, :]
        for j in range(1, m):
            products.addcmul_(factor[None, :, :, j, None], normals[:, :, None, j, :])
        coefficients = torch.view_as_complex(products).permute(0, 2, 1)  # (B, M, F), a view
    else:
        columns = normals.permute(1, 2, 0, 3).reshape(count, m, 2 * b)
        products = torch.bmm(factor, columns).view(count, m, b, 2)
        coefficients = torch.view_as_complex(products).permute(2, 1, 0)  # (B, M, F), a view
    short_sizes = tuple(plan.shape[d] for d in plan.short_axes)
    coefficients = coefficients.view(b, *short_sizes, *plan.box)
    n_long = len(plan.long_axes)
    half = (plan.size,) * (n_long - 1) + (plan.size // 2 + 1,)
    if plan.box == half:  # every bin is drawn
        spectrum = coefficients
    else:
        spectrum = torch.zeros(b, *short_sizes, *half, dtype=coefficients.dtype, device=coefficients.device)
        for source, target in plan.placements:
            spectrum[(Ellipsis, *target)] = coefficients[(Ellipsis, *source)]
    grey = torch.fft.irfftn(spectrum, s=(plan.size,) * n_long, dim=tuple(range(-n_long, 0)))
    grey = grey[(Ellipsis, *[slice(0, plan.shape[d]) for d in plan.long_axes])]
    order = plan.short_axes + plan.long_axes
    return grey.permute(0, *[1 + order.index(d) for d in range(len(plan.shape))]).contiguous()


def _plan_estimate(shape: tuple[int, ...], decay_power: float, long_axes: tuple[int, ...]
                   ) -> tuple[float, int, float]:
    """``(ns per sample, table bytes, ns to prepare)`` of the plan with ``long_axes``, estimated."""
    size, ndim = max(shape), len(shape)
    radius = ball_radius(ndim, size, decay_power)
    short_sizes = [shape[d] for d in range(ndim) if d not in long_axes]
    m = math.prod(short_sizes)
    count = math.prod(len(_frequencies(size, radius, half=i == len(long_axes) - 1)[0])
                      for i in range(len(long_axes)))
    powers = count * len(_folded_frequencies(size, radius)[0]) ** len(short_sizes)
    field = m * size ** len(long_axes)
    per_sample = (field * (2 * _NS_WRITE + _NS_FFT * math.log2(size ** len(long_axes)))
                  + count * m * 2 * (_NS_DRAW + 2 * _NS_WRITE)
                  + count * m * m * 2 * (_NS_BROADCAST if m <= _SMALL_FACTOR else _NS_MATMUL) + _NS_PLAN)
    prepare = powers * (_NS_POWER + _NS_MAC64 * short_sizes[-1]) + count * m**3 * _NS_EIGH
    return per_sample, count * m * m * 4, prepare


def _cube_estimate(shape: tuple[int, ...]) -> float:
    """ns per sample of the cube: draws and scaling of the half spectrum, its inverse FFT."""
    values = max(shape) ** len(shape)
    return values * (_NS_DRAW + _NS_WRITE + _NS_FFT * math.log2(max(values, 2)))


def _field_limit(shape: tuple[int, ...]) -> int:
    """Most values a way of drawing ``shape`` may compute per sample."""
    return max(_FIELD_VALUES, _FIELD_EXCESS * math.prod(shape))


def _cheapest_plan(shape: tuple[int, ...], decay_power: float) -> tuple[tuple[int, ...] | None, bool]:
    """Long axes of the cheapest way that fits its budgets (None: the cube), and whether any fits."""
    size = max(shape)
    fixed = tuple(d for d, n in enumerate(shape) if n == size)
    free = [d for d, n in enumerate(shape) if n < size]
    fits = size ** len(shape) <= _field_limit(shape)
    best, best_cost = None, _cube_estimate(shape) if fits else math.inf
    for count in range(len(free)):
        for extra in itertools.combinations(free, count):
            long_axes = tuple(sorted(fixed + extra))
            field = math.prod(size if d in long_axes else n for d, n in enumerate(shape))
            per_sample, table, prepare = _plan_estimate(shape, decay_power, long_axes)
            if table > _TABLE_BYTES or prepare > _PREPARE_NS or field > _field_limit(shape):
                continue
            fits = True
            if per_sample + prepare / _AMORTIZE < best_cost:
                best, best_cost = long_axes, per_sample + prepare / _AMORTIZE
    return best, fits


def _size_text(nbytes: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes / 2**10:.1f} KiB"


@functools.lru_cache(maxsize=256)
def choose_long_axes(shape: tuple[int, ...], decay_power: float) -> tuple[int, ...] | None:
    """Long axes of the cheapest plan for ``shape``, or None for the cube (an FFT on ``max(S) ** D``).

    Cubic shapes always take the cube. Otherwise every set of long axes that holds the axes of size
    ``max(S)`` and leaves at least one short axis is estimated (time per sample plus its preparation
    shared by :data:`_AMORTIZE` samples), leaving out those whose table, preparation or values per
    sample exceed their budgets, and the cube too when it is too large. Depends on ``shape`` and
    ``decay_power`` only.

    Raises:
        MixMaskError: neither the cube nor any plan fits its budgets.
    """
    size = max(shape)
    if all(n == size for n in shape):
        return None
    best, fits = _cheapest_plan(shape, decay_power)
    if not fits:
        values = size ** len(shape)
        larger = next((p / 2 for p in range(math.floor(2 * decay_power) + 1, 41) if _cheapest_plan(shape, p / 2)[1]),
                      None)
        hint = f"decay_power >= {larger:g} fits" if larger is not None else "use a less elongated shape"
        raise MixMaskError(
            f"FMix grey images of spatial shape {shape} with decay_power={decay_power:g} would need an isotropic "
            f"field on a {size}^{len(shape)} cube ({_size_text(4.0 * values)} of float32 per sample), and drawing "
            f"it from the long axes needs more than {_size_text(_TABLE_BYTES)} of tables, {_PREPARE_NS / 1e9:g} s "
            f"to prepare or {_size_text(4.0 * _field_limit(shape))} per sample at this decay_power; {hint}")
    return best
