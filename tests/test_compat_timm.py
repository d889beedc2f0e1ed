"""mixmask.compat.timm against timm's own Mixup / FastCollateMixup (timm 1.0.x, data/mixup.py).

Exact comparisons replay mixmask's draw through timm: numpy's ``rand``/``beta`` and timm's
``cutmix_bbox_and_lam`` are monkeypatched to return mixmask's decisions, lams and boxes, so timm's
arithmetic runs on the same draw. Statistical comparisons run both with their own generators.
"""

from __future__ import annotations

import importlib
import pickle
import sys

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from mixmask import MixMaskError, MixResult
from mixmask.compat.timm import FastCollateMixup, Mixup
from mixmask.functional.params import METHODS
from tests.conftest import assert_untouched, snapshot

timm_mixup = pytest.importorskip("timm.data.mixup")

CUTMIX = METHODS.index("cutmix")

#: timm arguments per case: which methods are active decides timm's sequence of numpy draws.
CASES = {
    "mixup": dict(mixup_alpha=0.8, cutmix_alpha=0.0),
    "cutmix": dict(mixup_alpha=0.0, cutmix_alpha=1.0),
    "both": dict(mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5),
    "minmax": dict(mixup_alpha=0.0, cutmix_minmax=(0.2, 0.8)),
    "both-minmax": dict(mixup_alpha=0.4, cutmix_minmax=(0.3, 0.9), switch_prob=0.7),
}


