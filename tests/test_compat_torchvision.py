"""mixmask.compat.torchvision against torchvision 0.29's own v2.MixUp / v2.CutMix."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.utils._pytree as pytree
from scipy import stats

from mixmask import MixMaskError
from tests.conftest import assert_untouched, snapshot

v2 = pytest.importorskip("torchvision.transforms.v2")
tv_tensors = pytest.importorskip("torchvision.tv_tensors")
compat = pytest.importorskip("mixmask.compat.torchvision")

K = 6


def _batch(b=8, dtype=torch.float32):
    images = torch.rand(b, 3, 12, 10) if dtype.is_floating_point else torch.randint(0, 256, (b, 3, 12, 10),
                                                                                     dtype=dtype)
    return images, torch.arange(b) % K


STRUCTURES = {
    "args": lambda x, y: ((x, y), None),
    "tuple": lambda x, y: (((x, y),), None),
    "list": lambda x, y: (([x, y],), None),
    "dict": lambda x, y: (({"image": tv_tensors.Image(x), "labels": y, "meta": torch.zeros(3)},), None),
    "nested": lambda x, y: (((tv_tensors.Image(x), {"labels": y, "boxes_count": torch.ones(2)}),), None),
    "label-key": lambda x, y: (({"img": x, "class_label": y},), None),
    "getter": lambda x, y: (({"x": x, "y": y},), lambda sample: sample["y"]),
}


@pytest.mark.parametrize("name", sorted(STRUCTURES))
@pytest.mark.parametrize("method", ["MixUp", "CutMix"])
def test_structures_come_back_like_torchvisions(name, method):
    x, y = _batch()
    inputs, getter = STRUCTURES[name](x, y)
    options = {} if getter is None else {"labels_getter": getter}
    theirs = getattr(v2, method)(num_classes=K, **options)(*inputs)
    shots = snapshot(*pytree.tree_leaves(inputs))
    ours = getattr(compat, method)(num_classes=K, seed=0, **options)(*inputs)
    assert_untouched(pytree.tree_leaves(inputs), shots)
    ours_flat, ours_spec = pytree.tree_flatten(ours)
    theirs_flat, theirs_spec = pytree.tree_flatten(theirs)
    assert ours_spec == theirs_spec
    for a, b in zip(ours_flat, theirs_flat):
        assert type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype
    in_flat = pytree.tree_leaves(inputs)
    for before, a, b in zip(in_flat, ours_flat, theirs_flat):
        assert (a is before) == (b is before)  # the same leaves pass through untouched
    labels = next(a for a, before in zip(ours_flat, in_flat) if before is y)
    assert labels.shape == (8, K) and torch.allclose(labels.sum(1), torch.ones(8))


@pytest.mark.parametrize("labels, dtype", [(torch.arange(8) % K, torch.float32),
                                           (torch.eye(K, dtype=torch.float64)[torch.arange(8) % K], torch.float64)])
def test_label_formats_like_torchvision(labels, dtype):
    x = torch.rand(8, 3, 6, 6)
    _, theirs = v2.MixUp(num_classes=K)(x, labels)
    _, ours = compat.MixUp(num_classes=K, seed=0)(x, labels)
    assert theirs.dtype == ours.dtype == dtype and theirs.shape == ours.shape == (8, K)


def test_videos_keep_their_type_with_one_mask_per_clip():
    video = tv_tensors.Video(torch.rand(4, 5, 3, 8, 8))
    out = compat.CutMix(num_classes=K, seed=0)(video, torch.arange(4))
    assert type(out[0]) is tv_tensors.Video and out[0].shape == video.shape
    pasted = out[0] != video
    assert torch.equal(pasted, pasted[:, :1, :1].expand_as(pasted))  # every frame and channel alike


def test_masks_are_mixed_with_the_same_draw_where_torchvision_refuses_them():
    x, y = _batch(4)
    maps = tv_tensors.Mask(torch.randint(0, K, (4, 12, 10)))
    with pytest.raises(ValueError, match="masks"):
        v2.CutMix(num_classes=K)(tv_tensors.Image(x), y, maps)
    images, labels, mixed = compat.CutMix(num_classes=K, seed=0)(tv_tensors.Image(x), y, maps)
    assert type(mixed) is tv_tensors.Mask and type(images) is tv_tensors.Image
    own = (images == x).all(1)
    partner = maps[compat.CutMix(num_classes=K, seed=0).transform.sample(x).index]
    assert torch.equal(mixed, torch.where(own, maps, partner))


def test_uint8_batches_stay_uint8_where_torchvisions_mixup_fails():
    x, y = _batch(4, torch.uint8)
    with pytest.raises(RuntimeError):
        v2.MixUp(num_classes=K)(x, y)
    out, _ = compat.MixUp(num_classes=K, seed=0)(x, y)
    assert out.dtype == torch.uint8


@pytest.mark.parametrize("inputs, match", [
    (lambda x, y: (tv_tensors.Image(x), y, tv_tensors.BoundingBoxes(torch.zeros(1, 4), format="XYXY",
                                                                    canvas_size=(12, 10))), "BoundingBoxes"),
    (lambda x, y: ({"image": x, "target": y},), "no 'labels' key"),
    (lambda x, y: ((x,),), "labels second"),
    (lambda x, y: (x, y.tolist()), "labels"),
    (lambda x, y: ({"image": x, "labels": y}, ), None),
    (lambda x, y: (tv_tensors.Image(x), y, tv_tensors.Mask(torch.zeros(8, 12, 10, dtype=torch.long)),
                   tv_tensors.Mask(torch.zeros(8, 12, 10, dtype=torch.long))), "at most one tv_tensors.Mask"),
    (lambda x, y: (tv_tensors.Image(x), y, tv_tensors.Image(x[:4])), "share \\(B, H, W\\)"),
    (lambda x, y: (y, y), "image batch"),
    (lambda x, y: (tv_tensors.Image(x), y, tv_tensors.Image(x.to(torch.int32))), "dtype|uint8"),
])
def test_bad_structures_are_refused_before_anything_is_drawn(inputs, match):
    x, y = _batch()
    mix = compat.CutMix(num_classes=K, seed=1)
    args = inputs(x, y)
    if match is None:  # a good call, for contrast
        mix(*args)
        return
    with pytest.raises(MixMaskError, match=match):
        mix(*args)
    assert compat.CutMix(num_classes=K, seed=1)(x, y)[1].tolist() == mix(x, y)[1].tolist()  # nothing drawn


def test_ids_without_num_classes_are_refused_by_both():
    x, y = _batch()
    with pytest.raises(ValueError, match="num_classes"):
        v2.MixUp()(x, y)
    with pytest.raises(MixMaskError, match="num_classes"):
        compat.MixUp()(x, y)


def test_labels_getter_must_find_labels():
    x, y = _batch()
    with pytest.raises(MixMaskError, match="labels_getter"):
        compat.MixUp(num_classes=K, labels_getter=None)
    with pytest.raises(MixMaskError, match="not in the inputs"):
        compat.MixUp(num_classes=K, labels_getter=lambda s: y.clone())(x, y)
    with pytest.raises(MixMaskError, match="labels_getter to return the labels tensor"):
        compat.MixUp(num_classes=K, labels_getter=lambda s: None)(x, y)


# -- draws ---------------------------------------------------------------------------------------

def _lams_torchvision(transform, x, y, calls):
    torch.manual_seed(0)
    return np.array([float(transform(x, y)[1][0, y[0]]) for _ in range(calls)])


def _own_weights(mix, b, size):
    """Each sample's own-label weight, read from the targets of ``b`` distinct labels."""
    _, targets = mix(torch.zeros(b, 1, size, size), torch.arange(b))
    return targets.diagonal().double().numpy()


