"""Kernels against naive per-sample references, for every method, dtype, layout and target kind."""

from __future__ import annotations

import pickle

import pytest
import torch
from conftest import (assert_untouched, naive_class_targets, naive_dense_targets, naive_mix_inputs, snapshot)
from hypothesis import given
from hypothesis import strategies as st

from mixmask import CutMix, FMix, GridMask, MixMaskError, MixParams, MixUp, RandomChoice, SaliencyMix
from mixmask.functional import mix_class_targets, mix_dense_targets, mix_inputs


def make(method, seed=0, **kwargs):
    if method == "mixup":
        return MixUp(seed=seed, **kwargs)
    if method == "cutmix":
        return CutMix(seed=seed, **kwargs)
    if method == "fmix":
        return FMix(seed=seed, **kwargs)
    if method == "fmix_soft":
        return FMix(seed=seed, max_soft=0.2, **kwargs)
    if method == "gridmask":
        return GridMask(seed=seed, fill=3.0, **kwargs)
    if method == "policy":
        return RandomChoice([MixUp(), CutMix(), FMix(), GridMask(fill=3.0)], seed=seed, p=0.8, **kwargs)
    return RandomChoice([CutMix(), FMix(), GridMask(fill=3.0)], seed=seed, p=0.8, **kwargs)


ALL = ["mixup", "cutmix", "fmix", "fmix_soft", "gridmask", "policy", "binary_policy"]


def batch(b, c, shape, dtype=torch.float32, seed=0, channels_last=False):
    g = torch.Generator().manual_seed(seed)
    size = (b, *shape, c) if channels_last else (b, c, *shape)
    if dtype == torch.uint8:
        return torch.randint(0, 256, size, generator=g, dtype=torch.uint8)
    return torch.randn(size, generator=g, dtype=torch.float64).to(dtype)


@pytest.mark.parametrize("method", ALL)
@given(b=st.integers(1, 6), shape=st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple),
       seed=st.integers(0, 2**31), channels_last=st.booleans())
def test_mix_inputs_equals_naive_loop(method, b, shape, seed, channels_last):
    x = batch(b, 2, shape, torch.float64, seed, channels_last)
    params = make(method, seed, channels_last=channels_last).sample(x)
    shots = snapshot(x)
    out = mix_inputs(x, params, channels_last=channels_last)
    assert_untouched([x], shots)
    torch.testing.assert_close(out, naive_mix_inputs(x, params, channels_last), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8])
def test_mix_inputs_keeps_dtype(method, dtype):
    x = batch(5, 3, (7, 6), dtype, seed=1)
    params = make(method, 1).sample(x)
    out = mix_inputs(x, params)
    assert out.dtype == dtype and out.shape == x.shape and out.device == x.device
    expected = naive_mix_inputs(x, params)
    if params.binary:
        assert torch.equal(out, expected)  # binary masks copy pixels bit for bit, uint8 included
    elif dtype == torch.uint8:
        assert int((out.int() - expected.int()).abs().max()) <= 1
    else:
        tol = {torch.float16: 2e-3, torch.bfloat16: 2e-2}.get(dtype, 1e-5)
        torch.testing.assert_close(out.double(), expected.double(), rtol=tol, atol=tol)


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_inplace_and_workspace_equal_out_of_place(method, dtype):
    x = batch(6, 3, (9, 8), dtype, seed=2)
    params = make(method, 2).sample(x)
    expected = mix_inputs(x, params)
    y = x.clone()
    workspace = torch.empty_like(x)
    out = mix_inputs(y, params, inplace=True, workspace=workspace)
    assert out.data_ptr() == y.data_ptr() and out.data_ptr() != workspace.data_ptr()
    assert torch.equal(out, expected)
    again = mix_inputs(y.copy_(x), params, inplace=True, workspace=workspace)  # the workspace is only scratch
    assert torch.equal(out, expected) and torch.equal(again, expected)
    with pytest.raises(MixMaskError, match="workspace is scratch memory for inplace=True"):
        mix_inputs(x, params, workspace=workspace)