def _box(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """``(yl, yh, xl, xh)`` of the pasted (False) region of a ``(H, W)`` CutMix mask; empty when none."""
    pasted = mask < 0.5
    rows, cols = pasted.any(1).nonzero()[:, 0], pasted.any(0).nonzero()[:, 0]
    if rows.numel() == 0:
        return 0, 0, 0, 0
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def replay_in_timm(monkeypatch, kwargs: dict, params, run):
    """Run ``run()`` (a call of a timm object built from ``kwargs``) with the draw ``params``."""
    mode = kwargs.get("mode", "batch")
    both = (kwargs.get("mixup_alpha", 1.0) > 0) and (kwargs.get("cutmix_alpha", 0.0) > 0
                                                     or kwargs.get("cutmix_minmax") is not None)
    b = params.batch_size
    n = {"batch": 1, "pair": b // 2, "elem": b}[mode]
    method, lam = params.method[:n], params.lam[:n].double()
    cut = (method == CUTMIX).numpy()
    applied = (method != 0).numpy()
    lam_feed = np.where(cut, 0.5, lam.numpy())  # timm ignores a CutMix lam once it has the box
    rand_feed = ([np.where(cut, 0.0, 1.0)] if both else []) + [np.where(applied, 0.0, 1.0)]
    if mode == "batch":  # the prob decision comes first there, and the switch only when mixing
        rand_feed = rand_feed[::-1][:1 + int(both and applied[0])]
    boxes = [(_box(params.mask[i]), float(params.lam[i])) for i in range(n) if cut[i] and applied[i]]

    def rand(*size):
        value = rand_feed.pop(0)
        return float(value[0]) if not size else value

    def beta(a, b, size=None):
        return float(lam_feed[0]) if size is None else lam_feed.copy()

    def bbox_and_lam(img_shape, lam, ratio_minmax=None, correct_lam=True, count=None):
        return boxes.pop(0)

    monkeypatch.setattr(np.random, "rand", rand)
    monkeypatch.setattr(np.random, "beta", beta)
    monkeypatch.setattr(timm_mixup, "cutmix_bbox_and_lam", bbox_and_lam)
    result = run()
    assert not boxes and not rand_feed, "timm made other draws than the replay expects"
    return result


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("prob", [1.0, 0.6])
def test_mixup_equals_timm_on_the_same_draw(monkeypatch, mode, case, prob):
    kwargs = dict(CASES[case], mode=mode, prob=prob, label_smoothing=0.1, num_classes=7)
    x, y = torch.rand(10, 3, 12, 16), torch.randint(0, 7, (10,))
    ours = Mixup(**kwargs, seed=3)(x, y)
    assert isinstance(ours, MixResult)
    expected_x, expected_y = replay_in_timm(monkeypatch, kwargs, ours.params,
                                            lambda: timm_mixup.Mixup(**kwargs)(x.clone(), y))
    cut_only = bool((ours.params.method != METHODS.index("mixup")).all())
    if cut_only:
        assert torch.equal(ours.inputs, expected_x)  # pasted pixels are copies
    else:
        torch.testing.assert_close(ours.inputs, expected_x, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.targets, expected_y, atol=1e-6, rtol=0)


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
@pytest.mark.parametrize("case", ["mixup", "cutmix", "both", "minmax"])
@pytest.mark.parametrize("as_numpy", [True, False])
def test_fast_collate_equals_timm_on_the_same_draw(monkeypatch, mode, case, as_numpy):
    kwargs = dict(CASES[case], mode=mode, label_smoothing=0.1, num_classes=5)
    images = np.random.default_rng(1).integers(0, 256, (8, 3, 10, 14), dtype=np.uint8)
    samples = [(im if as_numpy else torch.from_numpy(im.copy()), k % 5) for k, im in enumerate(images)]
    kept = images.copy()
    collate = FastCollateMixup(**kwargs, seed=5)
    ours_x, ours_y = collate(samples)
    assert ours_x.dtype == torch.uint8 and ours_y.dtype == torch.float32
    assert np.array_equal(images, kept)  # the samples are not written
    # the same seed draws the same in Mixup: its result carries the draw to replay in timm
    draw = Mixup(**kwargs, seed=5)(torch.from_numpy(images.copy()), torch.arange(8) % 5).params
    timm_samples = [(im.copy() if as_numpy else torch.from_numpy(im.copy()), k % 5) for k, im in enumerate(images)]
    expected_x, expected_y = replay_in_timm(monkeypatch, kwargs, draw,
                                            lambda: timm_mixup.FastCollateMixup(**kwargs)(timm_samples))
    if case == "mixup" or case == "both":
        # both round ``lam * a + (1 - lam) * b`` to the nearest integer; the float arithmetic differs
        # (one lerp against two products), which may flip a value lying on .5
        diff = (ours_x.int() - expected_x.int()).abs()
        assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.01
    else:
        assert torch.equal(ours_x, expected_x)
    torch.testing.assert_close(ours_y, expected_y, atol=1e-6, rtol=0)


def test_multi_label_targets_equal_timm(monkeypatch):
    kwargs = dict(mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", label_smoothing=0.2, num_classes=4, multi_label=True)
    x = torch.rand(6, 1, 8, 8)
    y = (torch.rand(6, 4) < 0.5).float()
    ours = Mixup(**kwargs, seed=0)(x, y)
    _, expected = replay_in_timm(monkeypatch, kwargs, ours.params, lambda: timm_mixup.Mixup(**kwargs)(x.clone(), y))
    torch.testing.assert_close(ours.targets, expected, atol=1e-6, rtol=0)


# -- distributions, each library with its own generator ---------------------------------------------

def _own_label_weights(targets: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """lam of each sample read back from smoothing-free targets of distinct labels."""
    return targets[torch.arange(labels.shape[0]), labels].double().numpy()


def test_mixup_lam_distribution_matches_timm():
    np.random.seed(0)
    timm_fn = timm_mixup.Mixup(mixup_alpha=0.4, mode="elem", label_smoothing=0.0, num_classes=200)
    x, y = torch.zeros(200, 1, 2, 2), torch.arange(200)
    theirs = np.concatenate([_own_label_weights(timm_fn(x.clone(), y)[1], y) for _ in range(10)])
    ours = Mixup(mixup_alpha=0.4, mode="elem", label_smoothing=0.0, num_classes=2000, seed=0)
    y = torch.arange(2000)
    lam = _own_label_weights(ours(torch.zeros(2000, 1, 2, 2), y).targets, y)
    assert stats.ks_2samp(theirs, lam).pvalue > 1e-3
    assert stats.kstest(lam, stats.beta(0.4, 0.4).cdf).pvalue > 1e-3


def test_cutmix_lam_distribution_matches_timm():
    """The clipped-box label weight; box sides differ by rounding (mixmask rounds, timm truncates)."""
    np.random.seed(1)
    timm_fn = timm_mixup.Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", label_smoothing=0.0, num_classes=256)
    x, y = torch.zeros(256, 1, 64, 64), torch.arange(256)
    theirs = np.concatenate([_own_label_weights(timm_fn(x.clone(), y)[1], y) for _ in range(8)])
    y = torch.arange(2048)
    out = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", label_smoothing=0.0, num_classes=2048,
                seed=1)(torch.zeros(2048, 1, 64, 64), y)
    lam = _own_label_weights(out.targets, y)
    assert np.allclose(lam, out.params.mask.float().mean((1, 2)).numpy(), atol=1e-6)  # labels = kept area
    assert stats.ks_2samp(theirs, lam).pvalue > 1e-3
    assert abs(theirs.mean() - lam.mean()) < 0.02


def test_minmax_box_sides_match_timm():
    np.random.seed(2)
    shape = (40, 50)
    yl, yh, xl, xh = timm_mixup.rand_bbox_minmax(shape, (0.2, 0.7), count=3000)
    out = Mixup(mixup_alpha=0.0, cutmix_minmax=(0.2, 0.7), mode="elem", num_classes=2,
                seed=2)(torch.zeros(3000, 1, *shape), torch.zeros(3000, dtype=torch.long))
    pasted = out.params.mask == 0
    heights, widths = pasted.any(2).sum(1).numpy(), pasted.any(1).sum(1).numpy()
    assert set(heights) == set(yh - yl) and set(widths) == set(xh - xl)  # the same support
    assert stats.ks_2samp(heights, yh - yl).pvalue > 1e-3 and stats.ks_2samp(widths, xh - xl).pvalue > 1e-3


@pytest.mark.parametrize("mode", ["batch", "elem"])
def test_prob_and_switch_prob_keep_their_meaning(mode):
    """prob: share of mixed batches (samples); switch_prob: share of CutMix among them."""
    fn = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, prob=0.8, switch_prob=0.3, mode=mode, num_classes=2, seed=4)
    x, y = torch.zeros(2000 if mode == "elem" else 2, 1, 4, 4), torch.zeros(2000 if mode == "elem" else 2,
                                                                          dtype=torch.long)
    methods = torch.cat([fn(x, y).params.method[:1 if mode == "batch" else None]
                         for _ in range(1 if mode == "elem" else 400)])
    n = methods.numel()
    mixed = float((methods != 0).float().mean())
    cut = float((methods == CUTMIX).float().sum() / (methods != 0).float().sum())
    assert abs(mixed - 0.8) < 4 * (0.8 * 0.2 / n) ** 0.5
    assert abs(cut - 0.3) < 4 * (0.3 * 0.7 / (0.8 * n)) ** 0.5


# -- behaviour that differs from timm on purpose ----------------------------------------------------

def test_the_batch_is_not_written_where_timm_writes_it():
    x, y = torch.rand(8, 3, 8, 8), torch.arange(8)
    shots = snapshot(x, y)
    Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode="elem", num_classes=8, seed=0)(x, y)
    assert_untouched([x, y], shots)
    timm_x = x.clone()
    timm_mixup.Mixup(mixup_alpha=1.0, num_classes=8)(timm_x, y)
    assert not torch.equal(timm_x, x)  # the difference the docstring states


@pytest.mark.parametrize("mode", ["batch", "pair", "elem"])
def test_odd_batches_mix_and_leave_the_middle_sample_alone(mode):
    x, y = torch.rand(7, 3, 8, 8), torch.arange(7)
    with pytest.raises(AssertionError):
        timm_mixup.Mixup(num_classes=7)(x.clone(), y)  # timm needs an even batch
    out = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode, label_smoothing=0.1, num_classes=7, seed=0)(x, y)
    assert out.index.tolist() == [6, 5, 4, 3, 2, 1, 0]
    assert torch.equal(out.inputs[3], x[3])
    smoothed = torch.full((7,), 0.1 / 7)
    smoothed[3] += 0.9
    torch.testing.assert_close(out.targets[3], smoothed)