def test_one_lam_per_batch_matches_torchvisions_distribution():
    x, y = torch.zeros(2, 1, 4, 4), torch.tensor([0, 1])
    theirs = _lams_torchvision(v2.MixUp(alpha=0.5, num_classes=2), x, y, 400)
    mix = compat.MixUp(alpha=0.5, num_classes=4, per_sample=False, seed=0)
    batches = [_own_weights(mix, 4, 4) for _ in range(400)]
    assert all(np.allclose(w, w[0], atol=1e-6) for w in batches)  # one lam for the batch
    ours = np.array([w[0] for w in batches])
    assert stats.ks_2samp(theirs, ours).pvalue > 1e-3
    assert stats.kstest(ours, stats.beta(0.5, 0.5).cdf).pvalue > 1e-3


def test_per_sample_lams_follow_the_same_beta():
    ours = _own_weights(compat.MixUp(alpha=0.5, num_classes=2000, seed=0), 2000, 2)
    assert stats.kstest(ours, stats.beta(0.5, 0.5).cdf).pvalue > 1e-3


def test_cutmix_areas_match_torchvisions_at_this_size():
    """Clipped-box label weights; box sides differ by rounding (torchvision's are even)."""
    x, y = torch.zeros(2, 1, 64, 64), torch.tensor([0, 1])
    theirs = _lams_torchvision(v2.CutMix(num_classes=2), x, y, 400)
    ours = _own_weights(compat.CutMix(num_classes=1000, seed=0), 1000, 64)
    assert stats.ks_2samp(theirs, ours).pvalue > 1e-3 and abs(theirs.mean() - ours.mean()) < 0.03


def test_work_inside_torchvisions_containers():
    x, y = _batch()
    pipeline = v2.Compose([v2.RandomHorizontalFlip(p=1.0),
                           v2.RandomChoice([compat.MixUp(num_classes=K), compat.CutMix(num_classes=K)])])
    images, labels = pipeline(tv_tensors.Image(x), y)
    assert type(images) is tv_tensors.Image and labels.shape == (8, K)


def test_pickles_and_repr():
    mix = compat.CutMix(alpha=0.5, num_classes=K, num_boxes=2, seed=3)
    again = pickle.loads(pickle.dumps(mix))
    x, y = _batch()
    assert torch.equal(again(x, y)[0], mix(x, y)[0])
    assert repr(mix) == "CutMix(alpha=0.5, num_boxes=2, num_classes=6, seed=3)"


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(compat, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0