def test_mix_inputs_soft_uint8_rounds():
    x = torch.tensor([[[0, 3]], [[255, 0]]], dtype=torch.uint8)  # (B=2, C=1, S=(2,))
    params = MixUp(lam=0.5, pairing="flip", seed=0).sample(x)
    out = mix_inputs(x, params)
    assert out.tolist() == [[[128, 2]], [[128, 2]]]  # 127.5 and 1.5 rounded (half to even), not truncated


def test_binary_float_masks_copy_pixels_exactly():
    x = batch(8, 3, (16, 16), torch.float32, seed=3) * 1e30
    params = CutMix(seed=3).sample(x)
    out = mix_inputs(x, params)
    m = params.mask[:, None].expand_as(x)
    assert torch.equal(out[m], x[m])
    assert torch.equal(out[~m], x[params.index][~m])


def test_all_gridmask_fills():
    x = batch(4, 2, (10, 10), torch.float32, seed=4)
    params = GridMask(fill=-1.5, seed=4).sample(x)
    out = mix_inputs(x, params)
    dropped = ~params.mask[:, None].expand_as(x)
    assert bool((out[dropped] == -1.5).all()) and torch.equal(out[~dropped], x[~dropped])
    assert bool((params.lam < 1).all())


def test_non_finite_inputs_rejected_when_validating():
    x = batch(4, 2, (5,), torch.float32)
    x[1, 0, 2] = float("nan")
    params = CutMix(seed=0).sample(x)
    with pytest.raises(MixMaskError, match=r"finite.*1 NaN.*\(4, 2, 5\)"):
        mix_inputs(x, params, validate=True)
    mix_inputs(x, params)  # not checked by default


# -- class targets --------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("kind", ["sparse", "onehot", "soft", "multi"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_class_targets_equal_naive_loop(method, kind, eps):
    k, b = 5, 7
    x = batch(b, 1, (8, 8))
    g = torch.Generator().manual_seed(5)
    sparse = torch.randint(0, k, (b,), generator=g)
    labels = {"sparse": sparse, "onehot": torch.nn.functional.one_hot(sparse, k),
              "soft": torch.softmax(torch.randn(b, k, generator=g), 1),
              "multi": (torch.rand(b, k, generator=g) < 0.4).float()}[kind]
    params = make(method, 5).sample(x)
    shots = snapshot(labels)
    out = mix_class_targets(labels, params, num_classes=k, label_smoothing=eps, multi_label=kind == "multi")
    assert_untouched([labels], shots)
    expected = naive_class_targets(labels, params, k, eps, multi_label=kind == "multi")
    torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-6)
    assert out.shape == (b, k) and out.dtype == torch.float32
    if kind != "multi":
        torch.testing.assert_close(out.sum(1), torch.ones(b), rtol=0, atol=1e-6)
    else:
        assert bool(((out >= 0) & (out <= 1)).all())


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8])
def test_sparse_targets_rows_written_on_cpu_equal_the_scatters_bit_for_bit(dtype):
    """The CPU writes the B rows through numpy; the scatters (accelerators, or a weight that needs grad) give
    the same bytes, self-pairs (one id twice: weight 1) included."""
    x = batch(9, 1, (6, 6))
    labels = torch.tensor([0, 0, 0, 0, 0, 3, 3, 3, 3], dtype=dtype)  # many pairs share an id
    for method in ALL:
        params = make(method, 11).sample(x)
        numpy_rows = mix_class_targets(labels, params, num_classes=5)
        graded = MixParams(params.index, params.lam, params.mask, params.method, params.fill,
                           params.label_lam.clone().requires_grad_())
        scattered = mix_class_targets(labels, graded, num_classes=5)
        assert torch.equal(numpy_rows, scattered.detach())
        assert bool((numpy_rows[labels == labels[params.index]].max(1).values == 1).all())


