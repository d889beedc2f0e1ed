"""The bytes of fixed draws: speed work changes how a draw is computed, never what it gives.

Digests of the mixed inputs (float32 and uint8), soft targets, mixed maps, masks and partners for fixed
seeds, taken when the core v2 landed. A change that moves one of them changes what users get for a seed;
make it on purpose and say so, then update the digest.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

import mixmask as mm


def digest(*tensors):
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


CASES = {
 "mixup": lambda: mm.MixUp(num_classes=10, seed=1),
 "cutmix": lambda: mm.CutMix(num_classes=10, seed=2),
 "fmix": lambda: mm.FMix(num_classes=10, seed=3),
 "fmix_soft": lambda: mm.FMix(max_soft=0.1, num_classes=10, seed=4),
 "gridmask": lambda: mm.GridMask(num_classes=10, rotate=20.0, seed=5),
 "policy": lambda: mm.RandomChoice([mm.MixUp(), mm.CutMix(), mm.FMix(), mm.GridMask()], p=0.8, num_classes=10, label_smoothing=0.1, seed=6),
 "per_batch": lambda: mm.RandomChoice([mm.MixUp(), mm.CutMix()], per_sample=False, num_classes=10, seed=7),
}

SHAPES = [(16, 3, 32, 32), (4, 3, 96, 128), (8, 2, 40), (2, 1, 8, 12, 10)]
DIGESTS = {
    "mixup (16, 3, 32, 32)": "a725c5c1b38d7635",
    "mixup (4, 3, 96, 128)": "6feb32cd80ab624a",
    "mixup (8, 2, 40)": "956e90db3aff31a9",
    "mixup (2, 1, 8, 12, 10)": "7d12f034453aac42",
    "cutmix (16, 3, 32, 32)": "bc147fac0b206602",
    "cutmix (4, 3, 96, 128)": "de5670b68bef1af4",
    "cutmix (8, 2, 40)": "e346c1d3b5782c91",
    "cutmix (2, 1, 8, 12, 10)": "33687636758f863b",
    "fmix (16, 3, 32, 32)": "4c86a9433740e2bd",
    "fmix (4, 3, 96, 128)": "167dac0b2af5e21f",
    "fmix (8, 2, 40)": "0e6cc79d7e10a723",
    "fmix (2, 1, 8, 12, 10)": "9f8a73628870856b",
    "fmix_soft (16, 3, 32, 32)": "50dc57a20bcdcc91",
    "fmix_soft (4, 3, 96, 128)": "d25ba24f5a5aa640",
    "fmix_soft (8, 2, 40)": "52f03e3302ebd575",
    "fmix_soft (2, 1, 8, 12, 10)": "8b72553e0562b81c",
    "gridmask (16, 3, 32, 32)": "35332c532655e182",
    "gridmask (4, 3, 96, 128)": "d0b486ab8bbd32df",
    "policy (16, 3, 32, 32)": "d492d55177ba0a4f",
    "policy (4, 3, 96, 128)": "c85c1af088f7731b",
    "policy (8, 2, 40)": "186e52b0eb4430b5",
    "policy (2, 1, 8, 12, 10)": "020a274473704653",
    "per_batch (16, 3, 32, 32)": "8b9625a9900ca71a",
    "per_batch (4, 3, 96, 128)": "d90dfe1c27bd99df",
    "per_batch (8, 2, 40)": "a62187d4708f0317",
    "per_batch (2, 1, 8, 12, 10)": "fbfaf2cd1a3366d0"
}


@pytest.mark.parametrize("case", sorted(DIGESTS))
def test_fixed_seeds_give_the_same_bytes(case):
    name, shape = case.split(" ", 1)
    shape = tuple(int(v) for v in shape.strip("()").split(", "))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(*shape, generator=g), torch.randint(0, 10, (shape[0],), generator=g)
    seg = torch.randint(0, 10, (shape[0], *shape[2:]), generator=g)
    transform = CASES[name]()
    out = transform(x, y, seg)
    small = transform((x * 255).to(torch.uint8), y)
    assert digest(out.inputs, out.targets, out.masks, out.params.mask, out.params.index, small.inputs,
                  small.targets) == DIGESTS[case]


# Digests taken at 31add52, before the fixed-cost work (numpy rows for sparse targets, the Beta's
# in-place steps, broadcast per-batch masks, FMix means from pixel counts): 128 samples of 3 classes,
# so many pairs share an id, and the options those paths branch on.
MORE_CASES = {
 "mixup_smooth": lambda: mm.MixUp(alpha=0.4, label_smoothing=0.1, num_classes=3, seed=11),
 "mixup_p_flip": lambda: mm.MixUp(p=0.5, pairing="flip", num_classes=3, seed=12),
 "mixup_reformulate": lambda: mm.MixUp(reformulate=True, num_classes=3, seed=13),
 "cutmix_boxes": lambda: mm.CutMix(num_boxes=3, num_classes=3, seed=14),
 "cutmix_batch": lambda: mm.CutMix(per_sample=False, num_classes=3, seed=15),
 "mixup_batch": lambda: mm.MixUp(per_sample=False, num_classes=3, seed=16),
 "fmix": lambda: mm.FMix(num_classes=3, seed=17),
}
MORE_DIGESTS = {
    "cutmix_batch": "503f48b4ac502aa2",
    "cutmix_boxes": "33e5d120e559aa35",
    "fmix": "d730285b481bb045",
    "mixup_batch": "dcaa726f0a4e98ee",
    "mixup_p_flip": "a2cf851ffa080d28",
    "mixup_reformulate": "0abd64eb7227381e",
    "mixup_smooth": "b3e2775aee1a3e80",
}


@pytest.mark.parametrize("case", sorted(MORE_CASES))
def test_fixed_seeds_give_the_same_bytes_for_many_same_id_pairs(case):
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(128, 3, 24, 20, generator=g), torch.randint(0, 3, (128,), generator=g)
    transform = MORE_CASES[case]()
    first, second = transform(x, y), transform(x, torch.nn.functional.one_hot(y, 3).float())
    assert digest(first.inputs, first.targets, first.params.lam, first.params.mask, second.inputs,
                  second.targets) == MORE_DIGESTS[case]
