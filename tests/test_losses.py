"""mixed_cross_entropy: equals F.cross_entropy where torch covers the case, handles ignored pixels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mixmask import CutMix, MixMaskError, MixUp, mixed_cross_entropy


def logits_and_ids(shape, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    b = shape[0]
    return torch.randn(b, k, *shape[1:], generator=g), torch.randint(0, k, shape, generator=g)


@pytest.mark.parametrize("shape", [(6,), (3, 7), (2, 5, 6), (2, 3, 4, 5)])
def test_one_hot_targets_equal_cross_entropy(shape):
    logits, ids = logits_and_ids(shape)
    onehot = F.one_hot(ids, 5).movedim(-1, 1).float()
    expected = F.cross_entropy(logits, ids)
    torch.testing.assert_close(mixed_cross_entropy(logits, onehot), expected)
    torch.testing.assert_close(mixed_cross_entropy(logits, ids), expected)


def test_soft_class_targets_equal_cross_entropy_with_probabilities():
    logits, _ = logits_and_ids((8,))
    targets = torch.softmax(torch.randn(8, 5, generator=torch.Generator().manual_seed(1)), 1)
    torch.testing.assert_close(mixed_cross_entropy(logits, targets), F.cross_entropy(logits, targets))


def test_ignored_pixels_weigh_nothing():
    logits, ids = logits_and_ids((2, 6, 6))
    ids[:, :2] = 255
    expected = F.cross_entropy(logits, ids, ignore_index=255)
    torch.testing.assert_close(mixed_cross_entropy(logits, ids, ignore_index=255), expected)
    valid = ids != 255
    soft = F.one_hot(torch.where(valid, ids, 0), 5).movedim(-1, 1).float() * valid[:, None]
    torch.testing.assert_close(mixed_cross_entropy(logits, soft), expected)


def test_mixed_dense_targets_with_ignored_pixels():
    logits, ids = logits_and_ids((4, 8, 8), seed=2)
    ids[0, :3] = -1
    out = MixUp(num_classes=5, ignore_index=-1, seed=0)(torch.rand(4, 1, 8, 8), masks=ids)
    loss = mixed_cross_entropy(logits, out.masks)
    # reference: per pixel, the weighted hard losses of the two sources, over the labelled weight
    params = out.params
    lam = params.lam.view(-1, 1, 1)
    partner = ids[params.index]
    own = F.cross_entropy(logits, ids.clamp_min(0), reduction="none") * (ids >= 0)
    other = F.cross_entropy(logits, partner.clamp_min(0), reduction="none") * (partner >= 0)
    weight = lam * (ids >= 0) + (1 - lam) * (partner >= 0)
    expected = (lam * own + (1 - lam) * other).sum() / weight.sum()
    torch.testing.assert_close(loss, expected)


def test_binary_mask_dense_targets_stay_ids():
    logits, ids = logits_and_ids((4, 8, 8), seed=3)
    out = CutMix(num_classes=5, seed=0)(torch.rand(4, 1, 8, 8), masks=ids)
    assert out.masks.dtype == torch.long
    torch.testing.assert_close(mixed_cross_entropy(logits, out.masks), F.cross_entropy(logits, out.masks))


def test_shape_mismatch():
    logits, ids = logits_and_ids((2, 4))
    with pytest.raises(MixMaskError, match=r"logits' shape \(2, 5, 4\).*\(2, 3, 4\)"):
        mixed_cross_entropy(logits, torch.rand(2, 3, 4))
