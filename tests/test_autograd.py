"""Mixing is differentiable: gradients reach x[i] and x[j]; Manifold Mixup trains a model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mixmask import CutMix, FMix, GridMask, ManifoldMixup, MixMaskError, MixUp, RandomChoice

METHODS = {
    "mixup": lambda: MixUp(num_classes=3, seed=0),
    "cutmix": lambda: CutMix(num_classes=3, seed=0),
    "fmix": lambda: FMix(num_classes=3, seed=0),
    "fmix_soft": lambda: FMix(max_soft=0.2, num_classes=3, seed=0),
    "gridmask": lambda: GridMask(num_classes=3, cell_size=(0.3, 0.5), seed=0),
    "policy": lambda: RandomChoice([MixUp(), CutMix(), FMix(), GridMask()], num_classes=3, seed=0),
    "per_batch": lambda: CutMix(num_classes=3, per_sample=False, seed=0),
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_gradcheck_with_a_fixed_draw(method):
    transform = METHODS[method]()
    x = torch.rand(4, 2, 6, 5, dtype=torch.float64, requires_grad=True)
    params = transform.sample(x.detach())
    assert torch.autograd.gradcheck(lambda inputs: transform(inputs, params=params).inputs, (x,))


@pytest.mark.parametrize("method", ["mixup", "cutmix", "fmix", "fmix_soft"])
def test_gradients_reach_the_sample_and_its_partner(method):
    transform = METHODS[method]()
    x = torch.rand(6, 2, 8, 8, requires_grad=True)
    out = transform(x, torch.arange(6) % 3)
    i = int((out.lam < 1).nonzero()[0])  # a sample that took something from its partner
    j = int(out.index[i])
    out.inputs[i].sum().backward()
    own = out.mask[i].float().expand(2, 8, 8)
    torch.testing.assert_close(x.grad[i], own)
    torch.testing.assert_close(x.grad[j], 1 - own)
    others = [k for k in range(6) if k not in (i, j)]
    assert bool((x.grad[others] == 0).all())


def test_soft_targets_that_require_grad_mix_with_a_graph():
    targets = torch.softmax(torch.randn(6, 3), 1).requires_grad_()
    out = MixUp(num_classes=3, seed=1)(torch.rand(6, 2, 4, 4), targets)
    out.targets.sum().backward()
    w = out.params.label_lam
    expected = w.clone().index_add_(0, out.index, 1 - w)  # own weight, plus what partners took from it
    torch.testing.assert_close(targets.grad, expected[:, None].expand(6, 3))


def test_in_place_mixing_of_inputs_that_require_grad_is_refused():
    x = torch.rand(4, 2, 5, 5, requires_grad=True)
    transform = CutMix(seed=0)
    with pytest.raises(MixMaskError, match="inplace=True writes into the inputs, but they require grad"):
        transform.apply(transform.sample(x), x, inplace=True)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(32, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.hidden(self.block2(self.block1(x))))


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.3
    x[labels == 0, :, :4] += 1.0  # class 0: bright top, class 1: bright left, class 2: dark
    x[labels == 1, :, :, :4] += 1.0
    return x, labels


def test_manifold_mixup_trains_a_tiny_model():
    torch.manual_seed(0)
    model = Tiny()
    net = ManifoldMixup(model, ["input", "block1", "block2", "hidden"], MixUp(alpha=2.0, num_classes=3, seed=0))
    x, y = _data()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    losses = []
    for _ in range(60):
        logits, targets = net(x, y)
        assert targets.shape == (96, 3)
        loss = torch.sum(-targets * logits.log_softmax(1), 1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    net.eval()
    with torch.no_grad():
        accuracy = float((net(x).argmax(1) == y).float().mean())
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10
    assert accuracy > 0.9
    for module in model.modules():  # every hook was removed after its forward pass
        assert not module._forward_hooks


def test_manifold_mixup_mixes_the_drawn_layer_with_the_labels_draw():
    model = Tiny()
    net = ManifoldMixup(model, ["hidden"], MixUp(alpha=1.0, num_classes=3, seed=4))
    x, y = _data(12)
    seen = {}
    model.hidden.register_forward_hook(lambda m, a, out: seen.setdefault("h", out.detach().clone()))
    logits, targets = net(x, y)
    # the head saw the mixed hidden features: recompute them from the recorded ones and the targets
    own = targets[torch.arange(12), y]
    assert bool((own < 1).any()) and bool(((own >= 0) & (own <= 1)).all())
    torch.testing.assert_close(targets.sum(1), torch.ones(12))
    with torch.no_grad():
        unmixed = model.head(seen["h"])
    assert not torch.allclose(unmixed, logits)


def test_manifold_mixup_errors():
    with pytest.raises(MixMaskError, match="'nope' is not a submodule.*'block1'"):
        ManifoldMixup(Tiny(), ["nope"])
    with pytest.raises(MixMaskError, match="non-empty list of layer names"):
        ManifoldMixup(Tiny(), [])
    with pytest.raises(MixMaskError, match="mixmask transform as mix"):
        ManifoldMixup(Tiny(), ["input"], mix="mixup")
