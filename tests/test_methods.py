"""ResizeMix, SaliencyMix, SmoothMix, GridMix, Cutout and ClassMix: per-sample references on the same draw,
what each paper defines (statistically), the policy's invariants, uint8, autograd, policies, collate, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from torch.utils.data import DataLoader

from mixmask import (ClassMix, CutMix, Cutout, FMix, GridMask, GridMix, MixCollate, MixMaskError, MixUp,
                     RandomChoice, ResizeMix, SaliencyMix, SmoothMix)
from mixmask.functional import (METHODS, classmix_masks, cutout_masks, gridmix_masks, resize_into_boxes,
                                resizemix_boxes, saliency_peaks, smoothmix_masks, spectral_saliency)
from mixmask.functional.warps import NoiseWarp, ResizeWarp

NEW = {
    "resizemix": lambda **k: ResizeMix(**k),
    "resizemix_nearest": lambda **k: ResizeMix(mode="nearest", **k),
    "saliencymix": lambda **k: SaliencyMix(**k),
    "smoothmix": lambda **k: SmoothMix(kind="either", **k),
    "gridmix": lambda **k: GridMix(grid=(2, 3), **k),
    "cutout": lambda **k: Cutout(size=(0.2, 0.6), num_boxes=2, **k),
    "cutout_noise": lambda **k: Cutout(fill="noise", **k),
    "classmix": lambda **k: ClassMix(**k),
}
BINARY = ["resizemix_nearest", "saliencymix", "gridmix", "cutout", "cutout_noise", "classmix"]
MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def batch(b=6, shape=(12, 10), k=5, seed=0, channels=3):
    g = gen(seed)
    return (torch.rand(b, channels, *shape, generator=g), torch.arange(b) % k,
            torch.randint(0, k, (b, *shape), generator=g))


def box_slices(low, high):
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def naive_nearest(image, side):
    """``image`` (C, *S) resized to ``side`` with the nearest pixel, one axis and one index at a time."""
    out = image
    for d, (size, length) in enumerate(zip(image.shape[1:], side)):
        index = [min(((2 * c + 1) * size) // (2 * length), size - 1) for c in range(length)]
        out = out.index_select(d + 1, torch.tensor(index))
    return out


def expected_partners(x, params, mode):
    """Reference ResizeMix partners: each partner interpolated alone and pasted into its box."""
    (warp,) = params.warps
    out = x.index_select(0, params.index).clone()
    for row, low, high in zip(warp.rows.tolist(), warp.low, warp.high):
        partner = x[int(params.index[row])]
        side = tuple((high - low).tolist())
        if mode == "bilinear":
            resized = F.interpolate(partner[None].double(), size=side, mode=MODES[len(side)], align_corners=False)[0]
        else:
            resized = naive_nearest(partner, side)
        out[row][(slice(None),) + box_slices(low, high)] = resized.to(x.dtype)
    return out


# -- ResizeMix ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(40,), (23, 31), (9, 11, 8)])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_resizemix_matches_a_per_sample_resize(shape, mode):
    x, y, seg = batch(b=5, shape=shape, seed=1)
    x = x.double()
    out = ResizeMix(mode=mode, num_classes=5, seed=2)(x, y, seg)
    partners = expected_partners(x, out.params, mode)
    keep = out.mask[:, None]
    torch.testing.assert_close(out.inputs, torch.where(keep, x, partners), rtol=0, atol=1e-12)
    ids = expected_partners(seg[:, None], out.params, "nearest")[:, 0]
    assert torch.equal(out.masks, torch.where(out.mask, seg, ids))
    (warp,) = out.params.warps
    inside = torch.zeros_like(out.mask)
    for row, low, high in zip(warp.rows.tolist(), warp.low, warp.high):
        inside[row][box_slices(low, high)] = True
    assert torch.equal(~out.mask, inside)  # the mask is 0 exactly on the box
    torch.testing.assert_close(out.targets[torch.arange(5), y], out.lam + (1 - out.lam) * (y[out.index] == y),
                               rtol=0, atol=1e-6)


def test_resize_into_boxes_equals_interpolate_in_every_rank():
    for shape in [(50,), (40, 33), (12, 10, 9)]:
        x = torch.rand(4, 2, *shape, generator=gen(3))
        low, high, _ = resizemix_boxes(4, shape, gen(4))
        out = resize_into_boxes(x, low, high)
        for i in range(4):
            side = tuple((high[i] - low[i]).tolist())
            expect = F.interpolate(x[i:i + 1], size=side, mode=MODES[len(shape)], align_corners=False)[0]
            torch.testing.assert_close(out[i][(slice(None),) + box_slices(low[i], high[i])], expect,
                                       rtol=1e-5, atol=1e-5)


def test_resizemix_tau_range_and_placement_are_the_papers():
    low, high, tau = resizemix_boxes(4000, (1000,), gen(5), scale=(0.1, 0.8))
    side = (high - low)[:, 0].double()
    assert float(tau.min()) >= 0.1 and float(tau.max()) <= 0.8
    assert stats.kstest(tau.numpy(), stats.uniform(0.1, 0.7).cdf).pvalue > 1e-3
    torch.testing.assert_close(side, torch.round(tau * 1000))
    assert bool((low >= 0).all()) and bool((high <= 1000).all())
    place = (low[:, 0].double() + torch.rand(4000, generator=gen(6), dtype=torch.float64)) / (1001 - side)
    assert stats.kstest(place.numpy(), "uniform").pvalue > 1e-3  # corner uniform where the box fits
    low2, high2, tau2 = resizemix_boxes(500, (30, 60), gen(7))
    sides = (high2 - low2).double()
    torch.testing.assert_close(sides, torch.round(tau2[:, None] * torch.tensor([30.0, 60.0])).clamp(min=1))


def test_resizemix_keeps_the_own_label_weight_one_minus_box_area():
    x, y, _ = batch(b=32, shape=(20, 30))
    out = ResizeMix(num_classes=5, seed=8)(x, y)
    (warp,) = out.params.warps
    area = (warp.high - warp.low).prod(1).double() / 600
    torch.testing.assert_close(out.params.label_lam.double(), 1 - area, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.lam, out.params.label_lam)


def test_resizemix_per_batch_pastes_every_partner_into_one_box():
    x, y, seg = batch(b=6, shape=(16, 16), seed=9)
    out = ResizeMix(per_sample=False, num_classes=5, seed=3)(x.double(), y, seg)
    assert bool((out.mask == out.mask[0]).all())
    partners = expected_partners(x.double(), out.params, "bilinear")
    torch.testing.assert_close(out.inputs, torch.where(out.mask[:, None], x.double(), partners), rtol=0, atol=1e-12)


def test_resizemix_channels_last_equals_channels_first():
    x, y, seg = batch(b=4, shape=(14, 18), seed=10)
    first = ResizeMix(num_classes=5, seed=4)(x, y, seg)
    last = ResizeMix(num_classes=5, seed=4, channels_last=True)(x.movedim(1, -1).contiguous(), y, seg)
    torch.testing.assert_close(last.inputs.movedim(-1, 1), first.inputs, rtol=0, atol=0)
    assert torch.equal(last.masks, first.masks)


# -- SaliencyMix ----------------------------------------------------------------------------------

def naive_saliency(image, size=64):
    """Spectral residual of one sample with numpy: grey, linear resize, FFT, residual, blur, square."""
    shape = tuple(image.shape[1:])
    small = tuple(min(s, size) for s in shape)
    values = image[None].float()
    if small != shape:
        values = F.interpolate(values, size=small, mode=MODES[len(shape)], align_corners=False)
    values = values[0].double().numpy()
    grey = np.tensordot([0.299, 0.587, 0.114], values, 1) if values.shape[0] == 3 else values.mean(0)
    spectrum = np.fft.fftn(grey)
    log_amp = np.log1p(np.abs(spectrum))

    def smooth(a, taps):
        r = len(taps) // 2
        for axis in range(a.ndim):
            if a.shape[axis] <= r:
                a = np.repeat(a.mean(axis, keepdims=True), a.shape[axis], axis)
                continue
            padded = np.pad(a, [(r, r) if k == axis else (0, 0) for k in range(a.ndim)], mode="reflect")
            a = sum(w * np.take(padded, np.arange(k, k + a.shape[axis]), axis) for k, w in enumerate(taps))
        return a

    residual = log_amp - smooth(log_amp, [1 / 3] * 3)
    magnitude = np.abs(np.fft.ifftn(np.exp(residual) * np.exp(1j * np.angle(spectrum))))
    taps = np.exp(-np.arange(-2, 3) ** 2 / (2 * 64.0))
    magnitude = smooth(magnitude, taps / taps.sum()) ** 2
    maps = torch.from_numpy(magnitude / magnitude.max()).float()
    if small != shape:
        maps = F.interpolate(maps[None, None], size=shape, mode=MODES[len(shape)], align_corners=False)[0, 0]
    return maps.clamp(0, 1)


@pytest.mark.parametrize("shape,channels", [((70, 90), 3), ((100,), 2), ((6, 70, 8), 1), ((20, 24), 3)])
def test_spectral_saliency_matches_a_per_sample_numpy_reference(shape, channels):
    x = torch.rand(3, channels, *shape, generator=gen(11))
    maps = spectral_saliency(x)
    for i in range(3):
        torch.testing.assert_close(maps[i], naive_saliency(x[i]), rtol=0, atol=2e-5)


def test_spectral_saliency_finds_a_blob_on_a_flat_background():
    x = torch.full((4, 3, 64, 64), 0.5) + 0.01 * torch.rand(4, 3, 64, 64, generator=gen(12))
    spots = [(10, 12), (40, 50), (30, 8), (55, 33)]
    for i, (r, c) in enumerate(spots):
        x[i, :, r - 2:r + 3, c - 2:c + 3] = 1.0
    peaks = saliency_peaks(spectral_saliency(x))
    for (r, c), peak in zip(spots, peaks.tolist()):
        assert abs(peak[0] - r) <= 4 and abs(peak[1] - c) <= 4
    for batch_of in (x[:, :1], (x * 255).round().to(torch.uint8), x.half()):  # one channel, uint8, float16
        for (r, c), peak in zip(spots, saliency_peaks(spectral_saliency(batch_of)).tolist()):
            assert abs(peak[0] - r) <= 4 and abs(peak[1] - c) <= 4


@pytest.mark.parametrize("given_maps", [False, True])
def test_saliencymix_box_is_centred_on_the_partners_saliency_peak(given_maps):
    x, y, _ = batch(b=8, shape=(70, 90), seed=13)
    saliency = torch.rand(8, 70, 90, generator=gen(14)) if given_maps else None
    out = SaliencyMix(lam=0.8, num_classes=5, seed=5)(x, y, saliency=saliency)
    maps = saliency if given_maps else torch.stack([naive_saliency(x[i]) for i in range(8)])
    side = [round(s * math.sqrt(0.2)) for s in (70, 90)]
    for i in range(8):
        peak = divmod(int(maps[int(out.index[i])].argmax()), 90)
        expect = torch.ones(70, 90, dtype=torch.bool)
        lo = [max(p - s // 2, 0) for p, s in zip(peak, side)]
        hi = [min(max(p - s // 2 + s, 0), n) for p, s, n in zip(peak, side, (70, 90))]
        expect[lo[0]:hi[0], lo[1]:hi[1]] = False
        assert torch.equal(out.mask[i], expect)
        assert not bool(out.mask[i][peak])  # the partner's peak is always pasted
    assert out.params.boxes is not None  # pasted box by box on the CPU, the blend's bytes
    assert torch.equal(out.inputs, torch.where(out.mask[:, None], x, x[out.index]))


def test_saliencymix_boxes_follow_cutmix_sizes_with_alpha():
    x = torch.rand(400, 1, 16, 16, generator=gen(15))
    saliency = torch.zeros(400, 16, 16)
    saliency[:, 8, 8] = 1.0  # a central peak: no box is clipped
    out = SaliencyMix(alpha=1.0, seed=6)(x, saliency=saliency)
    # lam ~ Beta(1, 1): the box area 1 - lam is uniform up to rounding of the sides
    area = 1 - out.lam.double()
    assert abs(float(area.mean()) - 0.5) < 0.05
    assert bool((~out.mask[:, 8, 8] | (out.lam == 1)).all())


# -- SmoothMix ------------------------------------------------------------------------------------

def smooth_params(batch_size, dims, generator, kind, sigma):
    centres = torch.rand(batch_size, dims, generator=generator, dtype=torch.float64)
    spread = sigma[0] + (sigma[1] - sigma[0]) * torch.rand(batch_size, generator=generator, dtype=torch.float64)
    square = (torch.rand(batch_size, generator=generator) < 0.5 if kind == "either"
              else torch.full((batch_size,), kind == "square"))
    return centres, spread, square


@pytest.mark.parametrize("shape", [(17,), (9, 13), (5, 6, 7)])
@pytest.mark.parametrize("kind", ["circle", "square", "either"])
def test_smoothmix_matches_a_per_pixel_reference(shape, kind):
    mask, lam = smoothmix_masks(6, shape, gen(16), kind=kind, sigma=(0.1, 0.4))
    centres, spread, square = smooth_params(6, len(shape), gen(16), kind, (0.1, 0.4))
    for i in range(6):
        for pixel in np.ndindex(*shape):
            d = [(p + 0.5) / n - float(c) for p, n, c in zip(pixel, shape, centres[i])]
            dist2 = max(v * v for v in d) if bool(square[i]) else sum(v * v for v in d)
            expect = 1 - math.exp(-dist2 / (2 * float(spread[i]) ** 2))
            assert abs(float(mask[i][pixel]) - expect) < 1e-6
    torch.testing.assert_close(lam, mask.double().mean(tuple(range(1, mask.ndim))).float())


def test_smoothmix_centres_are_uniform_and_shapes_are_circles_or_squares():
    mask, _ = smoothmix_masks(2000, (32, 32), gen(17), kind="either", sigma=(0.05, 0.1))
    flat = mask.view(2000, -1).argmin(1)
    rows, cols = flat // 32, flat % 32
    counts = np.histogram2d(rows.numpy(), cols.numpy(), bins=4, range=[[0, 32], [0, 32]])[0].ravel()
    assert stats.chisquare(counts).pvalue > 1e-3
    centres, _, square = smooth_params(2000, 2, gen(17), "either", (0.05, 0.1))
    assert 0.45 < float(square.double().mean()) < 0.55
    # the partner's mass is 2 pi sigma^2 for a circle and 8 sigma^2 for a square (the blob well inside)
    inside = ((centres > 0.3) & (centres < 0.7)).all(1)
    mass = (1 - mask.double()).sum((1, 2)) / 32**2
    sigma = torch.where(square, (mass / 8).sqrt(), (mass / (2 * math.pi)).sqrt())
    for kind in (True, False):
        picked = sigma[inside & (square == kind)].numpy()
        assert len(picked) > 80 and stats.kstest(picked, stats.uniform(0.05, 0.05).cdf).pvalue > 1e-3


def test_smoothmix_is_soft_and_gives_soft_dense_targets():
    x, y, seg = batch(b=4, shape=(10, 10))
    out = SmoothMix(num_classes=5, seed=7)(x, y, seg)
    assert out.mask.dtype == torch.float32 and out.masks.shape == (4, 5, 10, 10)
    torch.testing.assert_close(out.masks.sum(1), torch.ones(4, 10, 10))
    half = SmoothMix(num_classes=5, seed=7)(x.half(), y)
    assert torch.equal(half.mask, half.mask.half().float())  # weights the float16 pixels really get


# -- GridMix --------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(30,), (13, 17), (7, 9, 8)])
def test_gridmix_matches_a_per_pixel_reference(shape):
    lam = torch.rand(6, generator=gen(18), dtype=torch.float64)
    mask, used = gridmix_masks(lam, shape, gen(19), grid=(2, 5))
    g = gen(19)
    cuts = torch.randint(2, 6, (6,), generator=g)
    own = torch.rand(6, 5 ** len(shape), generator=g, dtype=torch.float64) < lam[:, None]
    for i in range(6):
        n = int(cuts[i])
        cells = own[i].view(*[5] * len(shape))
        for pixel in np.ndindex(*shape):
            cell = tuple(p * n // s for p, s in zip(pixel, shape))
            assert bool(mask[i][pixel]) == bool(cells[cell])
    torch.testing.assert_close(used, mask.double().mean(tuple(range(1, mask.ndim))).float())


def test_gridmix_cells_are_constant_and_own_with_probability_lam():
    lam = torch.rand(3000, generator=gen(20), dtype=torch.float64)
    mask, _ = gridmix_masks(lam, (24, 24), gen(21), grid=(2, 6))
    cuts = torch.randint(2, 7, (3000,), generator=gen(21))
    assert stats.chisquare(np.bincount(cuts.numpy(), minlength=7)[2:]).pvalue > 1e-3  # n uniform in the grid
    own_share = torch.zeros(3000, dtype=torch.float64)
    for n in range(2, 7):
        rows = (cuts == n).nonzero()[:, 0]
        cell = torch.arange(24) * n // 24
        first = torch.tensor([int((cell == k).nonzero()[0]) for k in range(n)])
        cells = mask[rows][:, first][:, :, first]  # (r, n, n): the value of each cell
        assert torch.equal(mask[rows], cells[:, cell][:, :, cell])  # constant on each of the n x n cells
        own_share[rows] = cells.double().mean((1, 2))
    # each cell is the sample's own with probability lam: E[own share - lam] = 0, within 4 standard errors
    diff = own_share - lam
    assert abs(float(diff.mean())) < 4 * float(diff.std()) / math.sqrt(3000)
    assert float(stats.pearsonr(own_share.numpy(), lam.numpy())[0]) > 0.8


# -- Cutout ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(40,), (12, 15), (6, 8, 7)])
def test_cutout_matches_a_per_sample_reference(shape):
    mask, lam = cutout_masks(5, shape, gen(22), size=(0.2, 0.7), num_boxes=3)
    g = gen(22)
    fraction = 0.2 + 0.5 * torch.rand(5, 3, 1, generator=g, dtype=torch.float64)
    centres = (torch.rand(5, 3, len(shape), generator=g, dtype=torch.float64) * torch.tensor(shape)).long()
    sides = torch.round(fraction * torch.tensor(shape, dtype=torch.float64)).long().clamp(min=1)
    for i in range(5):
        expect = torch.ones(shape, dtype=torch.bool)
        for k in range(3):
            lo = [max(int(c) - int(s) // 2, 0) for c, s in zip(centres[i, k], sides[i, k])]
            hi = [min(max(int(c) - int(s) // 2 + int(s), 0), n) for c, s, n in zip(centres[i, k], sides[i, k], shape)]
            expect[tuple(slice(a, b) for a, b in zip(lo, hi))] = False
        assert torch.equal(mask[i], expect)
    torch.testing.assert_close(lam, mask.double().mean(tuple(range(1, mask.ndim))).float())


def test_cutout_drops_the_papers_expected_area_and_keeps_labels():
    x, y, seg = batch(b=2000, shape=(32, 32), k=5)
    out = Cutout(size=0.5, num_classes=5, ignore_index=255, seed=8)(x, y, seg)
    # a centre uniform over the image, clipped: E[kept length] = s - s^2 / 4 per axis
    expected = (0.5 - 0.25 / 4) ** 2
    assert abs(float((1 - out.lam.double()).mean()) - expected) < 0.01
    assert torch.equal(out.targets, F.one_hot(y, 5).float())
    assert bool((out.inputs[~out.mask[:, None].expand_as(x)] == 0).all())
    assert bool((out.masks[~out.mask] == 255).all()) and torch.equal(out.masks[out.mask], seg[out.mask])


def test_cutout_noise_fill_replays_and_fits_the_dtype():
    x = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8, generator=gen(23))
    mix = Cutout(fill="noise", seed=9)
    out = mix(x)
    assert len(out.params.warps) == 1 and isinstance(out.params.warps[0], NoiseWarp)
    dropped = ~out.mask[:, None].expand_as(x)
    assert out.inputs.dtype == torch.uint8 and len(out.inputs[dropped].unique()) > 100
    assert torch.equal(out.inputs[~dropped], x[~dropped])
    assert torch.equal(mix(x, params=out.params).inputs, out.inputs)
    last = Cutout(fill="noise", seed=9, channels_last=True)(x.movedim(1, -1).contiguous())
    assert torch.equal(last.inputs.movedim(-1, 1), out.inputs)  # same noise at the same pixel and channel
    floats = Cutout(fill="noise", seed=9)(x.float() / 255)
    values = floats.inputs[dropped]
    assert abs(float(values.mean())) < 0.15 and abs(float(values.std()) - 1) < 0.15  # standard normal


def test_cutout_mixes_a_batch_of_one_and_shares_the_fill_with_gridmask():
    out = Cutout(size=0.5, seed=1)(torch.ones(1, 1, 8, 8))
    assert float(out.lam) < 1
    RandomChoice([GridMask(fill=2.0), Cutout(fill=2.0), Cutout(fill="noise")])
    with pytest.raises(MixMaskError, match=r"one fill value.*\[0.0, 1.0\]"):
        RandomChoice([GridMask(fill=0.0), Cutout(fill=1.0)])


# -- ClassMix -------------------------------------------------------------------------------------

@pytest.mark.parametrize("ignore_index", [None, 255, -1])
@pytest.mark.parametrize("shape", [(30,), (9, 11), (4, 5, 6)])
def test_classmix_matches_a_per_sample_reference(shape, ignore_index):
    g = gen(24)
    maps = torch.randint(0, 6, (7, *shape), generator=g)
    maps[0] = 3  # one class only
    if ignore_index is not None:
        maps[1] = ignore_index  # no class at all
        maps[2:, 0] = ignore_index
    mask, lam = classmix_masks(maps, gen(25), ignore_index=ignore_index)
    valid = maps >= 0
    if ignore_index is not None:
        valid &= maps != ignore_index
    classes = int(maps[valid].max()) + 1
    scores = torch.rand(7, classes, generator=gen(25), dtype=torch.float64)
    for i in range(7):
        present = sorted({int(v) for v in maps[i][valid[i]].unique()})
        chosen = sorted(present, key=lambda c: float(scores[i, c]))[:(len(present) + 1) // 2]
        expect = ~torch.isin(maps[i], torch.tensor(chosen, dtype=torch.long)) | ~valid[i]
        assert torch.equal(mask[i], expect)
    assert not bool(mask[0].any())  # a lone class is pasted whole


def test_classmix_pastes_half_of_the_present_classes_uniformly():
    maps = torch.arange(5).repeat_interleave(4).view(1, 20).expand(3000, 20)  # classes 0-4, 4 pixels each
    mask, _ = classmix_masks(maps, gen(26))
    pasted = (~mask).view(3000, 5, 4)
    assert bool((pasted.all(2) | ~pasted.any(2)).all())  # a class is pasted whole or not at all
    chosen = pasted.all(2)
    assert bool((chosen.sum(1) == 3).all())  # ceil(5 / 2)
    assert stats.chisquare(chosen.sum(0).numpy()).pvalue > 1e-3  # every class equally likely


def test_classmix_maps_follow_the_pixels_and_refuse_per_batch():
    x, y, seg = batch(b=6, shape=(12, 12), k=4)
    seg[:, :3] = 255
    out = ClassMix(num_classes=4, ignore_index=255, seed=10)(x, y, seg)
    for i in range(6):
        j = int(out.index[i])
        assert torch.equal(out.masks[i], torch.where(out.mask[i], seg[i], seg[j]))
        assert bool(out.mask[i][seg[j] == 255].all())  # unlabelled partner pixels are never pasted
    with pytest.raises(MixMaskError, match="ClassMix.*per_sample=False"):
        ClassMix(per_sample=False)
    with pytest.raises(MixMaskError, match="ClassMix makes each mask.*per_sample=False is refused"):
        RandomChoice([CutMix(), ClassMix()], per_sample=False)


def test_classmix_without_maps_or_with_maps_of_another_shape_writes_nothing():
    x, y, seg = batch(b=4)
    mix = ClassMix(num_classes=5, seed=11)
    with pytest.raises(MixMaskError, match="ClassMix.*needs the maps.*masks=None"):
        mix(x, y)
    with pytest.raises(MixMaskError, match=r"dense targets of shape \(4, 12, 10\)"):
        mix(x, y, seg[:, :, :5])
    first = mix(x, y, seg)
    assert torch.equal(first.params.mask, ClassMix(num_classes=5, seed=11)(x, y, seg).params.mask)


# -- every new method: the policy's invariants ------------------------------------------------------

BUILD = {
    "resizemix": lambda p: ResizeMix(p=p), "resizemix_nearest": lambda p: ResizeMix(mode="nearest", p=p),
    "saliencymix": lambda p: SaliencyMix(p=p), "smoothmix": lambda p: SmoothMix(kind="either", p=p),
    "gridmix": lambda p: GridMix(grid=(2, 3), p=p), "cutout": lambda p: Cutout(size=(0.2, 0.7), p=p),
    "cutout_noise": lambda p: Cutout(fill="noise", p=p), "classmix": lambda p: ClassMix(p=p),
    "cutmix": lambda p: CutMix(p=p), "mixup": lambda p: MixUp(p=p),
}


@given(names=st.lists(st.sampled_from(sorted(BUILD)), min_size=1, max_size=4),
       p=st.floats(0.0, 1.0), per_sample=st.booleans(), b=st.integers(1, 6),
       shape=st.sampled_from([(9,), (6, 7), (4, 5, 3)]), seed=st.integers(0, 2**31))
def test_new_methods_keep_the_policy_invariants(names, p, per_sample, b, shape, seed):
    per_sample = per_sample or "classmix" in names
    policy = RandomChoice([BUILD[n](p) for n in names], per_sample=per_sample, num_classes=4, ignore_index=255,
                          seed=seed, channels_last=False)
    g = gen(seed)
    x, y = torch.rand(b, 2, *shape, generator=g), torch.randint(0, 4, (b,), generator=g)
    seg = torch.randint(0, 4, (b, *shape), generator=g)
    seg.view(b, -1)[:, 0] = 255
    out = policy(x, y, masks=seg)
    mean = out.mask.double().mean(tuple(range(1, out.mask.ndim)))
    torch.testing.assert_close(out.lam.double(), mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.targets.sum(1), torch.ones(b), rtol=0, atol=1e-6)
    erase = out.params._erase_cpu
    torch.testing.assert_close(out.params.label_lam[erase], torch.ones(int(erase.sum())))
    partner_ids = seg.index_select(0, out.index).clone()
    for warp in out.params.warps:
        partner_ids[warp.rows] = warp.warp_ids(partner_ids[warp.rows].clone())
    if out.mask.dtype == torch.bool:  # ids follow pixels (warped partners' ids; fills keep ids or ignore)
        other = torch.where(erase.view(-1, *[1] * len(shape)), torch.full_like(seg, 255), partner_ids)
        assert torch.equal(out.masks, torch.where(out.mask, seg, other))
    else:
        labelled = (seg != 255).float() * out.mask + (1 - out.mask) * torch.where(
            erase.view(-1, *[1] * len(shape)), torch.zeros_like(seg), partner_ids != 255).float()
        torch.testing.assert_close(out.masks.sum(1), labelled, rtol=0, atol=1e-5)
    replay = policy(x, y, masks=seg, params=out.params)
    assert out.inputs.numpy().tobytes() == replay.inputs.numpy().tobytes()
    assert out.targets.numpy().tobytes() == replay.targets.numpy().tobytes()
    assert out.masks.numpy().tobytes() == replay.masks.numpy().tobytes()


@pytest.mark.parametrize("method", BINARY + ["resizemix"])
def test_uint8_inputs_mix_exactly(method):
    x, y, seg = batch(b=6, shape=(15, 13), seed=12)
    images = (x * 255).round().to(torch.uint8)
    mix = NEW[method](num_classes=5, seed=13)
    out = mix(images, y, seg)
    assert out.inputs.dtype == torch.uint8
    floats = mix(images.double(), y, seg, params=out.params).inputs
    if method == "resizemix":  # bilinear partners are computed in float32 and rounded
        assert int((out.inputs.double() - floats.round()).abs().max()) <= 1
    elif method == "cutout_noise":  # noise of the dtype (uniform integers for uint8) where boxes are
        keep = out.mask[:, None].expand_as(images)
        assert torch.equal(out.inputs[keep].double(), floats[keep])
    else:  # every pixel is a copy of the sample's, its partner's or the fill's
        assert torch.equal(out.inputs.double(), floats)


@pytest.mark.parametrize("method", sorted(NEW))
def test_gradcheck_with_a_fixed_draw(method):
    mix = NEW[method](num_classes=3, seed=0)
    x = torch.rand(3, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    seg = torch.randint(0, 3, (3, 6, 5), generator=gen(27))
    params = mix.sample(x.detach(), masks=seg)
    assert torch.autograd.gradcheck(lambda inputs: mix(inputs, masks=seg, params=params).inputs, (x,), fast_mode=True)


@pytest.mark.parametrize("method", ["resizemix", "smoothmix", "gridmix"])
def test_gradients_reach_the_sample_and_its_partner(method):
    mix = NEW[method](num_classes=3, seed=1)
    x = torch.rand(6, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    out = mix(x)
    out.inputs.sum().backward()
    own = out.mask.double()[:, None].expand_as(x)
    taken = x.grad - own  # what each sample gave to the samples it is the partner of
    assert bool((taken >= -1e-12).all())
    torch.testing.assert_close(taken.sum(), (1 - own).sum())  # every output pixel's weights sum to 1
    givers = out.index[out.lam < 1].unique()
    assert bool((taken[givers].sum((1, 2, 3)) > 0).all())
    if method != "resizemix":  # pixels are taken one for one
        torch.testing.assert_close(taken, torch.zeros_like(x).index_add_(0, out.index, 1 - own))


# -- policies, collate, per batch, ranks ------------------------------------------------------------

def test_every_method_in_one_random_choice_per_sample():
    x, y, seg = batch(b=64, shape=(12, 12), k=4)
    policy = RandomChoice([MixUp(), CutMix(), FMix(), GridMask(), ResizeMix(), SaliencyMix(), SmoothMix(),
                           GridMix(grid=(2, 4)), Cutout(), ClassMix()], num_classes=4, seed=14)
    out = policy(x, y, seg)
    assert len({METHODS[i] for i in out.params.method.tolist()}) >= 8
    torch.testing.assert_close(out.lam, out.mask.mean((1, 2)))
    torch.testing.assert_close(out.masks.sum(1), torch.ones(64, 12, 12))
    rows = out.params.method == METHODS.index("resizemix")
    (warp,) = out.params.warps
    assert torch.equal(warp.rows, rows.nonzero()[:, 0])


@pytest.mark.parametrize("method", [m for m in sorted(NEW) if m != "classmix"])
def test_per_batch_draws_one_mask_for_the_batch(method):
    x, y, seg = batch(b=8, shape=(12, 12))
    out = NEW[method](per_sample=False, num_classes=5, seed=15)(x, y, seg)
    assert bool((out.mask == out.mask[0]).all()) and bool((out.lam == out.lam[0]).all())


@pytest.mark.parametrize("targets", ["labels", "masks"])
def test_new_methods_in_mix_collate(targets):
    g = gen(28)
    images = torch.rand(12, 3, 10, 10, generator=g)
    second = torch.arange(12) % 3 if targets == "labels" else torch.randint(0, 3, (12, 10, 10), generator=g)
    members = [ResizeMix(), SaliencyMix(), GridMix(grid=(2, 4)), Cutout(fill="noise")]
    policy = RandomChoice(members + ([ClassMix()] if targets == "masks" else []), num_classes=3)
    loader = DataLoader(list(zip(images, second)), batch_size=6, collate_fn=MixCollate(policy, targets=targets, seed=3))
    for mixed, mixed_targets in loader:
        assert mixed.shape == (6, 3, 10, 10)
        if targets == "labels":
            torch.testing.assert_close(mixed_targets.sum(1), torch.ones(6))
        else:
            assert mixed_targets.shape == (6, 10, 10) and bool(((mixed_targets >= 0) & (mixed_targets < 3)).all())


@pytest.mark.parametrize("method", sorted(NEW))
def test_label_smoothing_multi_label_and_pairings_apply_to_the_new_methods(method):
    x, y, seg = batch(b=8, shape=(12, 10), k=4, seed=34)
    out = NEW[method](num_classes=4, label_smoothing=0.1, pairing="other_class", seed=35)(x, y, seg)
    assert bool((y[out.index] != y).all())  # every sample has a partner of another class here
    w = out.params.label_lam.double()[:, None]
    smooth = F.one_hot(y, 4).double() * 0.9 + 0.1 / 4
    torch.testing.assert_close(out.targets.double(), w * smooth + (1 - w) * smooth[out.index], rtol=0, atol=1e-6)
    multi = torch.rand(8, 4, generator=gen(36)).round()
    out = NEW[method](num_classes=4, multi_label=True, label_smoothing=0.2, pairing="flip", seed=37)(x, multi, seg)
    assert torch.equal(out.index, torch.arange(7, -1, -1))
    w = out.params.label_lam.double()[:, None]
    smooth = multi.double() * 0.8 + 0.1
    torch.testing.assert_close(out.targets.double(), w * smooth + (1 - w) * smooth.flip(0), rtol=0, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", sorted(NEW))
def test_cuda_matches_cpu_draw(method):
    x, y, seg = batch(b=6, shape=(16, 16), k=4, seed=38)
    cpu = NEW[method](num_classes=4, seed=39)(x, y, seg)
    gpu = NEW[method](num_classes=4, seed=39)(x.cuda(), y.cuda(), seg.cuda())
    assert gpu.inputs.device.type == "cuda" and gpu.masks.device.type == "cuda"
    assert torch.equal(gpu.index.cpu(), cpu.index)
    torch.testing.assert_close(gpu.mask.cpu(), cpu.mask)
    torch.testing.assert_close(gpu.targets.cpu(), cpu.targets)
    if method != "cutout_noise":  # the noise is drawn on the inputs' device
        torch.testing.assert_close(gpu.inputs.cpu(), cpu.inputs)
        torch.testing.assert_close(gpu.masks.cpu(), cpu.masks)


# -- bad options ----------------------------------------------------------------------------------

@pytest.mark.parametrize("build,message", [
    (lambda: ResizeMix(scale=(0.0, 0.5)), r"scale.*\(0.0, 1.0\].*0.0"),
    (lambda: ResizeMix(scale=(0.8, 0.2)), r"scale.*low <= high"),
    (lambda: ResizeMix(scale=(0.1, 1.5)), r"scale.*1.5"),
    (lambda: ResizeMix(mode="bicubic"), r"mode.*bilinear.*nearest.*bicubic"),
    (lambda: SaliencyMix(saliency_size=2), r"saliency_size.*>= 4"),
    (lambda: SaliencyMix(alpha=0), r"alpha"),
    (lambda: SmoothMix(sigma=(0.0, 0.2)), r"sigma.*0.0"),
    (lambda: SmoothMix(sigma=(0.3,)), r"sigma.*pair"),
    (lambda: SmoothMix(kind="star"), r"kind.*circle.*star"),
    (lambda: GridMix(grid=(0, 4)), r"grid.*>= 1.*0"),
    (lambda: GridMix(grid=(5, 3)), r"grid.*low <= high"),
    (lambda: GridMix(grid=(2.5, 4)), r"grid.*int.*2.5"),
    (lambda: Cutout(size=0), r"size.*\(0.0, 1.0\]"),
    (lambda: Cutout(size=(0.2, 1.2)), r"size.*1.2"),
    (lambda: Cutout(num_boxes=0), r"num_boxes.*>= 1"),
    (lambda: Cutout(fill="random"), r"fill.*number or 'noise'.*random"),
    (lambda: Cutout(fill=float("nan")), r"fill.*nan"),
])
def test_options_out_of_range_are_refused_at_construction(build, message):
    with pytest.raises(MixMaskError, match=message):
        build()


def test_shapes_a_method_cannot_mix_are_refused_before_any_draw():
    mix = GridMix(grid=(2, 8), seed=0)
    x = torch.rand(2, 1, 5, 40)
    with pytest.raises(MixMaskError, match=r"GridMix.*grid=\(2, 8\).*\(5, 40\)"):
        mix(x)
    assert torch.equal(mix(torch.rand(2, 1, 8, 40)).mask, GridMix(grid=(2, 8), seed=0)(torch.rand(2, 1, 8, 40)).mask)
    with pytest.raises(MixMaskError, match=r"uint8.*0.5"):
        Cutout(fill=0.5)(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))


def test_warps_compare_by_value_and_move_devices():
    a = ResizeWarp(torch.tensor([0, 1]), torch.tensor([[1, 2], [0, 0]]), torch.tensor([[3, 4], [2, 2]]))
    b = ResizeWarp(torch.tensor([0, 1]), torch.tensor([[1, 2], [0, 0]]), torch.tensor([[3, 4], [2, 2]]))
    assert a == b and a != ResizeWarp(a.rows, a.low, a.high, "nearest") and a.to("cpu") == a
    assert NoiseWarp(torch.tensor([1]), 5) == NoiseWarp(torch.tensor([1]), 5) != NoiseWarp(torch.tensor([1]), 6)
    assert a.for_rows(torch.arange(3)).low.shape == (3, 2)


# -- the train command's SPECs --------------------------------------------------------------------

def test_train_specs_name_the_new_methods():
    from mixmask.train import parse_mix

    assert repr(parse_mix("resizemix:scale=(0.2,0.6),mode='nearest'", num_classes=10)) == repr(
        ResizeMix(scale=(0.2, 0.6), mode="nearest", num_classes=10))
    policy = parse_mix("choice(saliencymix,smoothmix:kind='square',gridmix,cutout:fill='noise',classmix)", seed=1)
    assert [type(m) for m in policy.transforms] == [SaliencyMix, SmoothMix, GridMix, Cutout, ClassMix]


def test_train_one_epoch_of_segmentation_with_classmix_and_resizemix(tmp_path):
    from mixmask.train import TrainConfig, train

    summary = train(TrainConfig(data="shapes", model="unet:width=8", mix="choice(classmix,resizemix)",
                                out=str(tmp_path), train_size=20, test_size=10, epochs=1, batch_size=8,
                                progress=False))
    assert summary["train_size"] == 18 and summary["test_size"] == 10
    assert summary["mix_seconds_per_epoch"] > 0 and math.isfinite(summary["train_loss"])


@pytest.mark.parametrize("partners", [[3, 0, 4, 1, 2], [1, 1, 0, 4, 4], [2, 0]])
def test_classmix_sampler_equals_the_function_on_the_partners_maps(partners):
    from mixmask.transforms import ClassMixSampler, SamplerContext

    maps = torch.randint(0, 5, (5, 9, 7), generator=gen(29))
    maps[:, 0] = 255
    partners = torch.tensor(partners)
    rows = torch.arange(len(partners))
    ctx = SamplerContext(len(partners), rows, partners, (9, 7), torch.device("cpu"), torch.float32, gen(30),
                         torch.zeros(5, 1, 9, 7), None, maps, None, 255)
    draw = ClassMixSampler().draw(ctx)
    mask, lam = classmix_masks(maps[partners], gen(30), ignore_index=255)
    assert torch.equal(draw.mask, mask) and torch.equal(draw.lam, lam)


@pytest.mark.parametrize("method", sorted(NEW))
@pytest.mark.parametrize("ignore", [None, 255])
def test_pair_targets_give_the_soft_target_loss(method, ignore):
    from mixmask import mixed_cross_entropy

    x, y, seg = batch(b=6, shape=(12, 10), k=4, seed=31)
    if ignore is not None:
        seg[:, :3] = ignore
    logits = torch.randn(6, 4, 12, 10, generator=gen(32), dtype=torch.float64)
    soft = NEW[method](num_classes=4, ignore_index=ignore, seed=3)(x, y, seg)
    pair = NEW[method](ignore_index=ignore, seed=3, target_format="pair")(x, y, seg)
    if soft.masks.dtype.is_floating_point:
        expected = mixed_cross_entropy(logits, soft.masks)
    else:
        expected = mixed_cross_entropy(logits, soft.masks, ignore_index=-100 if ignore is None else ignore)
    torch.testing.assert_close(mixed_cross_entropy(logits, pair.masks), expected, rtol=1e-7, atol=1e-7)
    class_logits = torch.randn(6, 4, generator=gen(33), dtype=torch.float64)
    torch.testing.assert_close(mixed_cross_entropy(class_logits, pair.targets),
                               mixed_cross_entropy(class_logits, soft.targets), rtol=1e-6, atol=1e-6)
