"""The policy: per-batch draws, member options, reformulation, boxes, layouts, exactness, faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage, stats

from mixmask import CutMix, FMix, GridMask, MixMaskError, MixParams, MixUp, RandomChoice
from mixmask.functional import METHODS
from mixmask.functional.masks import _top_counts

ALL = {
    "mixup": lambda **k: MixUp(**k), "cutmix": lambda **k: CutMix(**k), "fmix": lambda **k: FMix(**k),
    "gridmask": lambda **k: GridMask(**k), "policy": lambda **k: RandomChoice([MixUp(), CutMix(), FMix()], **k),
}


def batch(b=8, shape=(12, 12), k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, 3, *shape, generator=g), torch.arange(b) % k,
            torch.randint(0, k, (b, *shape), generator=g))


# -- one draw per batch ----------------------------------------------------------------------------

@pytest.mark.parametrize("method", sorted(ALL))
def test_per_batch_mode_draws_one_mask_and_lam_for_the_whole_batch(method):
    x, y, seg = batch(b=16)
    transform = ALL[method](per_sample=False, num_classes=4, seed=1)
    for _ in range(5):
        out = transform(x, y, masks=seg)
        assert bool((out.lam == out.lam[0]).all())
        assert bool((out.mask == out.mask[0]).all())
        assert bool((out.params.method == out.params.method[0]).all())
        torch.testing.assert_close(out.targets.sum(1), torch.ones(16))


def test_per_batch_apply_probability_is_one_coin_per_batch():
    transform = CutMix(p=0.5, per_sample=False, seed=2)
    x = torch.rand(16, 1, 8, 8)
    mixed = [bool(transform.sample(x).method[0] != 0) for _ in range(400)]
    for _ in range(20):
        method = transform.sample(x).method
        assert bool((method == method[0]).all())
    assert abs(sum(mixed) / 400 - 0.5) < 0.08


# -- RandomChoice members and options ------------------------------------------------------------

def test_members_keep_their_own_options_and_apply_probability():
    policy = RandomChoice([CutMix(p=0.0), FMix(max_soft=0.1, decay_power=4.0)], seed=3, num_classes=4)
    x, y, _ = batch(b=64)
    out = policy(x, y)
    names = {METHODS[i] for i in out.params.method.tolist()}
    assert "cutmix" not in names and "fmix" in names and "none" in names  # CutMix's p=0 is kept
    assert policy.samplers[1].max_soft == 0.1 and policy.samplers[1].decay_power == 4.0
    assert out.mask.dtype == torch.float32  # the soft FMix member makes the policy's masks soft


def test_members_options_reach_the_policy():
    policy = RandomChoice([MixUp(num_classes=5, label_smoothing=0.1), CutMix()], seed=0)
    assert policy.num_classes == 5 and policy.label_smoothing == 0.1
    x = torch.rand(6, 3, 8, 8)
    targets = policy(x, torch.arange(6) % 5).targets
    assert targets.shape == (6, 5) and float(targets.min()) >= 0.1 / 5 - 1e-6


@pytest.mark.parametrize("members, kwargs, name", [
    ([MixUp(num_classes=5), CutMix(num_classes=6)], {}, "num_classes"),
    ([MixUp(label_smoothing=0.1), CutMix()], {"label_smoothing": 0.2}, "label_smoothing"),
    ([MixUp(ignore_index=255), CutMix(ignore_index=-1)], {}, "ignore_index"),
    ([MixUp(channels_last=True), CutMix()], {"channels_last": False}, "channels_last"),
    ([MixUp(pairing="flip"), CutMix(pairing="other_class")], {}, "pairing"),
    ([MixUp(validate=True), CutMix()], {"validate": False}, "validate"),
    ([MixUp(multi_label=True), CutMix()], {"multi_label": False}, None),  # False is the default: no conflict
])
def test_conflicting_member_options_are_refused(members, kwargs, name):
    if name is None:
        assert RandomChoice(members, **kwargs).multi_label
        return
    with pytest.raises(MixMaskError, match=f"set {name} to different values"):
        RandomChoice(members, **kwargs)


def test_an_option_set_once_is_adopted_by_the_policy():
    policy = RandomChoice([MixUp(per_sample=False), CutMix(pairing="flip")])
    assert not policy.per_sample and policy.pairing == "flip"


def test_member_seeds_and_old_keywords_are_refused():
    with pytest.raises(MixMaskError, match="pass seed= to the RandomChoice"):
        RandomChoice([MixUp(seed=1), CutMix()])
    with pytest.raises(MixMaskError, match="weights="):
        RandomChoice([MixUp(), CutMix()], p=[0.5, 0.5])
    with pytest.raises(MixMaskError, match="one fill value"):
        RandomChoice([GridMask(fill=0.0), GridMask(fill=1.0)])


def test_nested_choices_multiply_weights_and_policy_p_overrides_members():
    inner = RandomChoice([MixUp(), CutMix()], weights=[1, 3])
    outer = RandomChoice([inner, FMix()], weights=[1, 1], p=0.5, seed=0)
    assert outer.weights == [0.5, 0.5]
    assert torch.allclose(outer._weights, torch.tensor([0.125, 0.375, 0.5], dtype=torch.float64))
    x = torch.rand(200, 1, 4, 4)
    method = torch.cat([outer.sample(x).method for _ in range(20)])
    counts = [int((method == METHODS.index(m)).sum()) for m in ("none", "mixup", "cutmix", "fmix")]
    expected = np.array([0.5, 0.0625, 0.1875, 0.25]) * len(method)
    assert stats.chisquare(counts, expected).pvalue > 1e-3


# -- reformulation -------------------------------------------------------------------------------

@pytest.mark.parametrize("method", [MixUp, CutMix, FMix])
def test_reformulate_trains_on_the_own_label_with_beta_alpha_plus_one(method):
    transform = method(alpha=1.0, reformulate=True, num_classes=4, seed=5)
    x, y, _ = batch(b=64)
    out = transform(x, y)
    assert torch.equal(out.targets, F.one_hot(y, 4).float())  # mean own-label weight 1 (not ~0.74)
    lams = torch.cat([transform(x, y).lam for _ in range(30)]).double()
    # Beta(2, 1) has cdf lam^2; CutMix clips boxes and FMix rounds, which moves lam a little
    if method is not CutMix:  # CutMix clips its boxes, which raises lam
        assert stats.kstest(lams.numpy(), lambda v: np.clip(v, 0, 1) ** 2).pvalue > 1e-3
        assert abs(float(lams.mean()) - 2 / 3) < 0.03


# -- CutMix boxes --------------------------------------------------------------------------------

def test_several_boxes_per_sample_label_the_area_actually_kept():
    transform = CutMix(lam=0.4, num_boxes=3, seed=6, num_classes=4)
    x, y, _ = batch(b=32, shape=(40, 40))
    out = transform(x, y)
    side = round(40 * (0.6 / 3) ** 0.5)
    for i in range(32):
        holes = ~out.mask[i]
        _, pieces = ndimage.label(holes.numpy())
        assert 1 <= pieces <= 3
        assert int(holes.sum()) <= 3 * side * side
    torch.testing.assert_close(out.lam, out.mask.float().mean((1, 2)))
    expected = out.lam[:, None] * F.one_hot(y, 4) + (1 - out.lam[:, None]) * F.one_hot(y[out.index], 4)
    torch.testing.assert_close(out.targets, expected.float())
    assert float((1 - out.lam).mean()) < 0.6  # overlaps and clipping keep more than the drawn share


def test_size_range_boxes_lie_inside_with_sides_in_range():
    transform = CutMix(size_range=(0.2, 0.5), seed=7)
    x = torch.rand(64, 1, 30, 50)
    out = transform(x)
    for i in range(64):
        rows, cols = (~out.mask[i]).nonzero().unbind(1)
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert 6 <= height < 15 and 10 <= width < 25
        assert height * width == int((~out.mask[i]).sum())  # a whole box: never clipped


# -- layouts and types ---------------------------------------------------------------------------

def test_a_channels_last_looking_batch_needs_the_layout_said():
    x = torch.rand(4, 32, 32, 3)
    with pytest.raises(MixMaskError, match=r"look channels-last.*channels_last=True"):
        CutMix()(x)
    assert CutMix(channels_last=True)(x).inputs.shape == (4, 32, 32, 3)
    assert CutMix(channels_last=False)(x).mask.shape == (4, 32, 3)  # told: (B, C=32, 32, 3)


def test_torchvision_videos_get_one_mask_per_clip_and_stay_videos():
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    clips = tv_tensors.Video(torch.rand(4, 5, 3, 16, 16))  # (B, T, C, H, W)
    out = CutMix(num_classes=4, seed=8)(clips, torch.arange(4))
    assert type(out.inputs) is tv_tensors.Video and out.inputs.shape == clips.shape
    assert out.mask.shape == (4, 16, 16)
    plain = clips.as_subclass(torch.Tensor)
    for i in range(4):
        m = out.mask[i]
        j = int(out.index[i])
        assert torch.equal(out.inputs[i][..., m], plain[i][..., m])
        assert torch.equal(out.inputs[i][..., ~m], plain[j][..., ~m])


def test_torchvision_masks_and_boxes_are_refused_as_images():
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    with pytest.raises(MixMaskError, match="tv_tensors.Mask: pass segmentation maps as masks="):
        CutMix()(tv_tensors.Mask(torch.zeros(4, 1, 16, 16)))
    image = tv_tensors.Image(torch.rand(4, 3, 16, 16))
    seg = tv_tensors.Mask(torch.randint(0, 3, (4, 16, 16)))
    x, maps = CutMix(num_classes=3, seed=0)(image, masks=seg)
    assert type(x) is tv_tensors.Image and type(maps) is tv_tensors.Mask


# -- exactness -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("method", [MixUp, lambda **k: FMix(max_soft=0.2, **k)])
def test_low_precision_label_weights_are_the_weights_the_pixels_got(dtype, method):
    ones = torch.ones(32, 1, 8, 8, dtype=dtype)
    x = torch.cat([ones, torch.zeros_like(ones)])  # sample i is 1, its flip partner 0
    out = method(pairing="flip", num_classes=2, seed=9)(x, torch.arange(64) // 32)
    got = out.inputs[:32].float().mean((1, 2, 3))  # exactly the mean weight of the own pixels
    torch.testing.assert_close(out.lam[:32], got, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.targets[:32, 0], out.lam[:32], rtol=0, atol=0)


def test_fmix_masks_hold_exactly_round_lam_n_pixels_on_ties():
    values = torch.zeros(3, 10)
    values[:, :4] = 1.0  # four tied maxima, then six tied zeros
    counts = torch.tensor([2, 4, 7])
    mask = _top_counts(values, counts)
    assert mask.sum(1).tolist() == [2, 4, 7]
    assert mask[0].tolist()[:4] == [True, True, False, False]  # ties are taken in flat order
    x = torch.zeros(16, 1, 8, 8)  # a constant batch: FMix fields are never tied this way, but masks
    out = FMix(seed=10)(x)        # always hold round(lam * N) pixels
    torch.testing.assert_close(out.lam * 64, (out.lam * 64).round(), rtol=0, atol=1e-4)


def test_ignore_index_outside_the_maps_dtype_or_on_a_class_is_refused():
    x = torch.rand(4, 3, 8, 8)
    seg = torch.zeros(4, 8, 8, dtype=torch.uint8)
    with pytest.raises(MixMaskError, match="ignore_index=-1 cannot be held by torch.uint8"):
        CutMix(num_classes=3, ignore_index=-1)(x, masks=seg)
    with pytest.raises(MixMaskError, match="ignore_index=2 is a real class id with num_classes=3"):
        CutMix(num_classes=3, ignore_index=2)
    with pytest.raises(MixMaskError, match="ignore_index=1 is a real class id"):
        CutMix(ignore_index=1)(x, masks=seg.long(), num_classes=3)


def test_params_compare_by_value_and_are_not_hashable():
    x, y, _ = batch()
    first = FMix(seed=11).sample(x)
    assert first == FMix(seed=11).sample(x)
    assert first != FMix(seed=12).sample(x)
    assert first != "params"
    with pytest.raises(TypeError, match="unhashable"):
        hash(first)


def test_results_unpack_like_the_peers():
    x, y, seg = batch()
    mix = CutMix(num_classes=4, seed=0)
    images, targets = mix(x, y)
    assert images.shape == x.shape and targets.shape == (8, 4)
    images, targets, maps = mix(x, y, seg)
    assert maps.shape == seg.shape
    images, maps = mix(x, masks=seg)
    (images,) = mix(x)
    out = mix(x, y, seg)
    assert len(out) == 3 and out[0] is out.inputs and out[2] is out.masks


# -- invariants of any policy --------------------------------------------------------------------

members = st.lists(st.sampled_from(["mixup", "cutmix", "fmix", "fmix_soft", "gridmask", "cutmix2"]), min_size=1,
                   max_size=4)
BUILD = {"mixup": lambda p: MixUp(alpha=0.5, p=p), "cutmix": lambda p: CutMix(p=p),
         "fmix": lambda p: FMix(p=p), "fmix_soft": lambda p: FMix(max_soft=0.2, p=p),
         "gridmask": lambda p: GridMask(cell_size=(0.2, 0.6), p=p), "cutmix2": lambda p: CutMix(num_boxes=2, p=p)}


@given(names=members, weights=st.lists(st.floats(0.1, 3.0), min_size=4, max_size=4),
       p=st.floats(0.0, 1.0), per_sample=st.booleans(), b=st.integers(1, 7),
       shape=st.sampled_from([(9,), (6, 7), (4, 5, 3)]), seed=st.integers(0, 2**31))
def test_any_policy_keeps_the_invariants(names, weights, p, per_sample, b, shape, seed):
    policy = RandomChoice([BUILD[n](p) for n in names], weights=weights[:len(names)], per_sample=per_sample,
                          num_classes=4, seed=seed, channels_last=False)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(b, 2, *shape, generator=g), torch.randint(0, 4, (b,), generator=g)
    seg = torch.randint(0, 4, (b, *shape), generator=g)
    out = policy(x, y, masks=seg)
    mean = out.mask.double().mean(tuple(range(1, out.mask.ndim)))
    torch.testing.assert_close(out.lam.double(), mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.targets.sum(1), torch.ones(b), rtol=0, atol=1e-6)
    mixed = out.params.method != 0
    partners = mixed & ~out.params._erase_cpu
    if b >= 2:
        assert not bool((out.index == torch.arange(b))[partners].any())  # no self-pairs
    if out.mask.dtype == torch.bool:  # ids follow pixels
        for i in range(b):
            other = seg[i] if out.params._erase_cpu[i] else seg[int(out.index[i])]
            assert torch.equal(out.masks[i], torch.where(out.mask[i], seg[i], other))
    else:
        torch.testing.assert_close(out.masks.sum(1), torch.ones(b, *shape), rtol=0, atol=1e-6)
    replay = policy(x, y, masks=seg, params=out.params)
    assert out.inputs.numpy().tobytes() == replay.inputs.numpy().tobytes()
    assert out.targets.numpy().tobytes() == replay.targets.numpy().tobytes()
    assert out.masks.numpy().tobytes() == replay.masks.numpy().tobytes()