def test_pair_mode_shares_the_draw_within_each_pair():
    out = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode="pair", num_classes=9, seed=1)(torch.rand(9, 2, 6, 6),
                                                                                      torch.arange(9))
    b = 9
    for i in range(b):
        j = b - 1 - i
        assert out.params.method[i] == out.params.method[j] and out.lam[i] == out.lam[j]
        assert torch.equal(out.mask[i], out.mask[j])
    assert len(set(out.lam[:4].tolist())) == 4  # and pairs differ from each other


def test_batch_mode_draws_once_per_batch():
    out = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, mode="batch", num_classes=8, seed=2)(torch.rand(8, 1, 16, 16),
                                                                                       torch.arange(8))
    assert torch.equal(out.mask, out.mask[:1].expand_as(out.mask)) and len(set(out.lam.tolist())) == 1


def test_mixup_enabled_false_only_smooths():
    fn = Mixup(num_classes=4, label_smoothing=0.2, seed=0)
    fn.mixup_enabled = False
    x, y = torch.rand(4, 3, 5, 5), torch.tensor([0, 1, 2, 3])
    out_x, out_y = fn(x, y)
    assert torch.equal(out_x, x)
    torch.testing.assert_close(out_y, timm_mixup.mixup_target(y, 4, 1.0, 0.2))
    collate = FastCollateMixup(num_classes=4, seed=0)
    collate.mixup_enabled = False
    images, targets = collate([(np.full((3, 4, 4), k, np.uint8), k) for k in range(4)])
    assert images[:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    torch.testing.assert_close(targets, timm_mixup.mixup_target(y, 4, 1.0, 0.1))


def test_correct_lam_false_is_refused_where_it_would_matter():
    with pytest.raises(MixMaskError, match="correct_lam=False"):
        Mixup(cutmix_alpha=1.0, correct_lam=False)
    Mixup(mixup_alpha=1.0, correct_lam=False)  # no CutMix: timm's correct_lam changes nothing
    Mixup(cutmix_minmax=(0.2, 0.8), correct_lam=False)  # timm corrects minmax boxes whatever correct_lam says


@pytest.mark.parametrize("kwargs, match", [
    (dict(mixup_alpha=0.0, cutmix_alpha=0.0), "mixup_alpha > 0, cutmix_alpha > 0 or a cutmix_minmax"),
    (dict(mixup_alpha=-1.0), "mixup_alpha"),
    (dict(mode="half"), r"mode must be one of \['batch', 'pair', 'elem'\], but got 'half'"),
    (dict(mode="Batch"), "mode must be one of"),
    (dict(prob=1.5), "prob"),
    (dict(switch_prob=-0.1), "switch_prob"),
    (dict(cutmix_minmax=(0.8, 0.2)), "cutmix_minmax"),
    (dict(cutmix_minmax=(0.5,)), "cutmix_minmax"),
    (dict(label_smoothing=1.0), "label_smoothing"),
    (dict(num_classes=0), "num_classes"),
    (dict(correct_lam="False", cutmix_alpha=1.0), "correct_lam"),
])
def test_bad_arguments_are_refused_at_construction(kwargs, match):
    with pytest.raises(MixMaskError, match=match):
        Mixup(**kwargs)


def test_bad_call_changes_nothing_and_draws_nothing():
    fn = Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode="pair", num_classes=4, seed=0)
    x, bad = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 9])
    shots = snapshot(x, bad)
    with pytest.raises(MixMaskError, match=r"labels in \[0, 4\), but got values from 0 to 9"):
        fn(x, bad)
    assert_untouched([x, bad], shots)
    with pytest.raises(MixMaskError, match="second argument"):
        fn(x, None)
    good = torch.arange(4)
    assert fn(x, good).params == Mixup(mixup_alpha=1.0, cutmix_alpha=1.0, mode="pair", num_classes=4,
                                       seed=0)(x, good).params