@pytest.mark.parametrize("bad", [-1, 5])
def test_unchecked_sparse_ids_out_of_range_raise_instead_of_wrapping(bad):
    """With validate=False nothing checks the ids; a negative one must not land in column K - 1."""
    labels = torch.tensor([0, 1, bad, 2])
    with pytest.raises(RuntimeError, match="out of bounds"):
        MixUp(num_classes=5, seed=0, validate=False)(batch(4, 1, (6, 6)), labels)


def test_class_targets_keep_gridmask_labels():
    x = batch(4, 1, (8, 8))
    out = mix_class_targets(torch.arange(4), GridMask(seed=0).sample(x), num_classes=4)
    assert torch.equal(out, torch.eye(4))


# -- dense targets --------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("ignore", [None, 255])
@given(b=st.integers(1, 5), shape=st.lists(st.integers(1, 8), min_size=1, max_size=3).map(tuple),
       seed=st.integers(0, 2**31), channel=st.booleans())
def test_dense_targets_equal_naive_loop(method, ignore, b, shape, seed, channel):
    k = 4
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, k, (b, *shape), generator=g)
    if ignore is not None:
        ids[torch.rand(ids.shape, generator=g) < 0.2] = ignore
    x = batch(b, 1, shape, seed=seed)
    params = make(method, seed).sample(x)
    given_ids = ids.unsqueeze(1) if channel else ids
    shots = snapshot(given_ids)
    out = mix_dense_targets(given_ids, params, num_classes=k, ignore_index=ignore)
    assert_untouched([given_ids], shots)
    expected = naive_dense_targets(ids, params, k, ignore)
    if params.binary:
        assert out.dtype == ids.dtype
        out = out[:, 0] if channel else out
        assert torch.equal(out, expected)
        assert set(out.unique().tolist()) <= set(ids.unique().tolist()) | ({ignore} - {None})
    else:
        assert out.shape == (b, k, *shape) and out.dtype == torch.float32
        torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
        total = out.sum(1)
        assert bool((total <= 1 + 1e-6).all())
        if ignore is None:
            torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-6)


def test_dense_gridmask_keeps_ids_without_ignore_index():
    ids = torch.arange(4).view(4, 1, 1).expand(4, 8, 8).contiguous()
    params = GridMask(seed=0).sample(batch(4, 1, (8, 8)))
    assert torch.equal(mix_dense_targets(ids, params), ids)
    with_ignore = mix_dense_targets(ids, params, ignore_index=-1)
    assert torch.equal(with_ignore, torch.where(params.mask, ids, -1))


def test_dense_soft_needs_num_classes():
    params = MixUp(seed=0).sample(batch(2, 1, (4,)))
    with pytest.raises(MixMaskError, match="num_classes"):
        mix_dense_targets(torch.zeros(2, 4, dtype=torch.long), params)


# -- parameters -----------------------------------------------------------------------------------
def test_params_validated_at_construction():
    index, lam, mask, method = torch.tensor([1, 0]), torch.ones(2), torch.ones(2, 4, dtype=torch.bool), \
        torch.tensor([2, 2])
    MixParams(index, lam, mask, method)
    with pytest.raises(MixMaskError, match=r"index.*\(2,\).*\(3,\)"):
        MixParams(torch.tensor([1, 0, 2]), lam, mask, method)
    with pytest.raises(MixMaskError, match=r"partners in \[0, 2\).*\[1, 5\]"):
        MixParams(torch.tensor([1, 5]), lam, mask, method)
    with pytest.raises(MixMaskError, match=r"mask.*int64"):
        MixParams(index, lam, mask.long(), method)
    with pytest.raises(MixMaskError, match=r"method.*\[0, 11\).*\[2, 19\]"):
        MixParams(index, lam, mask, torch.tensor([2, 19]))
    with pytest.raises(MixMaskError, match="fill.*nan"):
        MixParams(index, lam, mask, method, float("nan"))


