"""Mask samplers: invariants per method and rank, CutMix boxes, FMix structure and isotropy, GridMask."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

from mixmask import MixMaskError
from mixmask.functional import (cutmix_boxes, cutmix_masks, fmix_grey_images, fmix_masks, gridmask_masks,
                                mixup_masks)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


shapes = st.lists(st.integers(1, 11), min_size=1, max_size=3).map(tuple)
lams = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5).map(lambda v: torch.tensor(v, dtype=torch.float64))


def draw(method, lam, shape, seed):
    g = gen(seed)
    if method == "mixup":
        return mixup_masks(lam, shape)
    if method == "cutmix":
        return cutmix_masks(lam, shape, g)
    if method == "fmix":
        return fmix_masks(lam, shape, g)
    if method == "fmix_soft":
        return fmix_masks(lam, shape, g, max_soft=0.1)
    return gridmask_masks(lam.shape[0], shape, g, rotate=30.0 if len(shape) == 2 else 0.0)


METHODS = ["mixup", "cutmix", "fmix", "fmix_soft", "gridmask"]


@pytest.mark.parametrize("method", METHODS)
@given(lam=lams, shape=shapes, seed=st.integers(0, 2**31))
def test_mask_invariants(method, lam, shape, seed):
    mask, used = draw(method, lam, shape, seed)
    assert mask.shape == (lam.shape[0], *shape)
    assert used.shape == (lam.shape[0],) and used.dtype == torch.float32
    assert bool(((used >= 0) & (used <= 1)).all())
    mean = mask.double().mean(tuple(range(1, mask.ndim)))
    torch.testing.assert_close(used.double(), mean, atol=1e-6, rtol=0)
    if method in ("cutmix", "fmix", "gridmask"):
        assert mask.dtype == torch.bool
    else:
        assert mask.dtype == torch.float32
        assert bool(((mask >= 0) & (mask <= 1)).all())
    again, _ = draw(method, lam, shape, seed)
    assert torch.equal(mask, again)


@pytest.mark.parametrize("method", ["mixup", "cutmix", "fmix", "fmix_soft"])
@pytest.mark.parametrize("shape", [(7,), (5, 9), (3, 4, 5)])
def test_lam_one_keeps_everything_and_zero_nothing(method, shape):
    ones, lam1 = draw(method, torch.ones(3, dtype=torch.float64), shape, 0)
    assert bool((ones == 1).all()) and bool((lam1 == 1).all())
    if method != "cutmix":  # a full-size CutMix box is centred at random, so it is clipped
        zeros, lam0 = draw(method, torch.zeros(3, dtype=torch.float64), shape, 0)
        assert bool((zeros == 0).all()) and bool((lam0 == 0).all())


def test_mixup_mask_is_constant_lam():
    lam = torch.tensor([0.25, 0.5, 0.9], dtype=torch.float64)
    mask, used = mixup_masks(lam, (4, 6))
    assert torch.equal(used, lam.float())
    assert torch.equal(mask, lam.float()[:, None, None].expand(3, 4, 6))


@given(lam=lams, shape=shapes, seed=st.integers(0, 2**31))
def test_cutmix_boxes_are_clipped_and_sized(lam, shape, seed):
    low, high = cutmix_boxes(lam, shape, gen(seed))
    limit = torch.tensor(shape)
    assert bool(((low >= 0) & (low <= high) & (high <= limit)).all())
    sides = torch.round(torch.tensor(shape, dtype=torch.float64) * (1 - lam[:, None]) ** (1 / len(shape))).long()
    assert bool((high - low <= sides).all())
    inside = (low > 0) & (high < limit)
    assert bool(((high - low) == sides)[inside].all())
    mask, used = cutmix_masks(lam, shape, gen(seed))
    for i in range(lam.shape[0]):
        box = tuple(slice(int(a), int(b)) for a, b in zip(low[i], high[i]))
        assert not bool(mask[i][box].any())
        assert int((~mask[i]).sum()) == math.prod(int(b - a) for a, b in zip(low[i], high[i]))


def test_cutmix_unclipped_area_is_one_minus_lam():
    lam = torch.full((2000,), 0.64, dtype=torch.float64)
    low, high = cutmix_boxes(lam, (100, 50), gen(1))
    sides = high - low
    unclipped = ((low > 0) & (high < torch.tensor([100, 50]))).all(1)
    assert int(unclipped.sum()) > 100
    assert bool((sides[unclipped] == torch.tensor([60, 30])).all())  # 0.6 of each side: 0.36 of the area
    # centres are uniform: the clipped area is on average less than the drawn one
    _, used = cutmix_masks(lam, (100, 50), gen(1))
    assert 0.64 < float(used.mean()) < 0.8


@pytest.mark.parametrize("shape", [(256,), (32, 32), (16, 16, 16)])
def test_fmix_masks_have_few_connected_pieces(shape):
    lam = torch.full((8,), 0.3, dtype=torch.float64)
    mask, used = fmix_masks(lam, shape, gen(3), decay_power=3.0)
    g = gen(4)
    pieces = random_pieces = 0
    for m in mask.numpy():
        random = torch.randperm(m.size, generator=g).numpy().reshape(m.shape) < m.sum()
        pieces += ndimage.label(m)[1] + ndimage.label(~m)[1]
        random_pieces += ndimage.label(random)[1] + ndimage.label(~random)[1]
    assert pieces * 10 < random_pieces


@given(lam=lams, shape=shapes, seed=st.integers(0, 2**31))
def test_fmix_keeps_round_lam_n_pixels(lam, shape, seed):
    n = math.prod(shape)
    mask, used = fmix_masks(lam, shape, gen(seed))
    expected = torch.round(lam * n) / n
    torch.testing.assert_close(used.double(), expected, atol=1e-6, rtol=0)


@given(lam=lams, shape=shapes, seed=st.integers(0, 2**31), max_soft=st.floats(0.01, 0.5))
def test_soft_fmix_mean_is_round_lam_n(lam, shape, seed, max_soft):
    n = math.prod(shape)
    mask, used = fmix_masks(lam, shape, gen(seed), max_soft=max_soft)
    assert mask.dtype == torch.float32
    torch.testing.assert_close(used.double(), torch.round(lam * n) / n, atol=1e-5, rtol=0)


def test_soft_fmix_has_a_ramp_of_the_right_width():
    n = 32 * 32
    lam = torch.tensor([0.5, 0.3, 0.05], dtype=torch.float64)
    mask, _ = fmix_masks(lam, (32, 32), gen(1), max_soft=0.1)
    soft = (n * torch.minimum(torch.full_like(lam, 0.1), torch.minimum(lam, 1 - lam))).long()
    fractional = ((mask > 0) & (mask < 1)).flatten(1).sum(1)
    assert torch.equal(fractional, 2 * soft - 2)  # the ramp from 1 to 0 over 2*soft ranks: ends are 1 and 0
    hard, _ = fmix_masks(lam, (32, 32), gen(1))
    # the ramp sits on the same ranks as the cut: fully kept pixels are kept by the hard mask too
    assert bool(hard[mask == 1].all()) and not bool(hard[mask == 0].any())


def _centred(grey):
    return grey.double() - grey.double().mean(tuple(range(1, grey.ndim)), keepdim=True)


def _gradients(grey):
    return [grey.diff(dim=d + 1) for d in range(grey.ndim - 1)]


@pytest.mark.parametrize("shape", [(32, 32), (32, 48), (48, 20), (12, 12, 12), (10, 16, 14)])
def test_fmix_grey_images_are_isotropic(shape):
    grey = fmix_grey_images(1500 if len(shape) == 2 else 400, shape, 3.0, gen(5)).double()
    # the variogram E[(g(x + h e_d) - g(x))^2] = 2 (C(0) - C(h)): at lag 1 it is the mean squared
    # gradient; equal variograms along every axis = equal autocorrelations at the same pixel lag
    # (a field drawn on S itself is off by a factor 2 to 3 for these non-square shapes)
    for lag in (1, 3, 6):
        gamma = torch.stack([(grey.narrow(d + 1, lag, n - lag) - grey.narrow(d + 1, 0, n - lag)).pow(2).mean()
                             for d, n in enumerate(shape)])
        assert float(gamma.max() / gamma.min()) < 1.1, (lag, gamma)


@pytest.mark.parametrize("shape", [(32, 32), (24, 40), (12, 12, 12), (10, 16, 14)])
def test_fmix_gradient_magnitudes_are_uncorrelated_across_axes(shape):
    grey = _centred(fmix_grey_images(800 if len(shape) == 2 else 300, shape, 3.0, gen(6)))
    crop = tuple(slice(0, n - 1) for n in shape)
    grads = [g[(slice(None),) + crop].abs().flatten() for g in _gradients(grey)]
    for a in range(len(grads)):
        for b in range(a + 1, len(grads)):
            corr = np.corrcoef(grads[a].numpy(), grads[b].numpy())[0, 1]
            assert abs(corr) < 0.08, (a, b, corr)


def test_fmix_decay_power_smooths():
    rough = _centred(fmix_grey_images(200, (64,), 1.0, gen(7)))
    smooth = _centred(fmix_grey_images(200, (64,), 4.0, gen(7)))

    def roughness(g):
        return float(g.diff(dim=1).pow(2).mean() / g.pow(2).mean())
    assert roughness(smooth) < roughness(rough) / 5


@pytest.mark.parametrize("shape, keep", [((200,), 0.6), ((96, 96), 0.6), ((96, 96), 0.3), ((24, 24, 24), 0.5)])
def test_gridmask_keeps_the_expected_fraction(shape, keep):
    mask, used = gridmask_masks(300, shape, gen(8), keep_ratio=keep, cell_size=(0.1, 0.3))
    expected = 1 - (1 - keep) ** len(shape)
    assert abs(float(used.mean()) - expected) < 0.04
    assert mask.dtype == torch.bool


def test_gridmask_is_periodic_along_each_axis():
    mask, _ = gridmask_masks(20, (60,), gen(9), cell_size=(0.1, 0.3))
    for m in mask:
        dropped = (~m).nonzero()[:, 0]
        starts = dropped[torch.cat([torch.tensor([True]), dropped.diff() > 1])]
        if len(starts) > 2:
            periods = starts[1:].diff()  # the first run may be cut by the border
            assert int(periods.max() - periods.min()) <= 1


def test_gridmask_rotation_draws_rotated_grids():
    flat, _ = gridmask_masks(16, (64, 64), gen(10), cell_size=(0.2, 0.4))
    turned, _ = gridmask_masks(16, (64, 64), gen(10), cell_size=(0.2, 0.4), rotate=45.0)

    def axis_aligned(m):
        rows_equal = (m[:, 1:, :] == m[:, :-1, :]).all(2)
        cols_equal = (m[:, :, 1:] == m[:, :, :-1]).all(1)
        return (rows_equal.float().mean(1) + cols_equal.float().mean(1)) / 2
    assert float(axis_aligned(flat).mean()) > 0.5
    assert float(axis_aligned(turned).mean()) < 0.2


@pytest.mark.parametrize("call, match", [
    (lambda: mixup_masks(torch.tensor([1.5]), (4,)), r"\[0, 1\].*1\.5"),
    (lambda: mixup_masks(torch.tensor([float("nan")]), (4,)), r"\[0, 1\].*nan"),
    (lambda: mixup_masks(torch.tensor([[0.5]]), (4,)), r"\(B,\)"),
    (lambda: mixup_masks(torch.tensor([0.5]), (2, 2, 2, 2)), r"rank 1, 2 or 3.*\(2, 2, 2, 2\)"),
    (lambda: cutmix_masks(torch.tensor([0.5]), (0, 4), gen()), r"sizes >= 1.*\(0, 4\)"),
    (lambda: fmix_masks(torch.tensor([0.5]), (8,), gen(), decay_power=0), "decay_power.*0"),
    (lambda: fmix_masks(torch.tensor([0.5]), (8,), gen(), max_soft=0.6), "max_soft.*0.6"),
    (lambda: gridmask_masks(2, (8, 8, 8), gen(), rotate=10), "2-D.*\\(8, 8, 8\\)"),
    (lambda: gridmask_masks(2, (8,), gen(), keep_ratio=1.0), "keep_ratio.*1.0"),
    (lambda: gridmask_masks(2, (8,), gen(), cell_size=(0.5, 0.2)), r"low <= high.*\(0.5, 0.2\)"),
    (lambda: gridmask_masks(0, (8,), gen()), "batch.*0"),
])
def test_mask_errors(call, match):
    with pytest.raises(MixMaskError, match=match):
        call()