@pytest.mark.parametrize("samples, match", [
    ([], "non-empty list"),
    ([(np.zeros((3, 4, 4), np.uint8), 0), (np.zeros((3, 5, 4), np.uint8), 1)], "one shape and dtype"),
    ([("image", 0)], "numpy array or tensor"),
    ([np.zeros((3, 4, 4), np.uint8)], "samples of \\(image, label\\)"),
])
def test_fast_collate_refuses_bad_samples(samples, match):
    with pytest.raises(MixMaskError, match=match):
        FastCollateMixup(num_classes=2)(samples)


def test_fast_collate_in_dataloader_workers_draws_differently_per_worker():
    data = [(np.full((1, 8, 8), k, np.uint8), k % 4) for k in range(16)]
    loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=2, collate_fn=FastCollateMixup(
        mixup_alpha=0.0, cutmix_alpha=1.0, mode="elem", num_classes=4, seed=0),
        generator=torch.Generator().manual_seed(0))
    first, second = list(loader), list(loader)
    masks = [tuple((images == images[:, :1, :1, :1]).flatten().tolist()) for images, _ in first]
    assert len(set(masks)) == len(masks)  # workers and batches draw differently
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(first, second))  # and so do epochs
    assert all(images.dtype == torch.uint8 and targets.shape == (4, 4) for images, targets in first)


