"""The Keras samplers draw what the torch core draws: distributions compared with KS tests.

Both sides are seeded, so each test is deterministic; a p-value below 1e-3 fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kerashelp import BACKEND, needs, to_numpy
from scipy import ndimage, stats

from mixmask import functional as core
from mixmask.functional.params import METHODS
from mixmask.keras import CutMix, FMix, GridMask, RandomChoice
from mixmask.keras import masks as M

P_MIN = 1e-3


def backend_and_seed(seed):
    """The layers' backend module (the configured backend, eagerly) and a seed generator."""
    layer = CutMix(seed=seed)
    return layer.backend, layer.generator


def core_lam(n, alpha=1.0, seed=0, reformulate=False):
    return core.sample_lam(n, alpha, torch.Generator().manual_seed(seed), reformulate=reformulate).float()


@pytest.mark.parametrize("alpha, reformulate", [(0.2, False), (1.0, False), (4.0, False), (0.5, True)])
def test_lam_is_beta_like_the_core(alpha, reformulate):
    ops, seed = backend_and_seed(1)
    ours = to_numpy(M.sample_lam(ops, 4000, alpha, seed, reformulate=reformulate))
    theirs = core_lam(4000, alpha, reformulate=reformulate).numpy()
    assert ours.shape == (4000,) and np.all((ours >= 0) & (ours <= 1))
    assert stats.ks_2samp(ours, theirs).pvalue > P_MIN
    assert stats.kstest(ours, stats.beta(alpha + reformulate, alpha).cdf).pvalue > P_MIN


@needs("tensorflow")  # the same sampler code: its other backends are checked by the lam and FMix tests
def test_derangements_are_uniform_over_partners():
    ops, seed = backend_and_seed(2)
    counts = np.zeros((5, 5))
    for _ in range(400):
        index = to_numpy(M.derangement(ops, 5, seed))
        assert sorted(index) == list(range(5)) and np.all(index != np.arange(5))
        counts[np.arange(5), index] += 1
    off = counts[~np.eye(5, dtype=bool)]
    assert stats.chisquare(off.reshape(5, 4), axis=None).pvalue > P_MIN


@needs("tensorflow")  # the same sampler code: its other backends are checked by the lam and FMix tests
def test_cutmix_measured_lam_like_the_core():
    ops, seed = backend_and_seed(3)
    drawn = M.sample_lam(ops, 3000, 1.0, seed)
    _, ours = M.cutmix_masks(ops, drawn, (12, 20), seed)
    _, theirs = core.cutmix_masks(core_lam(3000), (12, 20), torch.Generator().manual_seed(1))
    assert stats.ks_2samp(to_numpy(ours), theirs.numpy()).pvalue > P_MIN


def components(masks):
    return np.array([ndimage.label(m)[1] + ndimage.label(~m)[1] for m in masks])


def test_fmix_masks_like_the_core():
    ops, seed = backend_and_seed(4)
    shape = (24, 40)
    mask, ours = M.fmix_masks(ops, M.sample_lam(ops, 500, 1.0, seed), shape, seed, decay_power=3.0)
    core_mask, theirs = core.fmix_masks(core_lam(500), shape, torch.Generator().manual_seed(2))
    assert stats.ks_2samp(to_numpy(ours), theirs.numpy()).pvalue > P_MIN
    ours_parts, core_parts = components(to_numpy(mask)), components(core_mask.numpy())
    assert stats.ks_2samp(ours_parts, core_parts).pvalue > P_MIN
    assert abs(ours_parts.mean() - core_parts.mean()) < 0.5


def lag_one_correlation(grey, axis):
    a, b = np.moveaxis(grey, axis, 1)[:, :-1], np.moveaxis(grey, axis, 1)[:, 1:]
    a = a.reshape(len(grey), -1) - a.mean((1, 2))[:, None]
    b = b.reshape(len(grey), -1) - b.mean((1, 2))[:, None]
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


@pytest.mark.parametrize("decay", [2.0, 3.0] if BACKEND == "tensorflow" else [3.0])
def test_fmix_grey_images_are_isotropic_and_as_smooth_as_the_core(decay):
    ops, seed = backend_and_seed(5)
    shape = (16, 48)
    grey = to_numpy(M.fmix_grey_images(ops, 400, shape, decay, seed)).astype("float64")
    core_grey = core.fmix_grey_images(400, shape, decay, torch.Generator().manual_seed(3)).double().numpy()
    for field in (grey, core_grey):
        along_rows = (np.diff(field, axis=1) ** 2).mean()
        along_cols = (np.diff(field, axis=2) ** 2).mean()
        assert 0.85 < along_rows / along_cols < 1.15  # drawn on S itself: 0.54 (decay 2), 0.05 (decay 3)
    for axis in (1, 2):
        assert stats.ks_2samp(lag_one_correlation(grey, axis), lag_one_correlation(core_grey, axis)).pvalue > P_MIN


@needs("tensorflow")  # the same sampler code: its other backends are checked by the lam and FMix tests
def test_fmix_in_1d_and_3d_keeps_the_core_statistics():
    ops, seed = backend_and_seed(6)
    for shape in ((64,), (8, 10, 12)):
        mask, ours = M.fmix_masks(ops, M.sample_lam(ops, 300, 1.0, seed), shape, seed)
        _, theirs = core.fmix_masks(core_lam(300), shape, torch.Generator().manual_seed(4))
        assert to_numpy(mask).shape == (300, *shape)
        assert stats.ks_2samp(to_numpy(ours), theirs.numpy()).pvalue > P_MIN


@pytest.mark.parametrize("rotate", [0.0, 30.0])
def test_gridmask_kept_share_like_the_core(rotate):
    ops, seed = backend_and_seed(7)
    mask, ours = M.gridmask_masks(ops, 1500, (32, 32), seed, rotate=rotate)
    _, theirs = core.gridmask_masks(1500, (32, 32), torch.Generator().manual_seed(5), rotate=rotate)
    assert stats.ks_2samp(to_numpy(ours), theirs.numpy()).pvalue > P_MIN


@needs("tensorflow")  # the same sampler code: its other backends are checked by the lam and FMix tests
def test_random_choice_frequencies_follow_the_weights():
    layer = RandomChoice([CutMix(), FMix(), GridMask()], weights=[1.0, 2.0, 5.0], seed=8)
    images = np.zeros((400, 4, 4, 1), "float32")
    method = to_numpy(layer.get_random_transformation({"images": images})["method"])
    ids = [METHODS.index(m) for m in ("cutmix", "fmix", "gridmask")]
    observed = [int((method == i).sum()) for i in ids]
    assert stats.chisquare(observed, np.array([1, 2, 5]) / 8 * 400).pvalue > P_MIN