def test_params_for_another_shape_are_rejected():
    params = CutMix(seed=0).sample(batch(4, 3, (8, 8)))
    with pytest.raises(MixMaskError, match=r"batch of 4 with spatial shape \(8, 8\).*\(8, 9\)"):
        mix_inputs(batch(4, 3, (8, 9)), params)
    with pytest.raises(MixMaskError, match=r"\(4, 8, 8\) or \(4, 1, 8, 8\).*\(4, 2, 8, 8\)"):
        mix_dense_targets(torch.zeros(4, 2, 8, 8, dtype=torch.long), params)


@pytest.mark.parametrize("shape, dtype", [((3, 5), torch.float32), ((64, 3, 128, 128), torch.float32),
                                          ((64, 3, 128, 128), torch.uint8), ((5, 2, 2000, 1000), torch.int64)])
def test_fresh_buffers_are_plain_tensors(shape, dtype):
    from mixmask.functional._memory import empty

    out = empty(shape, dtype)
    assert out.shape == shape and out.dtype == dtype and out.is_contiguous() and out.device.type == "cpu"
    out.fill_(3)
    assert bool((out == 3).all())


@pytest.mark.parametrize("build", [lambda: CutMix(seed=0), lambda: CutMix(num_boxes=3, seed=1),
                                   lambda: CutMix(per_sample=False, seed=2), lambda: CutMix(p=0.5, seed=3),
                                   lambda: RandomChoice([CutMix(), CutMix(num_boxes=2)], seed=4)])
