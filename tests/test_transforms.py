"""Transforms: invariants for every method and rank, replay, policies, pickling, layouts."""

from __future__ import annotations

import pickle

import pytest
import torch
from conftest import assert_untouched, naive_mix_inputs, snapshot
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from mixmask import CutMix, FMix, GridMask, MixResult, MixUp, RandomChoice
from mixmask.functional import METHODS


def make(method, **kwargs):
    kwargs.setdefault("channels_last", False)  # tiny random shapes may look channels-last
    return {"mixup": lambda: MixUp(alpha=0.8, **kwargs), "cutmix": lambda: CutMix(**kwargs),
            "fmix": lambda: FMix(**kwargs), "fmix_soft": lambda: FMix(max_soft=0.1, **kwargs),
            "gridmask": lambda: GridMask(**kwargs),
            "policy": lambda: RandomChoice([MixUp(), CutMix(), FMix(), GridMask()], **kwargs)}[method]()


ALL = ["mixup", "cutmix", "fmix", "fmix_soft", "gridmask", "policy"]
shapes = st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple)


def data(b, shape, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, 2, *shape, generator=g), torch.randint(0, k, (b,), generator=g),
            torch.randint(0, k, (b, *shape), generator=g))


@pytest.mark.parametrize("method", ALL)
@given(b=st.integers(1, 6), shape=shapes, seed=st.integers(0, 2**31))
def test_invariants(method, b, shape, seed):
    x, y, seg = data(b, shape, seed=seed)
    t = make(method, seed=seed, num_classes=4)
    shots = snapshot(x, y, seg)
    out = t(x, y, masks=seg)
    assert_untouched([x, y, seg], shots)
    assert isinstance(out, MixResult) and not hasattr(t, "last_params")
    assert out.inputs.shape == x.shape and out.inputs.dtype == x.dtype
    assert out.lam.shape == (b,) and out.index.shape == (b,) and out.mask.shape == (b, *shape)
    assert bool(((out.lam >= 0) & (out.lam <= 1)).all())
    torch.testing.assert_close(out.lam.double(), out.mask.double().mean(tuple(range(1, out.mask.ndim))),
                               rtol=0, atol=1e-6)
    torch.testing.assert_close(out.targets.sum(1), torch.ones(b), rtol=0, atol=1e-6)
    if out.mask.dtype == torch.bool:
        assert out.masks.dtype == seg.dtype
        assert set(out.masks.unique().tolist()) <= set(seg.unique().tolist())
    else:
        assert bool(((out.mask >= 0) & (out.mask <= 1)).all())
        torch.testing.assert_close(out.masks.sum(1), torch.ones(b, *shape), rtol=0, atol=1e-6)
    partners = out.params.method != METHODS.index("gridmask")
    if b >= 2:
        assert not bool((out.index == torch.arange(b))[partners].any())
    else:
        assert torch.equal(out.targets, torch.nn.functional.one_hot(y, 4).float())
        if method != "gridmask" and method != "policy":
            assert torch.equal(out.inputs, x)
    torch.testing.assert_close(out.inputs, naive_mix_inputs(x, out.params), rtol=1e-6, atol=1e-6)
    again = make(method, seed=seed, num_classes=4)(x, y, masks=seg)
    assert out.inputs.numpy().tobytes() == again.inputs.numpy().tobytes()
    assert out.targets.numpy().tobytes() == again.targets.numpy().tobytes()
    assert out.masks.numpy().tobytes() == again.masks.numpy().tobytes()


@pytest.mark.parametrize("cls", [MixUp, CutMix, FMix])
@pytest.mark.parametrize("shape", [(9,), (7, 5), (3, 4, 5)])
def test_lam_one_is_the_identity(cls, shape):
    x, y, seg = data(5, shape)
    out = cls(lam=1.0, num_classes=4, seed=0)(x, y, masks=seg)
    assert torch.equal(out.inputs, x)
    assert torch.equal(out.targets, torch.nn.functional.one_hot(y, 4).float())
    if out.mask.dtype == torch.bool:
        assert torch.equal(out.masks, seg)


@pytest.mark.parametrize("method", ALL)
def test_probability_zero_is_the_identity(method):
    x, y, seg = data(6, (8, 8))
    t = make(method, seed=0, num_classes=4, p=0.0)
    out = t(x, y, masks=seg)
    assert torch.equal(out.inputs, x)
    if out.masks.dtype.is_floating_point:  # a policy that may draw soft masks always gives soft maps
        assert torch.equal(out.masks, torch.nn.functional.one_hot(seg, 4).movedim(-1, 1).float())
    else:
        assert torch.equal(out.masks, seg)
    assert bool((out.lam == 1).all()) and bool((out.params.method == 0).all())


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_apply_probability(p):
    t = CutMix(p=p, seed=1)
    x = torch.rand(50, 1, 4, 4)
    applied = torch.cat([t.sample(x).method != 0 for _ in range(40)])
    assert abs(float(applied.double().mean()) - p) < 0.04


def test_replay_with_params():
    x, y, seg = data(6, (10, 12))
    t = FMix(seed=3, num_classes=4)
    first = t(x, y, masks=seg)
    replay = t(x, y, masks=seg, params=first.params)
    assert torch.equal(replay.inputs, first.inputs) and torch.equal(replay.targets, first.targets)
    assert torch.equal(replay.masks, first.masks) and replay.params is first.params
    # the same draw mixes another view of the batch alike
    other = t(x * 2, y, params=first.params)
    torch.testing.assert_close(other.inputs, first.inputs * 2)


