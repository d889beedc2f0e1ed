"""Pair targets: the soft-target loss without (B, K) or (B, K, *S) target tensors; compiled steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mixmask import CutMix, FMix, GridMask, MixMaskError, MixUp, RandomChoice, mixed_cross_entropy
from mixmask.functional import PairTargets, pair_class_targets, pair_dense_targets

METHODS = {
    "mixup": lambda **k: MixUp(**k), "cutmix": lambda **k: CutMix(**k), "fmix": lambda **k: FMix(**k),
    "fmix_soft": lambda **k: FMix(max_soft=0.2, **k), "gridmask": lambda **k: GridMask(cell_size=(0.3, 0.6), **k),
    "policy": lambda **k: RandomChoice([MixUp(), CutMix(), GridMask()], **k),
}


@pytest.mark.parametrize("k", [3, 21, 21841])
@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_pair_class_loss_equals_the_soft_target_loss(method, k, eps):
    g = torch.Generator().manual_seed(k)
    x, y = torch.rand(16, 3, 8, 8, generator=g), torch.randint(0, k, (16,), generator=g)
    logits = torch.randn(16, k, generator=g, dtype=torch.float64)
    soft = METHODS[method](num_classes=k, label_smoothing=eps, seed=1)(x, y)
    pair = METHODS[method](label_smoothing=eps, seed=1, target_format="pair")(x, y)
    assert isinstance(pair.targets, PairTargets) and pair.targets.own.shape == (16,)
    torch.testing.assert_close(mixed_cross_entropy(logits, pair.targets), mixed_cross_entropy(logits, soft.targets),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("ignore", [None, 255])
def test_pair_dense_loss_equals_the_soft_target_loss(method, ignore):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(6, 3, 12, 10, generator=g)
    seg = torch.randint(0, 4, (6, 12, 10), generator=g)
    if ignore is not None:
        seg[:, :3] = ignore
    logits = torch.randn(6, 4, 12, 10, generator=g, dtype=torch.float64, requires_grad=True)
    soft = METHODS[method](num_classes=4, ignore_index=ignore, seed=3)(x, masks=seg)
    pair = METHODS[method](ignore_index=ignore, seed=3, target_format="pair")(x, masks=seg)
    targets = soft.masks if soft.masks.dtype.is_floating_point else None
    if targets is None:  # binary masks give id maps: the hard loss
        expected = mixed_cross_entropy(logits, soft.masks, ignore_index=-100 if ignore is None else ignore)
    else:
        expected = mixed_cross_entropy(logits, targets)
    got = mixed_cross_entropy(logits, pair.masks)
    torch.testing.assert_close(got, expected, rtol=1e-7, atol=1e-7)  # soft targets are float32
    (grad_pair,) = torch.autograd.grad(got, logits)
    (grad_soft,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(grad_pair, grad_soft, rtol=1e-7, atol=1e-7)


def test_pair_targets_need_no_num_classes_and_hold_no_k_sized_tensor():
    x, seg = torch.rand(4, 3, 16, 16), torch.randint(0, 21, (4, 16, 16))
    x_out, pair = MixUp(seed=0, target_format="pair")(x, masks=seg)
    assert pair.own.shape == pair.partner.shape == (4, 16, 16)
    assert pair.weight.numel() == 4  # MixUp's weight stays a constant per sample
    assert torch.equal(pair.partner, seg[MixUp(seed=0).sample(x).index])


def test_pair_functions_and_their_errors():
    x, y = torch.rand(4, 3, 8, 8), torch.arange(4)
    params = CutMix(seed=0).sample(x)
    pair = pair_class_targets(y, params, label_smoothing=0.1)
    assert torch.equal(pair.partner, y[params.index]) and pair.label_smoothing == 0.1
    dense = pair_dense_targets(torch.zeros(4, 1, 8, 8, dtype=torch.long), params)
    assert dense.own.shape == (4, 8, 8)
    with pytest.raises(MixMaskError, match=r"pair targets take \(4,\) integer class ids.*float32 of shape \(4, 3\)"):
        CutMix(target_format="pair")(x, torch.rand(4, 3))
    with pytest.raises(MixMaskError, match="multi_label=True"):
        CutMix(target_format="pair", multi_label=True)
    with pytest.raises(MixMaskError, match="target_format must be one of"):
        CutMix(target_format="hard")
    with pytest.raises(MixMaskError, match=r"logits of shape \(B, K, \*S\) for pair targets of shape \(4,\)"):
        mixed_cross_entropy(torch.zeros(4, 3, 2), pair)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(8, 10))

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize("target_format", ["soft", "pair"])
def test_a_training_step_that_mixes_compiles_and_matches_eager(target_format):
    import torch._dynamo as dynamo

    torch.manual_seed(0)
    net = Net()
    x, y = torch.rand(8, 3, 16, 16), torch.randint(0, 10, (8,))

    def step(model, mix):
        images, targets = mix(x, y)
        return mixed_cross_entropy(model(images), targets)

    explained = dynamo.explain(step)(net, CutMix(num_classes=10, seed=0, target_format=target_format))
    assert explained.graph_break_count == 0  # the mixing call runs eagerly, outside the graph
    dynamo.reset()
    eager = step(net, CutMix(num_classes=10, seed=0, target_format=target_format))
    compiled = torch.compile(step, backend="eager")(net, CutMix(num_classes=10, seed=0, target_format=target_format))
    torch.testing.assert_close(compiled, eager)
