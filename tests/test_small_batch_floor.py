"""benchmarks/small_batch_floor.py: its bare loop does exactly the work of a MixUp call (same draws, same bytes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from mixmask import MixUp

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "small_batch_floor.py"
_spec = importlib.util.spec_from_file_location("small_batch_floor", _PATH)
floor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(floor)


@pytest.mark.parametrize("shape, classes", [((128, 3, 32, 32), 1000), ((5, 1, 7), 3), ((2, 2, 4, 4, 4), 10)])
def test_bare_loop_gives_the_bytes_of_a_mixup_call_from_the_same_generator(shape, classes):
    g = torch.Generator().manual_seed(3)
    x, labels = torch.rand(shape, generator=g), torch.randint(0, classes, (shape[0],), generator=g)
    mix = MixUp(num_classes=classes)
    expected = mix.apply(mix.sample(x, labels, generator=torch.Generator().manual_seed(11)), x, labels)
    gen = torch.Generator().manual_seed(11)
    inputs, targets = floor.same_draws(x, labels, classes, gen)
    assert torch.equal(inputs, expected.inputs) and torch.equal(targets, expected.targets)
    assert not torch.equal(gen.get_state(), torch.Generator().manual_seed(11).get_state())  # it drew


def test_numpy_loop_blends_each_sample_with_another_by_numpys_beta_weights():
    g = torch.Generator().manual_seed(0)
    x, labels = torch.rand(16, 3, 8, 8, generator=g), torch.arange(16) % 5
    inputs, targets = floor.numpy_draws(x, labels, 5, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    order = rng.permutation(16)
    partners = np.empty_like(order)
    partners[order] = np.roll(order, -1)
    weights = torch.from_numpy(rng.beta(1.0, 1.0, 16).astype(np.float32))
    assert not np.any(partners == np.arange(16))  # a derangement: no sample is its own partner
    assert torch.equal(inputs, torch.lerp(x[partners], x, weights.view(-1, 1, 1, 1)))
    assert torch.allclose(targets.sum(1), torch.ones(16))
    same = labels == labels[partners]
    assert torch.equal(targets[torch.arange(16), labels], torch.where(same, 1.0, weights))
