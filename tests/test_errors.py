"""Bad input: one exception class, a message with what was expected and what came, nothing changed."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_untouched, snapshot

from mixmask import CutMix, FMix, GridMask, MixCollate, MixMaskError, MixUp, RandomChoice


def test_error_class_is_a_value_error():
    assert issubclass(MixMaskError, ValueError)


@pytest.mark.parametrize("build, match", [
    (lambda: MixUp(alpha=0), r"alpha.*\(0.0, inf\).*0"),
    (lambda: MixUp(alpha=-1.0), "alpha.*-1.0"),
    (lambda: MixUp(alpha=float("nan")), "alpha.*nan"),
    (lambda: CutMix(alpha=float("inf")), "alpha.*inf"),
    (lambda: MixUp(lam=1.5), r"lam.*\[0.0, 1.0\].*1.5"),
    (lambda: MixUp(lam=float("nan")), "lam.*nan"),
    (lambda: MixUp(p=1.2), r"p.*\[0.0, 1.0\].*1.2"),
    (lambda: MixUp(p=float("nan")), "p.*nan"),
    (lambda: MixUp(pairing="random"), "pairing.*permutation.*'random'"),
    (lambda: MixUp(num_classes=0), "num_classes.*0"),
    (lambda: MixUp(num_classes=2.5), "num_classes.*2.5"),
    (lambda: MixUp(label_smoothing=1.0), "label_smoothing.*1.0"),
    (lambda: MixUp(ignore_index=0.5), "ignore_index.*0.5"),
    (lambda: MixUp(validate="yes"), "validate.*'yes'"),
    (lambda: MixUp(seed=-1), "seed.*-1"),
    (lambda: MixUp(seed=1.5), "seed.*1.5"),
    (lambda: MixUp(seed="3"), "seed.*'3'"),
    (lambda: FMix(decay_power=0), "decay_power.*0"),
    (lambda: FMix(max_soft=0.7), r"max_soft.*\[0.0, 0.5\].*0.7"),
    (lambda: GridMask(keep_ratio=0), r"keep_ratio.*\(0.0, 1.0\).*0"),
    (lambda: GridMask(cell_size=(0.5,)), r"cell_size.*\(0.5,\)"),
    (lambda: GridMask(cell_size=(0.6, 0.3)), r"low <= high.*\(0.6, 0.3\)"),
    (lambda: GridMask(cell_size=(0.0, 0.3)), r"cell_size.*0.0"),
    (lambda: GridMask(rotate=200), r"rotate.*\[0.0, 180.0\].*200"),
    (lambda: GridMask(fill=float("inf")), "fill.*inf"),
    (lambda: RandomChoice([]), r"non-empty list.*\[\]"),
    (lambda: RandomChoice([MixUp(), "cutmix"]), "non-empty list.*'cutmix'"),
    (lambda: RandomChoice([MixUp(), CutMix()], weights=[1.0]), r"2 non-negative weights.*\[1.0\]"),
    (lambda: RandomChoice([MixUp(), CutMix()], weights=[1.0, -1.0]), "weights.*-1.0"),
    (lambda: RandomChoice([MixUp(), CutMix()], weights=[0.0, 0.0]), r"positive sum.*\[0.0, 0.0\]"),
    (lambda: RandomChoice([MixUp(), CutMix()], weights=[1.0, float("nan")]), "weights.*nan"),
    (lambda: RandomChoice([MixUp(), CutMix()], weights=0.5), "2 non-negative weights.*0.5"),
    (lambda: RandomChoice([MixUp(), CutMix()], p=[0.3, 0.7]), "probability that a sample is mixed.*weights="),
    (lambda: RandomChoice([MixUp()], p=2.0), "p.*2.0"),
])
def test_construction_errors(build, match):
    with pytest.raises(MixMaskError, match=match):
        build()


def _x(*shape, dtype=torch.float32):
    return torch.rand(*shape).to(dtype)


@pytest.mark.parametrize("call, match", [
    (lambda: CutMix()(_x(4, 3)), r"\(B, C, \*S\).*1 to 3 spatial dims.*\(4, 3\)"),
    (lambda: CutMix()(_x(2, 3, 4, 4, 4, 4)), r"1 to 3 spatial dims.*\(2, 3, 4, 4, 4, 4\)"),
    (lambda: CutMix(channels_last=True)(_x(4, 3)), r"\(B, \*S, C\).*\(4, 3\)"),
    (lambda: CutMix()(_x(0, 3, 4, 4)), r"at least one sample.*\(0, 3, 4, 4\)"),
    (lambda: CutMix()(torch.zeros(2, 3, 4, dtype=torch.int32)), "uint8 or float16.*int32"),
    (lambda: CutMix()([[1.0]]), "torch.Tensor.*list"),
    (lambda: CutMix()(_x(4, 3, 8), torch.arange(4)), r"sparse labels of shape \(4,\) need num_classes.*None"),
    (lambda: CutMix(num_classes=3)(_x(4, 3, 8), torch.tensor([0, 1, 3, 2])), r"labels in \[0, 3\).*0 to 3"),
    (lambda: CutMix(num_classes=3)(_x(4, 3, 8), torch.tensor([0, -1, 2, 2])), r"labels in \[0, 3\).*-1 to 2"),
    (lambda: CutMix()(_x(4, 3, 8), torch.arange(4), num_classes=3), r"labels in \[0, 3\).*0 to 3"),
    (lambda: CutMix(num_classes=3)(_x(4, 3, 8), torch.arange(3)), r"labels for 4 samples.*\(3,\)"),
    (lambda: CutMix(num_classes=3)(_x(4, 3, 8), torch.rand(4, 5)), r"num_classes=3 columns.*\(4, 5\)"),
    (lambda: CutMix(num_classes=3)(_x(4, 3, 8), torch.rand(4, 3, 2)), r"\(B,\) int ids or \(B, K\).*\(4, 3, 2\)"),
    (lambda: CutMix(num_classes=3)(_x(4, 3, 8), masks=torch.zeros(4, 9, dtype=torch.long)),
     r"dense targets of shape \(4, 8\) or \(4, 1, 8\).*\(4, 9\)"),
    (lambda: CutMix(num_classes=3)(_x(4, 3, 8), masks=torch.zeros(4, 3, 8, dtype=torch.long)),
     r"\(4, 8\) or \(4, 1, 8\).*\(4, 3, 8\)"),
    (lambda: CutMix(num_classes=3)(_x(4, 3, 8), masks=torch.zeros(4, 8)), "integer class ids.*float32"),
    (lambda: CutMix(num_classes=3)(_x(4, 3, 8), masks=torch.full((4, 8), 3)), r"dense ids in \[0, 3\).*1 other value\(s\): \[3\]"),
    (lambda: CutMix(num_classes=3, ignore_index=255)(_x(4, 3, 8), masks=torch.full((4, 8), -2)),
     r"\[0, 3\) or ignore_index=255.*-2"),
    (lambda: MixUp()(_x(4, 3, 8), masks=torch.zeros(4, 8, dtype=torch.long)), "needs num_classes.*None"),
    (lambda: CutMix(pairing="other_class")(_x(4, 3, 8)), "other_class.*labels=None"),
    (lambda: CutMix()(_x(4, 3, 8), params="draw"), "MixParams.*str"),
    (lambda: CutMix()(_x(4, 3, 8), params=CutMix(seed=0).sample(_x(4, 3, 9))), r"spatial shape \(9,\).*\(8,\)"),
    (lambda: CutMix()(_x(4, 3, 8), num_classes=-2), "num_classes.*-2"),
    (lambda: GridMask(fill=0.5)(_x(4, 3, 8, dtype=torch.uint8)), r"uint8.*\[0, 255\].*0.5"),
    (lambda: MixCollate(CutMix(), seed=0)([(_x(3, 4), 0), (_x(3, 4), 1)]), "need num_classes"),
])
def test_call_errors_leave_inputs_untouched(call, match):
    with pytest.raises(MixMaskError, match=match):
        call()


def test_failed_call_changes_nothing():
    x, seg = torch.rand(4, 3, 8), torch.full((4, 8), 7)
    shots = snapshot(x, seg)
    t = CutMix(num_classes=3, seed=0)
    with pytest.raises(MixMaskError):
        t(x, torch.arange(4) % 3, masks=seg)
    assert_untouched([x, seg], shots)
    assert not hasattr(t, "last_params")
