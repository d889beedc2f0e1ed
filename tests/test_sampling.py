"""Samplers of the scalar parameters: lam ~ Beta, partner indices."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from mixmask import MixMaskError
from mixmask.functional import sample_lam, sample_partners


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 3.0])
def test_lam_follows_beta(alpha):
    lam = sample_lam(4000, alpha, gen(1)).numpy()
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    # and is told apart from a neighbouring Beta
    assert stats.kstest(lam, stats.beta(alpha * 1.5, alpha).cdf).pvalue < 1e-3


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_reformulated_lam_follows_beta_alpha_plus_one(alpha):
    lam = sample_lam(4000, alpha, gen(2), reformulate=True).numpy()
    assert stats.kstest(lam, stats.beta(alpha + 1, alpha).cdf).pvalue > 1e-3
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue < 1e-3


def test_tiny_alpha_gives_zeros_and_ones_in_equal_parts():
    lam = sample_lam(2000, 1e-4, gen(3))
    assert bool(((lam >= 0) & (lam <= 1)).all())
    extreme = (lam < 1e-6) | (lam > 1 - 1e-6)
    assert float(extreme.double().mean()) > 0.99
    assert abs(float((lam > 0.5).double().mean()) - 0.5) < 0.05


def test_lam_same_seed_same_draw_and_dtype():
    a, b = sample_lam(16, 0.4, gen(5)), sample_lam(16, 0.4, gen(5))
    assert a.dtype == torch.float64 and a.shape == (16,)
    assert torch.equal(a, b)
    assert not torch.equal(a, sample_lam(16, 0.4, gen(6)))


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf"), "a"])
def test_lam_bad_alpha(alpha):
    with pytest.raises(MixMaskError, match="alpha"):
        sample_lam(4, alpha, gen())


@given(st.integers(2, 40), st.integers(0, 2**31))
def test_permutation_is_a_derangement(batch, seed):
    index = sample_partners(batch, gen(seed))
    assert index.dtype == torch.long
    assert sorted(index.tolist()) == list(range(batch))
    assert not bool((index == torch.arange(batch)).any())


def test_permutation_covers_every_partner():
    counts = torch.zeros(5, 5)
    g = gen(7)
    for _ in range(400):
        index = sample_partners(5, g)
        counts[torch.arange(5), index] += 1
    off_diagonal = counts[~torch.eye(5, dtype=torch.bool)]
    assert bool((off_diagonal > 50).all())


def test_flip_reverses():
    assert sample_partners(5, gen(), "flip").tolist() == [4, 3, 2, 1, 0]


@pytest.mark.parametrize("pairing", ["permutation", "flip", "other_class"])
def test_single_sample_pairs_with_itself(pairing):
    assert sample_partners(1, gen(), pairing, labels=torch.tensor([3])).tolist() == [0]


@given(st.lists(st.integers(0, 3), min_size=2, max_size=24), st.integers(0, 2**31))
def test_other_class_picks_a_different_label_when_one_exists(labels, seed):
    labels = torch.tensor(labels)
    index = sample_partners(len(labels), gen(seed), "other_class", labels=labels)
    has_other = (labels[:, None] != labels[None, :]).any(1)
    assert bool((labels[index] != labels)[has_other].all())
    assert not bool((index == torch.arange(len(labels))).any())


def test_other_class_with_one_hot_targets():
    labels = torch.nn.functional.one_hot(torch.tensor([0, 0, 1, 2, 2, 2]), 3).float()
    for seed in range(20):
        index = sample_partners(6, gen(seed), "other_class", labels=labels)
        assert bool((labels[index] != labels).any(1).all())


def test_other_class_is_uniform_over_the_other_classes_samples():
    labels = torch.tensor([0, 1, 1, 1])
    g = gen(11)
    picks = torch.stack([sample_partners(4, g, "other_class", labels=labels)[0] for _ in range(600)])
    counts = torch.bincount(picks, minlength=4)
    assert counts[0] == 0
    assert stats.chisquare(counts[1:].numpy()).pvalue > 1e-3


def test_other_class_needs_labels():
    with pytest.raises(MixMaskError, match="labels"):
        sample_partners(4, gen(), "other_class")
    with pytest.raises(MixMaskError, match=r"4 samples.*\(3,\)"):
        sample_partners(4, gen(), "other_class", labels=torch.arange(3))


def test_unknown_pairing():
    with pytest.raises(MixMaskError, match="pairing.*'shuffle'"):
        sample_partners(4, gen(), "shuffle")