@pytest.mark.parametrize("shape", [(8192,), (128, 160), (16, 32, 40)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_pasting_boxes_gives_the_bytes_of_the_blend(build, shape, dtype, monkeypatch):
    import mixmask.functional.kernels as kernels

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(6, 3, *shape, generator=g) * 255).to(dtype)
    seg = torch.randint(0, 5, (6, *shape), generator=g)
    transform = build()
    pasted = transform(x, masks=seg)
    assert pasted.params.boxes is not None and x[0].numel() >= kernels.BOX_PASTE_MIN
    inplace = x.clone()
    transform.apply(pasted.params, inplace, masks=seg, inplace=True)
    monkeypatch.setattr(kernels, "BOX_PASTE_MIN", 1 << 40)  # the full blend
    blended = transform(x, masks=seg, params=pasted.params)
    assert torch.equal(pasted.inputs, blended.inputs) and torch.equal(inplace, blended.inputs)
    assert torch.equal(pasted.masks, blended.masks)
    torch.testing.assert_close(blended.inputs.double(), naive_mix_inputs(x, pasted.params).double(), rtol=0, atol=0)


def naive_box_mask(low, high, shape):
    """Reference: one sample and one box at a time, 0 written inside each box's slices."""
    mask = torch.ones((low.shape[0], *shape), dtype=torch.bool)
    for i in range(low.shape[0]):
        for b in range(low.shape[1]):
            mask[(i, *(slice(lo, hi) for lo, hi in zip(low[i, b].tolist(), high[i, b].tolist())))] = False
    return mask


@given(st.integers(1, 3).flatmap(lambda dims: st.tuples(
    st.lists(st.integers(1, 9), min_size=dims, max_size=dims), st.integers(1, 5), st.integers(1, 3),
    st.integers(0, 2**31 - 1))))
def test_box_masks_and_weights_match_a_per_sample_loop(case):
    from mixmask.functional.masks import box_masks, box_weights

    shape, batch_size, num_boxes, seed = case
    g = torch.Generator().manual_seed(seed)
    size = torch.tensor(shape)
    low = torch.randint(-3, 12, (batch_size, num_boxes, len(shape)), generator=g).minimum(size)  # some empty
    high = (low + torch.randint(0, 8, low.shape, generator=g)).clamp(0, None).minimum(size)
    low = low.clamp(0, None)
    expected = naive_box_mask(low, high, tuple(shape))
    mask, lam = box_masks(low, high, tuple(shape), "cpu")
    assert mask.dtype == torch.bool and torch.equal(mask, expected)
    torch.testing.assert_close(lam, expected.float().flatten(1).mean(1), rtol=0, atol=1e-6)
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        weights = box_weights(low, high, tuple(shape), dtype, "cpu")
        assert weights.dtype == dtype and torch.equal(weights, expected.to(dtype))


def test_box_masks_read_corners_on_the_device_without_numpy():
    # corners on another device than the CPU (SaliencyMix's on an accelerator) are never read into numpy;
    # the meta device stands in for one here (no values, the same code path)
    from mixmask.functional.masks import box_masks, box_weights

    low = torch.tensor([[[1, 2]], [[0, 0]]], device="meta")
    mask, lam = box_masks(low, low + 3, (8, 6), "meta")
    assert mask.shape == (2, 8, 6) and mask.dtype == torch.bool and lam.shape == (2,) and lam.device.type == "meta"
    assert box_weights(low, low + 3, (8, 6), torch.float16, "meta").dtype == torch.float16


@pytest.mark.parametrize("build", [lambda: CutMix(seed=0), lambda: CutMix(per_sample=False, seed=1),
                                   lambda: CutMix(p=0.5, size_range=(0.2, 0.7), seed=2),
                                   lambda: CutMix(channels_last=True, seed=3),
                                   lambda: RandomChoice([CutMix(), SaliencyMix()], p=0.8, seed=4)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.uint8])
def test_box_draws_build_their_mask_only_when_read_and_blend_alike(build, dtype):
    # small samples are blended, not pasted: float weights come straight from the boxes, the bool mask is
    # built only when something reads it (uint8 blends read it), and both give the bytes of a blend with
    # the built mask
    transform = build()
    x = batch(12, 3, (20, 24), dtype=dtype, channels_last=transform.channels_last is True)
    labels = torch.arange(12) % 5
    out = transform(x, labels, num_classes=5)
    params = out.params
    assert params.boxes is not None and ("mask" in vars(params)) == (dtype == torch.uint8)
    assert params.batch_size == 12 and params.spatial_shape == (20, 24) and params.binary
    copy = pickle.loads(pickle.dumps(params))
    assert "MixParams(batch_size=12" in repr(params) and params.to("cpu") is params
    if dtype != torch.uint8:  # neither repr, to nor pickling builds it
        assert "mask" not in vars(params) and "mask" not in vars(copy)
    expected = naive_box_mask(params.boxes[:, :, 0], params.boxes[:, :, 1], (20, 24))
    assert torch.equal(params.mask, expected) and "mask" in vars(params)  # built on first read
    assert params == copy and copy.mask.stride() == params.mask.stride()
    torch.testing.assert_close(params.lam, expected.float().flatten(1).mean(1), rtol=0, atol=1e-6)
    eager = MixParams(params.index, params.lam, params.mask, params.method, params.fill, params.label_lam,
                      boxes=params.boxes)
    again = transform(x, labels, num_classes=5, params=eager)
    assert torch.equal(out.inputs, again.inputs) and torch.equal(out.targets, again.targets)
    reference = naive_mix_inputs(x, params, channels_last=transform.channels_last is True)
    assert torch.equal(out.inputs, reference)


def test_pasting_boxes_channels_last_and_user_boxes_are_checked():
    x = torch.rand(4, 64, 80, 3)
    transform = CutMix(channels_last=True, seed=5)
    out = transform(x)
    first = CutMix(channels_last=False, seed=5)(x.movedim(-1, 1).contiguous(), params=out.params)
    assert torch.equal(out.inputs, first.inputs.movedim(1, -1))
    params = out.params
    wrong = params.boxes.clone()
    wrong[:, :, 1] += 1
    with pytest.raises(MixMaskError, match="boxes must describe the mask"):
        MixParams(params.index, params.lam, params.mask, params.method, boxes=wrong)
    again = MixParams(params.index, params.lam, params.mask, params.method, boxes=params.boxes)
    assert again == params