def test_pickles_and_repr():
    fn = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, cutmix_minmax=[0.2, 0.8], mode="elem", num_classes=10, seed=1)
    again = pickle.loads(pickle.dumps(fn))
    x, y = torch.rand(4, 3, 8, 8), torch.arange(4)
    assert again(x, y).params == fn(x, y).params
    assert repr(fn) == ("Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, cutmix_minmax=(0.2, 0.8), prob=1.0, switch_prob=0.5, "
                        "mode='elem', correct_lam=True, label_smoothing=0.1, num_classes=10, seed=1)")


def test_importing_mixmask_imports_neither_timm_nor_torchvision(monkeypatch):
    """A fresh ``import mixmask, mixmask.compat`` with timm and torchvision made unimportable."""
    ours = {k: v for k, v in sys.modules.items() if k == "mixmask" or k.startswith("mixmask.")}
    try:
        for name in ours:
            del sys.modules[name]
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, "timm", None)  # `import timm` now raises ImportError
            patch.setitem(sys.modules, "torchvision", None)
            importlib.import_module("mixmask")
            importlib.import_module("mixmask.compat")
    finally:
        for name in [k for k in sys.modules if k == "mixmask" or k.startswith("mixmask.")]:
            del sys.modules[name]
        sys.modules.update(ours)


def test_docstring_examples_run():
    import doctest

    import mixmask.compat.timm as module

    result = doctest.testmod(module, extraglobs={"torch": torch, "np": np})
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("mode", ["pair", "elem"])
def test_uint8_batches_where_timm_truncates_pixels_and_labels(monkeypatch, mode):
    """The facts behind docs/migrating.md's uint8 row (timm's batch mode raises; see the first lines)."""
    x, y = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8), torch.arange(6)
    with pytest.raises(RuntimeError):
        timm_mixup.Mixup(mixup_alpha=1.0, num_classes=6)(x.clone(), y)
    monkeypatch.setattr(np.random, "beta", lambda a, b, size=None: np.full(size, 0.5))
    timm_x, timm_y = timm_mixup.Mixup(mixup_alpha=1.0, mode=mode, label_smoothing=0.0, num_classes=6)(x.clone(), y)
    halfway = (x.double() + x.flip(0).double()) / 2
    assert torch.equal(timm_x, halfway.floor().to(torch.uint8))  # truncated
    assert torch.equal(timm_y, torch.eye(6).flip(0))  # lam cast to uint8: 0, the partner's label only
    ours = Mixup(mixup_alpha=1.0, mode=mode, label_smoothing=0.0, num_classes=6, seed=0)(x, y)
    expected = torch.lerp(x.flip(0).float(), x.float(), ours.lam.view(-1, 1, 1, 1)).round()
    assert ours.inputs.dtype == torch.uint8 and torch.equal(ours.inputs, expected.to(torch.uint8))
    torch.testing.assert_close(ours.targets.diagonal(), ours.lam)


@given(b=st.integers(1, 9), mode=st.sampled_from(["batch", "pair", "elem"]), case=st.sampled_from(sorted(CASES)),
       prob=st.sampled_from([0.0, 0.5, 1.0]), eps=st.sampled_from([0.0, 0.1]), seed=st.integers(0, 2**31))
def test_invariants_of_every_mode(b, mode, case, prob, eps, seed):
    x, y = torch.rand(b, 2, 5, 7), torch.randint(0, 4, (b,))
    shots = snapshot(x, y)
    out = Mixup(**CASES[case], mode=mode, prob=prob, label_smoothing=eps, num_classes=4, seed=seed)(x, y)
    assert_untouched([x, y], shots)
    flip = torch.arange(b - 1, -1, -1)
    assert torch.equal(out.index, flip)
    torch.testing.assert_close(out.lam, out.mask.float().mean((1, 2)))
    torch.testing.assert_close(out.targets.sum(1), torch.ones(b))
    smooth = torch.nn.functional.one_hot(y, 4).float() * (1 - eps) + eps / 4
    torch.testing.assert_close(out.targets, out.lam[:, None] * smooth + (1 - out.lam[:, None]) * smooth[flip])
    if mode != "elem":  # both sides of a pair (and the whole batch) share one draw
        assert torch.equal(out.mask, out.mask[flip]) and torch.equal(out.params.method, out.params.method[flip])
    if mode == "batch":
        assert len(set(out.lam.tolist())) == 1
    if prob == 0.0:
        assert torch.equal(out.inputs, x) and bool((out.lam == 1).all())
