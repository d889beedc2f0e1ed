"""Mask samplers: one mixing mask ``M[i]`` per sample, built for the whole batch at once.

Every sampler returns ``(mask, lam)`` where ``mask`` is ``(B, *S)`` on the requested device (bool
for binary masks, float32 for soft ones) and ``lam`` is the ``(B,)`` float32 mean of each mask,
measured from the mask that was built, never the weight that was drawn.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from mixmask.errors import MixMaskError
from mixmask.functional._checks import (check_batch_size, check_choice, check_finite_range, check_int,
                                        check_int_pair, check_pair, check_positive, check_spatial_shape, to_device)
from mixmask.functional._cache import TensorCache
from mixmask.functional._fields import build_plan, choose_long_axes, normals_shape, plan_fields
from mixmask.functional._memory import empty
from mixmask.functional.params import mask_mean

__all__ = ["mixup_masks", "cutmix_boxes", "cutmix_masks", "fmix_grey_images", "fmix_masks", "gridmask_masks",
           "centred_boxes", "resizemix_boxes", "saliencymix_boxes", "smoothmix_masks", "gridmix_masks", "cutout_masks",
           "classmix_masks"]


def _check_lam(lam: Tensor) -> Tensor:
    if not isinstance(lam, Tensor) or lam.ndim != 1 or lam.numel() == 0:
        raise MixMaskError(f"expected lam as a non-empty (B,) tensor, but got {lam!r}")
    if not bool(((lam >= 0) & (lam <= 1)).all()):  # NaN fails both comparisons
        raise MixMaskError(f"expected every lam in [0, 1], but got {lam.tolist()}")
    return lam


def mixup_masks(lam: Tensor, spatial_shape: Sequence[int], device: torch.device | str = "cpu"
                ) -> tuple[Tensor, Tensor]:
    """MixUp (Zhang et al., 2018): the mask of sample i is the constant ``lam[i]``.

    Args:
        lam: ``(B,)`` weights in [0, 1].
        spatial_shape: ``S``.
        device: where the mask lives.

    Returns:
        ``(mask, lam)``: ``mask`` is a float32 ``(B, *S)`` expanded view (no memory per pixel).

    Raises:
        MixMaskError: lam not a (B,) tensor in [0, 1], or a bad shape.
    """
    return _mixup_masks(_check_lam(lam), spatial_shape, device)


def _mixup_masks(lam: Tensor, spatial_shape: Sequence[int], device: torch.device | str) -> tuple[Tensor, Tensor]:
    """:func:`mixup_masks` for weights the library drew itself (in range by construction, not checked)."""
    shape = check_spatial_shape(spatial_shape)
    lam = to_device(lam, device, torch.float32)
    mask = lam.view(-1, *([1] * len(shape))).expand(-1, *shape)
    return mask, lam


def cutmix_boxes(lam: Tensor, spatial_shape: Sequence[int], generator: torch.Generator, *,
                 num_boxes: int = 1) -> tuple[Tensor, Tensor]:
    """Draw boxes per sample whose unclipped volumes add up to ``(1 - lam) * |S|`` (Yun et al., 2019).

    Each box has the image's aspect ratio (side ``S_d * ((1 - lam) / num_boxes) ** (1 / D)``), a centre
    drawn uniformly over the image, and is clipped to the image. Boxes of one sample may overlap.

    Args:
        lam: ``(B,)`` drawn weights in [0, 1].
        spatial_shape: ``S`` of rank 1 to 3.
        generator: CPU generator for the centres.
        num_boxes: boxes per sample (kornia's ``num_mix``), >= 1.

    Returns:
        ``(low, high)``: ``(B, D)`` int64 CPU tensors (``(B, num_boxes, D)`` when ``num_boxes > 1``); a
        clipped box is ``low <= coord < high``.

    Raises:
        MixMaskError: lam not a (B,) tensor in [0, 1], a bad shape or num_boxes.
    """
    num_boxes = check_int("num_boxes", num_boxes, low=1)
    low, high = (torch.from_numpy(c) for c in _cutmix_boxes(_check_lam(lam), check_spatial_shape(spatial_shape),
                                                             generator, num_boxes))
    return (low[:, 0], high[:, 0]) if num_boxes == 1 else (low, high)


def _cutmix_boxes(lam: Tensor, shape: tuple[int, ...], generator: torch.Generator,
                  num_boxes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cutmix_boxes` for weights the library drew itself and a checked ``shape``: ``(B, num_boxes, D)``
    int64 numpy corners.

    The O(B) arithmetic runs in numpy (same IEEE operations, same results; a torch op on a tiny tensor
    costs microseconds of dispatch); the random numbers and the power come from torch.
    """
    lam = lam.to("cpu", torch.float64).numpy()
    sizes = np.array(shape, dtype=np.float64)
    share = torch.from_numpy(((1.0 - lam) / num_boxes)[:, None, None])
    sides = np.round(sizes * (share ** (1.0 / len(shape))).numpy()).astype(np.int64)
    draws = torch.rand(lam.shape[0], num_boxes, len(shape), generator=generator, dtype=torch.float64).numpy()
    low = (draws * sizes).astype(np.int64) - sides // 2
    limit = np.array(shape)
    return np.minimum(np.maximum(low, 0), limit), np.minimum(np.maximum(low + sides, 0), limit)


def _box_sides(lam: Tensor, shape: tuple[int, ...], num_boxes: int = 1) -> Tensor:
    """``(B, num_boxes, D)`` int64 sides of boxes with the image's aspect ratio, volumes ``(1 - lam) * |S| / num_boxes``."""
    lam = lam.to(dtype=torch.float64, device="cpu")
    share = ((1.0 - lam) / num_boxes)[:, None, None]
    return torch.round(torch.tensor(shape, dtype=torch.float64) * share ** (1.0 / len(shape))).long()


def centred_boxes(centres: Tensor, sides: Tensor, spatial_shape: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Boxes of the given sides around the given centres, clipped to the image.

    A box is ``low <= coord < high`` with ``low = centre - side // 2`` and ``high = low + side``
    before clipping (CutMix's convention: the centre pixel is inside every box of side >= 1).

    Args:
        centres, sides: int64 ``(..., D)`` (broadcastable), on one device.
        spatial_shape: ``S``.

    Returns:
        ``(low, high)`` int64 ``(..., D)`` clipped to ``[0, S_d]``, on the centres' device.
    """
    low = centres - sides // 2
    limit = torch.tensor(tuple(spatial_shape), device=centres.device)
    return low.clamp(min=0).minimum(limit), (low + sides).clamp(min=0).minimum(limit)


def ranged_boxes(batch_size: int, spatial_shape: Sequence[int], size_range: tuple[float, float],
                 generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """One box per sample with sides drawn in a range of the image's sides, inside the image.

    Side ``d`` is a uniform int in ``[int(S_d * low), int(S_d * high))`` (at least 1) and the box's
    corner is uniform over the places where it fits: timm's ``cutmix_minmax`` boxes.

    Args:
        batch_size: B.
        spatial_shape: ``S`` of rank 1 to 3.
        size_range: ``(low, high)`` fractions of each side, ``0 <= low < high <= 1``.
        generator: CPU generator.

    Returns:
        ``(low, high)``: ``(B, 1, D)`` int64 CPU tensors.
    """
    shape = check_spatial_shape(spatial_shape)
    sizes = torch.tensor(shape, dtype=torch.float64)
    first = (sizes * size_range[0]).long().clamp(min=1)
    last = (sizes * size_range[1]).long().clamp(min=1).maximum(first + 1)  # exclusive
    draws = torch.rand(batch_size, 1, len(shape), generator=generator, dtype=torch.float64)
    sides = (first + (draws * (last - first)).long()).minimum(torch.tensor(shape))
    corners = (torch.rand(batch_size, 1, len(shape), generator=generator, dtype=torch.float64)
               * (torch.tensor(shape) - sides + 1)).long()
    return corners, corners + sides


#: Masks of boxes up to this many elements are built in numpy on the CPU: below it a few numpy calls cost
#: less than torch's per-op overhead; above it a broadcast torch ``maximum`` is several times faster.
_NUMPY_BOXES_MAX = 1 << 15


def _numpy(corners: Tensor | np.ndarray) -> np.ndarray:
    return corners.numpy() if isinstance(corners, Tensor) else corners


@functools.lru_cache(maxsize=16)
def _coords(size: int) -> np.ndarray:
    """``np.arange(size)``, read only."""
    coords = np.arange(size)
    coords.flags.writeable = False
    return coords


def _outside_axes(low: Tensor | np.ndarray, high: Tensor | np.ndarray, shape: tuple[int, ...], device: torch.device,
                  box: int) -> list:
    """Per axis ``d``, the ``(B, S_d)`` bool test ``coord < low or coord >= high`` of box ``box``, shaped to broadcast
    over ``(B, *S)``: numpy arrays when the corners (tensors or numpy) and ``device`` are on the CPU, else tensors
    on ``device``."""
    dims = len(shape)
    cpu = device.type == "cpu" and (isinstance(low, np.ndarray) or low.device.type == "cpu")
    if cpu:
        lows, highs = _numpy(low), _numpy(high)
    else:
        lows, highs = (to_device(torch.as_tensor(c), device) for c in (low, high))
    tests = []
    for d, size in enumerate(shape):
        coord = _coords(size) if cpu else torch.arange(size, device=device)
        outside = (coord < lows[:, box, d, None]) | (coord >= highs[:, box, d, None])
        tests.append(outside.reshape(-1, *[size if k == d else 1 for k in range(dims)]))
    return tests


def box_masks(low: Tensor | np.ndarray, high: Tensor | np.ndarray, shape: tuple[int, ...],
              device: torch.device | str) -> tuple[Tensor, Tensor]:
    """``(B, *S)`` bool, True outside every box of each sample, and its ``(B,)`` float32 mean.

    Args:
        low, high: ``(B, n, D)`` int64 box corners (``low <= coord < high``): tensors on the CPU or on
            ``device``, or numpy arrays.
        shape: ``S``.
        device: where the mask is built.
    """
    mask = box_weights(low, high, shape, torch.bool, device)
    if low.shape[1] == 1:  # one box: the kept area is known without reading the mask
        return mask, to_device(box_lam(low, high, shape), device)
    return mask, mask_mean(mask)


def box_weights(low: Tensor | np.ndarray, high: Tensor | np.ndarray, shape: tuple[int, ...], dtype: torch.dtype,
                device: torch.device | str) -> Tensor:
    """The mask of :func:`box_masks` as ``(B, *S)`` of ``dtype``: 1 (True) outside every box, 0 inside.

    Built as ``max(outside_1, ..., outside_D)`` of per-axis 0/1 tests per box, in ``dtype`` (bool as uint8):
    one broadcast pass over the batch per box. A float ``dtype`` gives a blend its weights with no bool mask
    to convert, and a broadcast ``maximum`` costs a fraction of a bool ``|`` in torch or numpy.

    Args:
        low, high: ``(B, n, D)`` int64 box corners, as for :func:`box_masks`.
        shape: ``S``.
        dtype: bool or a floating dtype (the inputs').
        device: where the weights are built.
    """
    device = torch.device(device)
    small = low.shape[0] * math.prod(shape) <= _NUMPY_BOXES_MAX
    weights = None
    for b in range(low.shape[1]):  # a loop over boxes, not samples
        tests = _outside_axes(low, high, shape, device, b)
        if isinstance(tests[0], np.ndarray) and small:  # one numpy pass and one conversion cost least
            union = functools.reduce(np.logical_or, tests)
            outside = torch.from_numpy(union) if dtype == torch.bool else _as_dtype(union, dtype)
        else:  # float weights convert the small per-axis tests, not the batch; bool ones view them as 0/1 bytes
            axes = [_as_dtype(t, dtype) for t in tests]
            outside = functools.reduce(torch.maximum, axes)  # only the last maximum is batch-sized
            outside = outside.view(torch.bool) if dtype == torch.bool else outside
        weights = outside if weights is None else weights.mul_(outside)  # bool mul: and
    return weights


#: The float dtypes whose box weights are converted in numpy (bfloat16 has no numpy dtype).
_NUMPY_DTYPES = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def _as_dtype(test: Tensor | np.ndarray, dtype: torch.dtype) -> Tensor:
    """A per-axis bool test as a tensor of ``dtype`` (bool: its 0/1 bytes as uint8, no copy); numpy tests
    are converted in numpy, where a conversion costs no tensor op."""
    if isinstance(test, np.ndarray):
        if dtype == torch.bool:
            return torch.from_numpy(test.view(np.uint8))
        if dtype in _NUMPY_DTYPES:
            return torch.from_numpy(test.astype(_NUMPY_DTYPES[dtype]))
        test = torch.from_numpy(test)
    return test.view(torch.uint8) if dtype == torch.bool else test.to(dtype)


def stacked_box_weights(boxes: Tensor, shape: tuple[int, ...], dtype: torch.dtype,
                        device: torch.device | str) -> Tensor:
    """:func:`box_weights` of boxes stored as ``(B, n, 2, D)`` CPU corners (``MaskDraw.boxes``,
    ``MixParams.boxes``), read into numpy once."""
    corners = boxes.numpy()
    return box_weights(corners[:, :, 0], corners[:, :, 1], shape, dtype, device)


def box_lam(low: Tensor | np.ndarray, high: Tensor | np.ndarray, shape: tuple[int, ...]) -> Tensor:
    """``(B,)`` float32 share of each sample outside its one box (``low``, ``high``: ``(B, 1, D)``), on the
    corners' device: ``1 - clipped volume / |S|`` (in numpy on the CPU: the same IEEE steps)."""
    if isinstance(low, np.ndarray) or low.device.type == "cpu":
        volumes = np.maximum(_numpy(high)[:, 0] - _numpy(low)[:, 0], 0).prod(-1)
        return torch.from_numpy((1.0 - volumes.astype(np.float64) / math.prod(shape)).astype(np.float32))
    volumes = (high[:, 0] - low[:, 0]).clamp(min=0).prod(-1)
    return (1.0 - volumes.double() / math.prod(shape)).float()


def cutmix_masks(lam: Tensor, spatial_shape: Sequence[int], generator: torch.Generator,
                 device: torch.device | str = "cpu", *, num_boxes: int = 1) -> tuple[Tensor, Tensor]:
    """CutMix masks: 0 inside ``num_boxes`` boxes per sample (intervals, rectangles or cuboids), 1 outside.

    Args:
        lam: ``(B,)`` drawn weights; the boxes' unclipped volumes add up to ``(1 - lam) * |S|``.
        spatial_shape: ``S`` of rank 1 to 3.
        generator: CPU generator for the box centres.
        device: where the mask is built.
        num_boxes: boxes per sample.

    Returns:
        ``(mask, lam)``: bool ``(B, *S)`` and the ``(B,)`` float32 area outside the clipped boxes.

    Raises:
        MixMaskError: lam not a (B,) tensor in [0, 1], a bad shape or num_boxes.
    """
    num_boxes = check_int("num_boxes", num_boxes, low=1)
    return _cutmix_masks(_check_lam(lam), spatial_shape, generator, device, num_boxes)


def _cutmix_masks(lam: Tensor, spatial_shape: Sequence[int], generator: torch.Generator,
                  device: torch.device | str, num_boxes: int = 1) -> tuple[Tensor, Tensor]:
    """:func:`cutmix_masks` for weights the library drew itself (not checked)."""
    shape = check_spatial_shape(spatial_shape)
    low, high = _cutmix_boxes(lam, shape, generator, num_boxes)
    return box_masks(low, high, shape, device)


#: Samples per independently seeded block of a CPU spectrum draw. Fixed, so a seed gives the same
#: masks whatever the number of threads.
_BLOCK = 16


#: Below this many elements of work a CPU stage runs on the calling thread: starting threads costs more.
_SMALL_WORK = 1 << 18


def _run_blocks(work: Callable[[int], None], count: int, size: int) -> None:
    """Call ``work(k)`` for the ``count`` blocks, on up to ``torch.get_num_threads()`` threads.

    For CPU work that runs on one thread inside torch or numpy (random draws, numpy's sort), which
    both release the GIL. ``size`` (elements in all) below :data:`_SMALL_WORK` runs on this thread.
    """
    threads = min(torch.get_num_threads(), count) if size >= _SMALL_WORK else 1
    if threads <= 1:
        for k in range(count):
            work(k)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(count)))


#: Tables that FMix reuses across calls (spectrum scales, square roots of covariances), per device,
#: bounded in bytes: a table larger than the bound is rebuilt on each call instead of kept.
_TABLES = TensorCache(512 << 20)


def _spectrum_scale(shape: tuple[int, ...], decay_power: float, device: torch.device) -> Tensor:
    """Amplitude of each bin of a real FFT's half spectrum, ``(*S[:-1], S[-1] // 2 + 1)``.

    ``1 / max(f, 1 / max(S)) ** decay_power`` with ``f`` the radial frequency in cycles per pixel,
    times the weight that makes an inverse *real* FFT equal in distribution to the real part of a
    full complex inverse FFT: the bins of the zero (and Nyquist) column stand for themselves only,
    the others for a conjugate pair, so they get ``sqrt(2)`` relative to the rest. Kept in :data:`_TABLES`.
    """
    def build() -> Tensor:
        axes = [torch.fft.fftfreq(n, dtype=torch.float64) for n in shape[:-1]]
        axes.append(torch.fft.rfftfreq(shape[-1], dtype=torch.float64))
        grids = torch.meshgrid(*axes, indexing="ij")
        freqs = torch.sqrt(sum(g**2 for g in grids))
        scale = 1.0 / freqs.clamp_min(1.0 / max(shape)) ** decay_power
        edge = torch.zeros(freqs.shape[-1], dtype=torch.bool)
        edge[0] = True
        if shape[-1] % 2 == 0:
            edge[-1] = True
        scale = scale * torch.where(edge, math.sqrt(2.0), 1.0)
        return scale.to(device=device, dtype=torch.float32)

    return _TABLES.get(("scale", shape, decay_power, device), build)


def fmix_grey_images(batch_size: int, spatial_shape: Sequence[int], decay_power: float,
                     generator: torch.Generator, device: torch.device | str = "cpu") -> Tensor:
    """Low-frequency grey images for FMix (Harris et al., 2020), one per sample.

    A complex spectrum with independent Gaussian real and imaginary parts, scaled by
    ``1 / max(f, 1 / max(S)) ** decay_power`` (``f`` in cycles per pixel); the image is the real
    part of its inverse FFT, computed as an inverse real FFT of a half spectrum of the same
    distribution. The field is that of a cube of side ``max(S)`` cropped to ``S``: a field drawn
    on ``S`` itself has a different lowest frequency ``1 / S_d`` along each axis, and with a steep
    decay those lowest frequencies dominate, which makes it anisotropic (about twice the mean
    squared gradient along one axis than along the other for a 32 x 48 image). The crop has the
    same statistics along every axis, for any shape and rank.

    Square and cubic shapes are drawn on the cube itself. Other shapes are drawn with the cube
    crop's distribution in time and memory that grow with ``|S|``, not ``max(S) ** D``: an FFT along
    the long axes and, per long-axis frequency, the square root of the short axes' covariance
    (``functional/_fields.py``; modes holding at most 1e-6 of the variance are left out). Same seed,
    same images, whatever the number of threads.

    Args:
        batch_size: B.
        spatial_shape: ``S`` of rank 1 to 3.
        decay_power: > 0; larger values give smoother images.
        generator: a generator on ``device``.
        device: where the images are built.

    Returns:
        float32 ``(B, *S)``.

    Raises:
        MixMaskError: bad shape or decay_power, or an elongated shape that no way of drawing fits
            (the message gives the figures).
    """
    batch_size = check_batch_size(batch_size)
    shape = check_spatial_shape(spatial_shape)
    decay_power = check_positive("decay_power", decay_power)
    device = torch.device(device)
    long_axes = choose_long_axes(shape, decay_power)
    if long_axes is not None:
        plan = _TABLES.get(("plan", shape, decay_power, long_axes, device),
                           lambda: build_plan(shape, decay_power, long_axes, torch.float32, device))
        return plan_fields(plan, _normals(batch_size, normals_shape(plan), generator, device))
    cube = (max(shape),) * len(shape)
    scale = _spectrum_scale(cube, decay_power, device)
    spectrum = torch.view_as_complex(_spectra(batch_size, scale, generator))
    grey = torch.fft.irfftn(spectrum, s=cube, dim=tuple(range(1, len(shape) + 1)))
    if cube != shape:
        grey = grey[(slice(None),) + tuple(slice(0, n) for n in shape)]
    return grey


def _spectra(batch_size: int, scale: Tensor, generator: torch.Generator) -> Tensor:
    """``(B, *scale.shape, 2)`` Gaussian real and imaginary parts times ``scale``."""
    return _normals(batch_size, (*scale.shape, 2), generator, scale.device, scale[..., None])


def _normals(batch_size: int, sample_shape: tuple[int, ...], generator: torch.Generator, device: torch.device,
             scale: Tensor | None = None) -> Tensor:
    """``(B, *sample_shape)`` float32 standard normals on ``device`` (times ``scale`` when given).

    On CPU the draw is split into blocks of :data:`_BLOCK` samples, each from its own generator
    seeded from ``generator``, drawn on several threads (a CPU random draw runs on one thread).
    """
    shape = (batch_size, *sample_shape)
    if device.type != "cpu":
        noise = torch.randn(shape, generator=generator, device=device)
        return noise if scale is None else noise.mul_(scale)
    seeds = torch.randint(0, 2**62, (-(-batch_size // _BLOCK),), generator=generator).tolist()
    noise = empty(shape, torch.float32)

    def draw(k: int) -> None:
        block = noise[k * _BLOCK:(k + 1) * _BLOCK]
        torch.randn(block.shape, generator=torch.Generator().manual_seed(seeds[k]), out=block)
        if scale is not None:
            block.mul_(scale)

    _run_blocks(draw, len(seeds), noise.numel())
    return noise


#: Rows shorter than this are sorted whole to select their threshold.
_SELECT_MIN = 4096
#: Entries of each row's sample (see :func:`_sample_index`) used to bracket its threshold.
_SAMPLE = 2048
#: Half-width of the bracket, in ranks of that sample.
_MARGIN = 32


@functools.lru_cache(maxsize=8)
def _sample_index(n: int) -> np.ndarray:
    """:data:`_SAMPLE` flat indices spread over ``[0, n)`` by the golden-ratio sequence.

    A plain stride would line up with the image's rows, columns or planes, and a smooth image
    sampled along a few lines gives poor estimates of its quantiles.
    """
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    return (np.arange(_SAMPLE) * golden % 1.0 * n).astype(np.int64)


def _select_rows(values: np.ndarray, position: np.ndarray) -> np.ndarray:
    """``values[i]`` sorted ascending at ``position[i]``, for each row of ``values`` ``(b, N)``.

    Exact, without sorting the rows: a fixed sample of each row gives a bracket ``[lo, hi]`` of
    values around the wanted rank; with ``above`` values greater than ``hi`` and the bracket holding
    the wanted rank, the answer is the matching rank among the few values inside the bracket. A row
    whose bracket misses its rank is partitioned whole.
    """
    b, n = values.shape
    sample = np.sort(values[:, _sample_index(n)], axis=1)
    m = sample.shape[1]
    centre = position * m // n
    low = np.take_along_axis(sample, np.clip(centre - _MARGIN, 0, m - 1)[:, None], 1)[:, 0]
    high = np.take_along_axis(sample, np.clip(centre + _MARGIN, 0, m - 1)[:, None], 1)[:, 0]
    out = np.empty(b, dtype=values.dtype)
    for i in range(b):  # row by row: a row stays in cache, and scalar bounds are cheapest to compare
        row, p = values[i], position[i]
        above = row > high[i] if centre[i] + _MARGIN < m else np.zeros(n, dtype=bool)
        inside = row >= low[i] if centre[i] - _MARGIN >= 0 else np.ones(n, dtype=bool)
        np.bitwise_xor(inside, above, out=inside)  # low <= row <= high (above implies >= low)
        top = n - np.count_nonzero(above)
        below = top - np.count_nonzero(inside)
        if below <= p < top:
            out[i] = np.partition(row[inside], p - below)[p - below]
        else:  # the bracket missed the wanted rank
            out[i] = np.partition(row, p)[p]
    return out


def _kth_largest(values: Tensor, counts: Tensor) -> Tensor:
    """``(B,)`` the ``counts[i]``-th largest entry of row ``i`` of ``values`` ``(B, N)``; +inf where 0.

    Equal to reading position ``N - counts[i]`` of the row sorted ascending (ties included). On CPU
    long rows are selected without a sort (:func:`_select_rows`), in blocks of rows on several threads.
    """
    n = values.shape[1]
    position = (n - counts).clamp(max=n - 1)
    if values.device.type != "cpu":
        position = to_device(position, values.device)
        kth = torch.sort(values, dim=1).values.gather(1, position[:, None])[:, 0]
    else:
        rows, where = values.numpy(), position.numpy()
        kth_np = np.empty(rows.shape[0], dtype=rows.dtype)
        if n < _SELECT_MIN:
            kth_np[:] = np.sort(rows, axis=1)[np.arange(rows.shape[0]), where]
        else:
            def select_block(k: int) -> None:
                block = slice(k * _BLOCK, (k + 1) * _BLOCK)
                kth_np[block] = _select_rows(rows[block], where[block])

            _run_blocks(select_block, -(-rows.shape[0] // _BLOCK), rows.size)
        kth = torch.from_numpy(kth_np)
    return torch.where(to_device(counts > 0, values.device), kth, torch.full_like(kth, math.inf))


def _top_counts(values: Tensor, counts: Tensor) -> Tensor:
    """``(B, N)`` bool holding exactly ``counts[i]`` True entries per row: the row's largest values.

    Values equal to the threshold (float ties) are taken in flat order, first come first kept, so a
    mask never holds ``counts[i] + 1`` pixels. On CPU only rows that hold ties are redone (read from
    host memory); on accelerators every row is, without a host sync.
    """
    kth = _kth_largest(values, counts)[:, None]
    mask = values >= kth
    counts = to_device(counts, values.device)
    if values.device.type == "cpu":
        rows = (mask.view(torch.uint8).sum(1, dtype=torch.int64) != counts).nonzero()[:, 0]
        if rows.numel() == 0:
            return mask
        values, kth, counts = values[rows], kth[rows], counts[rows]
    above = values > kth
    ties = values == kth
    wanted = (counts - above.sum(1))[:, None]
    fixed = above | (ties & (ties.cumsum(1, dtype=torch.int32) <= wanted))
    if values.device.type != "cpu":
        return fixed
    mask[rows] = fixed
    return mask


def _soft_from_ranks(values: Tensor, counts: Tensor, lam: Tensor, max_soft: float) -> Tensor:
    """Soft-edged masks as in the FMix code: the ranks around the cut fall linearly from 1 to 0."""
    b, n = values.shape
    order = torch.argsort(values, dim=1, descending=True)
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=values.device).expand(b, n))
    soft = (n * torch.minimum(torch.full_like(lam, max_soft), torch.minimum(lam, 1.0 - lam))).long()
    low = to_device(counts - soft, values.device)[:, None]
    width = to_device(2 * soft, values.device)[:, None]
    ramp = (1.0 - (ranks - low).float() / (width - 1).clamp_min(1).float()).clamp_(0.0, 1.0)
    return torch.where(width > 0, ramp, (ranks < to_device(counts, values.device)[:, None]).float())


def fmix_masks(lam: Tensor, spatial_shape: Sequence[int], generator: torch.Generator, *,
               decay_power: float = 3.0, max_soft: float = 0.0, device: torch.device | str = "cpu"
               ) -> tuple[Tensor, Tensor]:
    """FMix masks: 1 on the top ``round(lam * |S|)`` values of a low-frequency grey image.

    Args:
        lam: ``(B,)`` drawn weights.
        spatial_shape: ``S`` of rank 1 to 3.
        generator: a generator on ``device`` for the spectra.
        decay_power: frequency decay of the spectrum.
        max_soft: width of a soft edge as a fraction of ``|S|`` on each side of the cut (0 = binary).
        device: where the masks are built.

    Returns:
        ``(mask, lam)``: bool ``(B, *S)`` (float32 when ``max_soft > 0``) and its ``(B,)`` mean.

    Raises:
        MixMaskError: lam not a (B,) tensor in [0, 1], a bad shape, decay_power or max_soft.
    """
    return _fmix_masks(_check_lam(lam), spatial_shape, generator, decay_power=decay_power, max_soft=max_soft,
                       device=device)


def _fmix_masks(lam: Tensor, spatial_shape: Sequence[int], generator: torch.Generator, *, decay_power: float,
                max_soft: float, device: torch.device | str) -> tuple[Tensor, Tensor]:
    """:func:`fmix_masks` for weights the library drew itself (not checked)."""
    shape = check_spatial_shape(spatial_shape)
    max_soft = check_finite_range("max_soft", max_soft, 0.0, 0.5)
    lam = lam.to(dtype=torch.float64, device="cpu")
    n = math.prod(shape)
    counts = torch.round(lam * n).long()
    grey = fmix_grey_images(lam.shape[0], shape, decay_power, generator, device).reshape(lam.shape[0], n)
    if max_soft > 0:
        mask = _soft_from_ranks(grey, counts, lam, max_soft).view(-1, *shape)
        return mask, mask_mean(mask)
    # a binary mask holds exactly counts[i] ones: its mean without another pass over it (the same bytes
    # as mask_mean, which divides the same integer count in float64)
    mask = _top_counts(grey, counts).view(-1, *shape)
    return mask, to_device((counts.double() / n).float(), mask.device)


def gridmask_masks(batch_size: int, spatial_shape: Sequence[int], generator: torch.Generator, *,
                   cell_size: tuple[float, float] = (96 / 224, 1.0), keep_ratio: float = 0.6,
                   rotate: float = 0.0, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """GridMask (Chen et al., 2020): a regular grid of dropped blocks, one grid per sample.

    Each sample draws a cell size ``d`` (an int in ``cell_size * min(S)``), a random offset per axis
    in ``[0, d)`` and, in 2-D, a rotation in ``[-rotate, rotate]`` degrees. In each cell of side
    ``d`` a block of side ``(1 - keep_ratio) * d`` is dropped (mask 0); the rest is kept (mask 1).

    Args:
        batch_size: B.
        spatial_shape: ``S`` of rank 1 to 3.
        generator: CPU generator.
        cell_size: ``(low, high)`` range of ``d`` as fractions of the smallest spatial size.
        keep_ratio: fraction of each cell's side that is kept, in (0, 1).
        rotate: largest rotation in degrees (2-D only).
        device: where the masks are built.

    Returns:
        ``(mask, lam)``: bool ``(B, *S)`` and the ``(B,)`` kept fraction.

    Raises:
        MixMaskError: a bad batch size, shape, cell_size, keep_ratio or rotate (rotation is 2-D only).
    """
    batch_size = check_batch_size(batch_size)
    shape = check_spatial_shape(spatial_shape)
    if not isinstance(cell_size, Sequence) or len(cell_size) != 2:
        raise MixMaskError(f"cell_size must be a (low, high) pair, but got {cell_size!r}")
    low, high = (check_finite_range("cell_size", c, 0.0, 1.0, low_open=True) for c in cell_size)
    if low > high:
        raise MixMaskError(f"cell_size must be (low, high) with low <= high, but got {cell_size}")
    keep_ratio = check_finite_range("keep_ratio", keep_ratio, 0.0, 1.0, low_open=True, high_open=True)
    rotate = check_finite_range("rotate", rotate, 0.0, 180.0)
    if rotate > 0 and len(shape) != 2:
        raise MixMaskError(f"rotate is defined for 2-D masks only, but got spatial shape {shape}")
    dims = len(shape)
    smallest = min(shape)
    d_low, d_high = max(2, int(low * smallest)), max(2, int(high * smallest))
    cells = torch.randint(d_low, d_high + 1, (batch_size, 1), generator=generator).double()
    offsets = torch.rand(batch_size, dims, generator=generator, dtype=torch.float64) * cells
    angles = (torch.rand(batch_size, generator=generator, dtype=torch.float64) * 2 - 1) * math.radians(rotate)
    dropped_side = (1.0 - keep_ratio) * cells
    cells, offsets, dropped_side = (to_device(t, device, torch.float32) for t in (cells, offsets, dropped_side))
    coords = [torch.arange(n, device=device, dtype=torch.float32) - (n - 1) / 2 for n in shape]
    view = [[-1] + [n if k == d else 1 for k, n in enumerate(shape)] for d in range(dims)]
    if rotate > 0:
        cos = to_device(angles.cos(), device, torch.float32).view(-1, 1, 1)
        sin = to_device(angles.sin(), device, torch.float32).view(-1, 1, 1)
        y, x = coords[0].view(1, -1, 1), coords[1].view(1, 1, -1)
        coords = [cos * y - sin * x, sin * y + cos * x]
    else:
        coords = [c.view(v[1:]).unsqueeze(0) for c, v in zip(coords, view)]
    dropped = None
    for d in range(dims):
        shift = offsets[:, d].view(-1, *[1] * dims)
        axis = torch.remainder(coords[d] + shift, cells.view(-1, *[1] * dims)) < dropped_side.view(-1, *[1] * dims)
        dropped = axis if dropped is None else dropped & axis
    mask = ~dropped.expand(batch_size, *shape)
    return mask, mask_mean(mask)


# -- boxes, blobs, grids and classes: ResizeMix, SaliencyMix, SmoothMix, GridMix, Cutout, ClassMix ------------

def resizemix_boxes(batch_size: int, spatial_shape: Sequence[int], generator: torch.Generator, *,
                    scale: tuple[float, float] = (0.1, 0.8)) -> tuple[Tensor, Tensor, Tensor]:
    """ResizeMix boxes (Qin et al., 2020): one box per sample, side ``tau * S_d`` on every axis, inside the image.

    ``tau ~ U(scale)`` per sample (the paper's range is 0.1 to 0.8); each side is ``round(tau * S_d)``
    (at least 1), so the box has the image's aspect ratio; its corner is uniform over the places
    where it fits. The whole partner is resized into the box (:func:`~mixmask.functional.warps.
    resize_into_boxes`), so the own label weight is the area outside it, ``1 - tau^D`` up to rounding.

    Args:
        batch_size: B.
        spatial_shape: ``S`` of rank 1 to 3.
        generator: CPU generator.
        scale: ``(low, high)`` range of tau, ``0 < low <= high <= 1``.

    Returns:
        ``(low, high, tau)``: ``(B, D)`` int64 CPU corners (``low <= coord < high``) and ``(B,)`` float64 tau.

    Raises:
        MixMaskError: a bad batch size, shape or scale.
    """
    batch_size = check_batch_size(batch_size)
    shape = check_spatial_shape(spatial_shape)
    first, last = check_pair("scale", scale, 0.0, 1.0, low_open=True)
    tau = first + (last - first) * torch.rand(batch_size, generator=generator, dtype=torch.float64)
    sizes = torch.tensor(shape)
    sides = torch.round(tau[:, None] * sizes).long().clamp(min=1).minimum(sizes)
    corners = (torch.rand(batch_size, len(shape), generator=generator, dtype=torch.float64)
               * (sizes - sides + 1)).long()
    return corners, corners + sides, tau


def saliencymix_boxes(lam: Tensor, peaks: Tensor, spatial_shape: Sequence[int]) -> tuple[Tensor, Tensor]:
    """SaliencyMix boxes (Uddin et al., 2021): CutMix's box for each ``lam``, centred on a saliency peak.

    Sides are CutMix's (the image's aspect ratio, volume ``(1 - lam) * |S|``); the box is centred on
    ``peaks[i]`` (the maximum of the partner's saliency) and clipped to the image.

    Args:
        lam: ``(B,)`` drawn weights in [0, 1].
        peaks: ``(B, D)`` int coordinates of each partner's saliency peak.
        spatial_shape: ``S`` of rank 1 to 3.

    Returns:
        ``(low, high)``: ``(B, D)`` int64 corners on the peaks' device.

    Raises:
        MixMaskError: lam not a (B,) tensor in [0, 1], peaks of another shape or outside the image.
    """
    lam = _check_lam(lam)
    shape = check_spatial_shape(spatial_shape)
    if not isinstance(peaks, Tensor) or peaks.shape != (lam.shape[0], len(shape)) or peaks.is_floating_point():
        raise MixMaskError(f"expected int peaks of shape {(lam.shape[0], len(shape))}, but got "
                           f"{tuple(peaks.shape) if isinstance(peaks, Tensor) else peaks!r}")
    if bool(((peaks < 0) | (peaks >= torch.tensor(shape, device=peaks.device))).any()):
        raise MixMaskError(f"expected peaks inside the spatial shape {shape}, but got {peaks.tolist()}")
    return _saliencymix_boxes(lam, peaks, shape)


def _saliencymix_boxes(lam: Tensor, peaks: Tensor, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """:func:`saliencymix_boxes` for arguments the library made itself (not checked); on the peaks' device."""
    return centred_boxes(peaks.long(), to_device(_box_sides(lam, shape)[:, 0], peaks.device), shape)


#: SmoothMix's mask shapes: a circle (Euclidean distance) or a square (largest distance along an axis).
SMOOTH_KINDS: tuple[str, ...] = ("circle", "square", "either")


def smoothmix_masks(batch_size: int, spatial_shape: Sequence[int], generator: torch.Generator, *,
                    kind: str = "circle", sigma: tuple[float, float] = (0.25, 0.5),
                    device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """SmoothMix masks (Lee et al., 2020): the partner pasted as a blob whose edge falls off as a Gaussian.

    In coordinates scaled to [0, 1] along every axis, sample ``i`` draws a centre ``c`` uniformly in
    the image and a spread ``s ~ U(sigma)``; the partner's weight at ``u`` is ``exp(-d^2 / (2 s^2))``
    with ``d`` the Euclidean distance ``|u - c|`` (``"circle"``) or the largest distance along one axis
    (``"square"``); ``"either"`` picks one of the two per sample with equal chance. The mask (the own
    sample's weight) is 1 minus that: a soft mask, lam its mean. On square images the shapes are
    circles and squares; otherwise they stretch with the image, like CutMix's boxes.

    Args:
        batch_size: B.
        spatial_shape: ``S`` of rank 1 to 3.
        generator: CPU generator.
        kind: one of :data:`SMOOTH_KINDS`.
        sigma: ``(low, high)`` range of the spread, as a fraction of each side, ``0 < low <= high``.
        device: where the masks are built.

    Returns:
        ``(mask, lam)``: float32 ``(B, *S)`` in [0, 1] and its ``(B,)`` mean.

    Raises:
        MixMaskError: a bad batch size, shape, kind or sigma.
    """
    batch_size = check_batch_size(batch_size)
    shape = check_spatial_shape(spatial_shape)
    kind = check_choice("kind", kind, SMOOTH_KINDS)
    first, last = check_pair("sigma", sigma, 0.0, math.inf, low_open=True)
    dims = len(shape)
    centres = torch.rand(batch_size, dims, generator=generator, dtype=torch.float64)
    spread = first + (last - first) * torch.rand(batch_size, generator=generator, dtype=torch.float64)
    square = (torch.rand(batch_size, generator=generator) < 0.5 if kind == "either"
              else torch.full((batch_size,), kind == "square"))
    device = torch.device(device)
    scale = to_device(-0.5 / spread**2, device, torch.float32)[:, None]
    centres = to_device(centres, device, torch.float32)
    profiles = []  # the partner's weight along each axis: exp(-d^2 / (2 s^2)), (B, 1, .., S_d, .., 1)
    for d, size in enumerate(shape):
        coord = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
        profile = torch.exp((coord[None] - centres[:, d, None]) ** 2 * scale)
        profiles.append(profile.view(-1, *[size if k == d else 1 for k in range(dims)]))
    parts = {}  # a circle's weight is the product of the axes' (Euclidean distance), a square's their minimum
    if not bool(square.all()):
        parts[False] = functools.reduce(torch.mul, profiles).expand(batch_size, *shape)
    if bool(square.any()):
        parts[True] = functools.reduce(torch.minimum, profiles).expand(batch_size, *shape)
    partner = parts[True] if False not in parts else parts[False] if True not in parts else torch.where(
        to_device(square, device).view(-1, *[1] * dims), parts[True], parts[False])
    mask = torch.sub(1.0, partner, out=empty((batch_size, *shape), torch.float32, device))
    return mask, mask_mean(mask)


def gridmix_masks(lam: Tensor, spatial_shape: Sequence[int], generator: torch.Generator, *,
                  grid: tuple[int, int] = (2, 7), device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """GridMix masks (Baek et al., 2021): an ``n x n`` grid whose cells each come from one of the pair.

    Sample ``i`` draws ``n`` uniformly in ``[grid[0], grid[1]]`` and cuts every axis into ``n`` cells
    (cell ``k`` of an axis of size ``S_d`` holds the positions ``p`` with ``floor(p * n / S_d) = k``);
    each of the ``n^D`` cells keeps the sample's own pixels with probability ``lam[i]`` and takes
    the partner's otherwise, independently. lam is measured from the mask.

    Args:
        lam: ``(B,)`` probability that a cell is the sample's own.
        spatial_shape: ``S`` of rank 1 to 3, every side ``>= grid[1]``.
        generator: CPU generator.
        grid: ``(low, high)`` ints, ``1 <= low <= high``.
        device: where the masks are built.

    Returns:
        ``(mask, lam)``: bool ``(B, *S)`` and its ``(B,)`` mean.

    Raises:
        MixMaskError: lam not a (B,) tensor in [0, 1], a bad shape or grid, or a side shorter than ``grid[1]``.
    """
    grid = check_int_pair("grid", grid, low=1)
    shape = check_spatial_shape(spatial_shape)
    if min(shape) < grid[1]:
        raise MixMaskError(f"GridMix's grid={grid} cuts every axis into up to {grid[1]} cells, which needs sides "
                           f">= {grid[1]}, but got spatial shape {shape}")
    return _gridmix_masks(_check_lam(lam), shape, generator, grid, device)


def _gridmix_masks(lam: Tensor, shape: tuple[int, ...], generator: torch.Generator, grid: tuple[int, int],
                   device: torch.device | str) -> tuple[Tensor, Tensor]:
    """:func:`gridmix_masks` for arguments the library checked itself."""
    count, dims, top = lam.shape[0], len(shape), grid[1]
    cuts = torch.randint(grid[0], top + 1, (count,), generator=generator)
    own = torch.rand(count, top**dims, generator=generator, dtype=torch.float64) < lam.double().cpu()[:, None]
    device = torch.device(device)
    cells = to_device(own, device).view(count, *[top] * dims)
    cuts = to_device(cuts, device)
    index: list[Tensor] = [torch.arange(count, device=device).view(-1, *[1] * dims)]
    for d, size in enumerate(shape):
        positions = torch.div(torch.arange(size, device=device)[None] * cuts[:, None], size, rounding_mode="floor")
        index.append(positions.view(-1, *[size if k == d else 1 for k in range(dims)]))
    mask = cells[tuple(index)]
    return mask, mask_mean(mask)


def cutout_masks(batch_size: int, spatial_shape: Sequence[int], generator: torch.Generator, *,
                 size: tuple[float, float] = (0.5, 0.5), num_boxes: int = 1,
                 device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Cutout masks (DeVries & Taylor, 2017): 0 inside ``num_boxes`` boxes per sample, 1 outside.

    Each box has sides ``round(f * S_d)`` with ``f ~ U(size)`` drawn per box (the image's aspect
    ratio: a square on square images), a centre drawn uniformly over the image, and is clipped to
    it, so a box near the border drops less (as in the paper). The partner is a fill value, not
    another sample.

    Args:
        batch_size: B.
        spatial_shape: ``S`` of rank 1 to 3.
        generator: CPU generator.
        size: ``(low, high)`` range of a box's side as a fraction of each side, in (0, 1].
        num_boxes: boxes per sample (the paper's ``n_holes``).
        device: where the masks are built.

    Returns:
        ``(mask, lam)``: bool ``(B, *S)`` and the ``(B,)`` kept fraction.

    Raises:
        MixMaskError: a bad batch size, shape, size or num_boxes.
    """
    batch_size = check_batch_size(batch_size)
    shape = check_spatial_shape(spatial_shape)
    first, last = check_pair("size", size, 0.0, 1.0, low_open=True)
    num_boxes = check_int("num_boxes", num_boxes, low=1)
    fraction = first + (last - first) * torch.rand(batch_size, num_boxes, 1, generator=generator,
                                                   dtype=torch.float64)
    sizes = torch.tensor(shape, dtype=torch.float64)
    sides = torch.round(fraction * sizes).long().clamp(min=1)
    centres = (torch.rand(batch_size, num_boxes, len(shape), generator=generator, dtype=torch.float64)
               * sizes).long()
    low, high = centred_boxes(centres, sides, shape)
    return box_masks(low, high, shape, device)


def classmix_masks(partner_maps: Tensor, generator: torch.Generator, *, ignore_index: int | None = None
                   ) -> tuple[Tensor, Tensor]:
    """ClassMix masks (Olsson et al., 2021): 0 on the pixels of half of the classes in each partner's map.

    For row ``i`` the classes present in ``partner_maps[i]`` (ids >= 0 other than ``ignore_index``)
    are ranked by a uniform score drawn per (row, class id) for the ids ``0 .. k - 1`` (``k - 1``
    the largest class id present in any row); the ``ceil(n / 2)`` best of the ``n`` present are
    pasted (the official code's ``(n + n % 2) / 2``). Unlabelled partner pixels are never pasted.
    One host read (the largest id) sizes the score table.

    Args:
        partner_maps: ``(B, *S)`` int id maps of the partners (``x[j[i]]``'s map in row ``i``).
        generator: CPU generator.
        ignore_index: id of unlabelled pixels, or None.

    Returns:
        ``(mask, lam)``: bool ``(B, *S)`` on the maps' device (False where the partner's chosen
        classes are) and its ``(B,)`` mean.

    Raises:
        MixMaskError: not an integer ``(B, *S)`` tensor with 1 to 3 spatial dims.
    """
    if (not isinstance(partner_maps, Tensor) or not 2 <= partner_maps.ndim <= 4 or partner_maps.shape[0] == 0
            or partner_maps.dtype.is_floating_point or partner_maps.dtype == torch.bool or partner_maps.is_complex()):
        got = (f"{partner_maps.dtype} {tuple(partner_maps.shape)}" if isinstance(partner_maps, Tensor)
               else type(partner_maps).__name__)
        raise MixMaskError(f"expected (B, *S) integer id maps with 1 to 3 spatial dims, but got {got}")
    rows = torch.arange(partner_maps.shape[0], device=partner_maps.device)
    return _classmix_masks(partner_maps, rows, generator, ignore_index)


def _classmix_masks(maps: Tensor, partners: Tensor, generator: torch.Generator, ignore_index: int | None
                    ) -> tuple[Tensor, Tensor]:
    """:func:`classmix_masks` of ``maps[partners]``, for maps the policy checked.

    When the partners are distinct and cover every map (a permutation), the classes are counted and
    the pasted pixels found on the maps where they are, and only the bool masks are reordered: no
    copy of the id maps.
    """
    count = partners.shape[0]
    distinct = count == maps.shape[0] and bool((torch.bincount(partners.cpu(), minlength=count) == 1).all())
    if not distinct:
        maps, partners = maps.index_select(0, partners), torch.arange(count, device=maps.device)
    ids = maps.reshape(maps.shape[0], -1)
    ids = ids if ids.dtype == torch.long else ids.long()
    width = int(ids.amax()) + 1 if ids.numel() else 0  # ids above every class id, ignore_index included
    if ignore_index is not None and ignore_index < 0:
        ids = torch.where(ids >= 0, ids, width)  # column `width` stands for "no class"
    present = torch.zeros(ids.shape[0], width + 1, dtype=torch.bool, device=ids.device).scatter_(1, ids, True)
    present[:, width] = False
    if ignore_index is not None and 0 <= ignore_index < width:
        present[:, ignore_index] = False
    present = present.index_select(0, partners)
    seen = present.any(0).nonzero()
    classes = int(seen.max()) + 1 if seen.numel() else 0  # scores for ids 0 .. largest class present
    scores = to_device(torch.rand(count, classes, generator=generator, dtype=torch.float64), ids.device)
    present = present[:, :classes]
    take = torch.div(present.sum(1) + 1, 2, rounding_mode="floor")
    rank = torch.where(present, scores, 2.0).argsort(1).argsort(1)
    chosen = torch.zeros(ids.shape[0], width + 1, dtype=torch.bool, device=ids.device)
    chosen[:, :classes].index_copy_(0, partners, present & (rank < take[:, None]))  # by the map it pastes from
    mask = ~chosen.gather(1, ids).index_select(0, partners).view(count, *maps.shape[1:])
    return mask, mask_mean(mask)
