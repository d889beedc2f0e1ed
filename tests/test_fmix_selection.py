"""FMix threshold selection: equal to reading a full sort, for long rows (bracket) and short ones (sort)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixmask import FMix, MixMaskError, MixParams
from mixmask.functional import fmix_grey_images, fmix_masks
from mixmask.functional import masks as M


def sorted_kth(values, counts):
    """The reference: position ``N - k`` of each row sorted ascending, +inf where k = 0."""
    n = values.shape[1]
    position = (n - counts).clamp(max=n - 1)
    kth = torch.sort(values, dim=1).values.gather(1, position[:, None])[:, 0]
    return torch.where(counts > 0, kth, torch.full_like(kth, math.inf))


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 20), n=st.sampled_from([7, 1000, M._SELECT_MIN, 5003, 9000]),
       levels=st.sampled_from([0, 2, 5, 1000]), seed=st.integers(0, 2**31))
def test_selection_equals_a_full_sort(rows, n, levels, seed):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(rows, n, generator=g)
    if levels:  # many ties
        values = torch.randint(0, levels, (rows, n), generator=g).float()
    counts = torch.randint(0, n + 1, (rows,), generator=g)
    counts[0] = 0
    counts[-1] = n
    if rows > 2:
        counts[1] = 1
    assert torch.equal(M._kth_largest(values, counts), sorted_kth(values, counts))


def test_selection_falls_back_when_the_sample_misleads():
    n = 3 * M._SELECT_MIN
    values = torch.zeros(4, n)
    values[:, torch.from_numpy(M._sample_index(n))] = 100.0  # the sample sees only the large values
    values[1] = torch.linspace(-1, 1, n)
    values[1, torch.from_numpy(M._sample_index(n))] = 5.0
    counts = torch.tensor([n // 2, n // 3, n, 1])
    assert torch.equal(M._kth_largest(values, counts), sorted_kth(values, counts))


@pytest.mark.parametrize("shape", [(96, 96), (24, 24, 24), (6000,), (20, 20)])
def test_fmix_masks_match_a_threshold_from_a_full_sort(shape):
    lam = torch.tensor([0.0, 1.0, 0.5, 1e-5, 1 - 1e-5, 0.3, 0.77], dtype=torch.float64)
    mask, used = fmix_masks(lam, shape, torch.Generator().manual_seed(3))
    n = math.prod(shape)
    grey = fmix_grey_images(lam.shape[0], shape, 3.0, torch.Generator().manual_seed(3)).reshape(-1, n)
    counts = torch.round(lam * n).long()
    expected = grey >= sorted_kth(grey, counts)[:, None]
    assert torch.equal(mask.reshape(-1, n), expected)
    assert torch.equal(mask.reshape(-1, n).sum(1), counts)
    assert torch.equal(used, (counts.double() / n).float())


def test_fmix_masks_do_not_depend_on_the_number_of_threads():
    lam = torch.rand(40, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fmix_masks(lam, (128, 128), torch.Generator().manual_seed(5))[0]
        torch.set_num_threads(2)
        two = fmix_masks(lam, (128, 128), torch.Generator().manual_seed(5))[0]
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


@pytest.mark.parametrize("bad", [float("nan"), -0.1, 1.5])
def test_fmix_masks_still_reject_bad_lam(bad):
    with pytest.raises(MixMaskError, match="lam"):
        fmix_masks(torch.tensor([0.5, bad], dtype=torch.float64), (8, 8), torch.Generator())


def test_drawn_params_skip_nothing_a_user_params_must_pass():
    x = torch.rand(6, 3, 8, 8)
    params = FMix(seed=0).sample(x)
    assert params.to("cpu") is params
    assert params.label_lam is params.lam
    with pytest.raises(MixMaskError, match="index"):
        MixParams(torch.full((6,), 6), params.lam, params.mask, params.method)
    with pytest.raises(MixMaskError, match="method"):
        MixParams(params.index, params.lam, params.mask, torch.full((6,), 99))
    with pytest.raises(MixMaskError, match="index"):
        FMix(seed=0)(x, params=MixParams(params.index[:5], params.lam, params.mask, params.method))