def test_other_class_pairing_in_a_transform():
    x = torch.rand(12, 1, 4, 4)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 0, 1])
    out = CutMix(pairing="other_class", seed=0, num_classes=4)(x, y)
    assert bool((y[out.index] != y).all())


def _is_box_complement(mask):
    """True when the False entries of a 2-D mask are exactly an axis-aligned box (or none)."""
    zeros = (~mask).nonzero()
    if len(zeros) == 0:
        return True
    low, high = zeros.min(0).values, zeros.max(0).values + 1
    return bool((~mask[low[0]:high[0], low[1]:high[1]]).all()) and len(zeros) == int((high - low).prod())


def test_random_choice_per_sample_masks_match_their_method():
    policy = RandomChoice([MixUp(), CutMix(), FMix(), GridMask(fill=7.0)], weights=[1, 1, 1, 1], seed=4,
                          num_classes=3)
    x, y = torch.rand(64, 1, 16, 16), torch.randint(0, 3, (64,))
    out = policy(x, y)
    names = [METHODS[i] for i in out.params.method.tolist()]
    assert set(names) == {"mixup", "cutmix", "fmix", "gridmask"}
    assert out.mask.dtype == torch.float32
    for i, name in enumerate(names):
        m = out.mask[i]
        if name == "mixup":
            assert bool((m == out.lam[i]).all())
        else:
            assert bool(((m == 0) | (m == 1)).all())
        if name == "cutmix":
            assert _is_box_complement(m.bool())
        if name == "gridmask":
            assert torch.equal(out.targets[i], torch.nn.functional.one_hot(y[i], 3).float())
            assert bool((out.inputs[i][:, m == 0] == 7.0).all())
    assert not all(_is_box_complement(out.mask[i].bool()) for i, n in enumerate(names) if n == "fmix")


def test_random_choice_frequencies_follow_p():
    p = [0.5, 0.3, 0.2]
    policy = RandomChoice([MixUp(), CutMix(), GridMask()], weights=p, seed=5)
    x = torch.rand(100, 1, 4, 4)
    methods = torch.cat([policy.sample(x).method for _ in range(30)])
    counts = [int((methods == METHODS.index(m)).sum()) for m in ("mixup", "cutmix", "gridmask")]
    assert stats.chisquare(counts, [w * sum(counts) for w in p]).pvalue > 1e-3


def test_random_choice_per_batch_picks_one_method():
    policy = RandomChoice([MixUp(), CutMix()], per_sample=False, seed=6)
    x = torch.rand(8, 1, 4, 4)
    for _ in range(10):
        method = policy.sample(x).method
        assert bool((method == method[0]).all())


@pytest.mark.parametrize("method", ALL)
def test_pickle_round_trip_keeps_the_stream(method):
    t = make(method, seed=7, num_classes=4, p=0.9)
    x, y, _ = data(6, (8, 8))
    t(x, y, num_classes=4)
    clone = pickle.loads(pickle.dumps(t))
    assert repr(clone) == repr(t)
    a, b = t(x, y, num_classes=4), clone(x, y, num_classes=4)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("shape", [(10,), (6, 7), (3, 4, 5)])
def test_channels_last_equals_channels_first(method, shape):
    x, y, _ = data(5, shape)
    first = make(method, seed=8, num_classes=4)(x, y)
    last = make(method, seed=8, num_classes=4, channels_last=True)(x.movedim(1, -1), y)
    assert torch.equal(last.inputs, first.inputs.movedim(1, -1))
    assert torch.equal(last.targets, first.targets)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.uint8])
def test_dtypes_pass_through(dtype):
    x = (torch.rand(4, 3, 8, 8) * 255).to(dtype)
    for method in ALL:
        out = make(method, seed=9, num_classes=4)(x, torch.arange(4))
        assert out.inputs.dtype == dtype and out.inputs.device == x.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ALL)
def test_cuda_matches_cpu_draw(method):
    x, y, seg = data(6, (16, 16))
    cpu = make(method, seed=10, num_classes=4)(x, y, masks=seg)
    gpu = make(method, seed=10, num_classes=4)(x.cuda(), y.cuda(), masks=seg.cuda())
    assert gpu.inputs.device.type == "cuda" and gpu.targets.device.type == "cuda"
    assert torch.equal(gpu.index.cpu(), cpu.index)
    if method not in ("fmix", "fmix_soft", "policy"):  # FMix draws its spectra on the device
        torch.testing.assert_close(gpu.inputs.cpu(), cpu.inputs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ALL)
def test_cuda_call_makes_no_host_sync(method):
    x, y, seg = (t.cuda() for t in data(6, (16, 16)))
    transform = make(method, seed=11, num_classes=4)
    transform(x, y, masks=seg)  # first call: caches (spectrum scale, pinned buffers) may sync once
    torch.cuda.set_sync_debug_mode("error")
    try:
        transform(x, y, masks=seg)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_repr_is_readable():
    assert repr(MixUp(alpha=0.4, num_classes=10)) == "MixUp(alpha=0.4, num_classes=10)"
    assert repr(FMix(max_soft=0.1)) == "FMix(alpha=1.0, decay_power=3.0, max_soft=0.1)"
    assert "RandomChoice([MixUp(alpha=1.0), CutMix(alpha=1.0)], weights=[0.5, 0.5]" in \
        repr(RandomChoice([MixUp(), CutMix()]))


@pytest.mark.parametrize("module", ["mixmask.transforms.mix", "mixmask.transforms.methods"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0
