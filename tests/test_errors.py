"""Bad input: one exception class, a message with what was expected and what came, nothing changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_untouched, snapshot

from mixmask import CutMix, FMix, GridMask, MixCollate, MixMaskError, MixParams, MixUp, RandomChoice


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


# -- the bad-input attack: every case refused before any write, on the copy and the in-place path ----

def _batch(b=4, dtype=torch.float32, shape=(3, 8, 8)):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(b, *shape, generator=g) * 255).to(dtype)


def _ids(b=4, dtype=torch.long, high=3):
    return torch.randint(0, high, (b, 8, 8), generator=torch.Generator().manual_seed(1)).to(dtype)


ATTACK = {
    # name: (transform, inputs, labels, masks, expected message)
    "labels out of range": (lambda: CutMix(num_classes=3), _batch, lambda: torch.tensor([0, 1, 3, 2]), None,
                            r"labels in \[0, 3\).*0 to 3"),
    "(B, 1) int labels": (lambda: MixUp(), _batch, lambda: torch.tensor([[2], [0], [1], [1]]), None,
                          r"integer labels of shape \(4, 1\) are ambiguous"),
    "rows summing to 2": (lambda: MixUp(), _batch, lambda: torch.full((4, 3), 2 / 3), None,
                          "rows sum to 1.*row 0 sums to 2"),
    "rows summing to 0": (lambda: MixUp(), _batch, lambda: torch.zeros(4, 3), None, "row 0 sums to 0"),
    "rows holding NaN": (lambda: MixUp(), _batch, lambda: torch.tensor([[1.0, 0, 0]] * 3 + [[float("nan"), 1, 0]]),
                         None, "soft targets >= 0.*nan"),
    "multi-label values of 2": (lambda: MixUp(multi_label=True), _batch, lambda: torch.full((4, 3), 2.0), None,
                                r"multi-label targets in \[0, 1\].*2.0"),
    "one-hot ints with a 2": (lambda: MixUp(), _batch, lambda: torch.tensor([[2, 0, 0]] * 4), None,
                              "one-hot targets 0 or 1"),
    "labels for another batch": (lambda: CutMix(num_classes=3), _batch, lambda: torch.arange(3), None,
                                 r"labels for 4 samples.*\(3,\)"),
    "ignore_index a uint8 map cannot hold": (lambda: CutMix(num_classes=3, ignore_index=-1), _batch, None,
                                             lambda: _ids(dtype=torch.uint8), "ignore_index=-1 cannot be held"),
    "ids out of range": (lambda: CutMix(num_classes=2), _batch, None, _ids, r"dense ids in \[0, 2\).*\[2\]"),
    "float maps": (lambda: CutMix(num_classes=3), _batch, None, lambda: _ids().float(), "integer class ids"),
    "maps of another shape": (lambda: CutMix(num_classes=3), _batch, None, lambda: _ids()[:, :7],
                              r"dense targets of shape \(4, 8, 8\).*\(4, 7, 8\)"),
    "soft maps without num_classes": (lambda: RandomChoice([CutMix(), MixUp()]), _batch, None, _ids,
                                      "needs num_classes"),
    "channels-last looking batch": (lambda: CutMix(), lambda: _batch(shape=(16, 16, 3)), None, None,
                                    "look channels-last"),
    "fill a float16 batch cannot hold": (lambda: GridMask(fill=1e6), lambda: _batch(dtype=torch.float16), None,
                                         None, r"fill value that torch.float16 inputs can hold.*1000000.0"),
    "fill a uint8 batch cannot hold": (lambda: GridMask(fill=0.5), lambda: _batch(dtype=torch.uint8), None, None,
                                       r"uint8.*\[0, 255\].*0.5"),
    "non-finite inputs when validating": (lambda: CutMix(validate=True),
                                          lambda: _batch().index_fill_(0, torch.tensor([2]), float("nan")), None,
                                          None, "finite inputs.*192 NaN"),
}


@pytest.mark.parametrize("path", ["call", "inplace"])
@pytest.mark.parametrize("case", sorted(ATTACK))
def test_bad_input_is_refused_before_any_write(case, path):
    build, inputs, labels, masks, match = ATTACK[case]
    x = inputs()
    y = labels() if labels else None
    seg = masks() if masks else None
    transform = build()
    shots = snapshot(x, y, seg)
    with pytest.raises(MixMaskError, match=match):
        if path == "call":
            transform(x, y, seg)
        else:
            try:  # a draw of the same transform where it can make one, else any draw for the shape
                params = build().sample(x.float())
            except MixMaskError:
                params = CutMix(seed=0, channels_last=False).sample(x.float())
            transform.apply(params, x, y, seg, inplace=True)
    assert_untouched([x, y, seg], shots)
    x_ok = _batch()
    assert torch.equal(transform.sample(x_ok).mask, build().sample(x_ok).mask)  # the stream did not move


def test_float8_inputs_and_foreign_params_get_clear_errors():
    from mixmask.functional import mix_class_targets, mix_dense_targets, mix_inputs

    x = _batch()
    with pytest.raises(MixMaskError, match="uint8 or float16/bfloat16/float32/float64 inputs.*float8"):
        CutMix()(x.to(torch.float8_e4m3fn))
    for kernel, value in ((mix_inputs, x), (mix_class_targets, torch.arange(4)), (mix_dense_targets, _ids())):
        with pytest.raises(MixMaskError, match="params as mixmask.MixParams, but got dict"):
            kernel(value, {"lam": 0.5})


@pytest.mark.parametrize("field, value, match", [
    ("lam", torch.full((4,), 2.0), r"lam must be in \[0, 1\]"),
    ("lam", torch.full((4,), float("nan")), r"lam must be in \[0, 1\]"),
    ("mask", torch.full((4, 8, 8), 2.0), r"weights in \[0, 1\].*2.0"),
    ("lam", torch.full((4,), 0.25), "lam = mask mean.*0.25"),
    ("index", torch.tensor([1, 2, 3, 4]), r"partners in \[0, 4\).*4"),
    ("label_lam", torch.full((4,), -1.0), r"label_lam must be in \[0, 1\]"),
    ("method", torch.tensor([1, -1, 1, 1]), r"method must be CPU ids in \[0, 11\).*-1"),
    ("method", torch.tensor([1, 11, 1, 99]), r"method must be CPU ids in \[0, 11\).*99"),
])
def test_user_built_params_are_checked(field, value, match):
    fields = {"index": torch.tensor([1, 0, 3, 2]), "lam": torch.full((4,), 0.5),
              "mask": torch.full((4, 8, 8), 0.5), "method": torch.ones(4, dtype=torch.long)}
    fields[field] = value
    with pytest.raises(MixMaskError, match=match):
        MixParams(**fields)


def test_numpy_scalars_and_arrays_are_valid_arguments():
    transform = MixUp(alpha=np.float32(0.4), num_classes=np.int64(10), seed=np.int32(3), ignore_index=np.int16(255),
                      p=np.float64(0.5))
    assert transform.num_classes == 10 and transform.seed == 3 and transform.ignore_index == 255
    policy = RandomChoice([MixUp(), CutMix()], weights=np.array([1.0, 3.0]), p=np.float32(0.5))
    assert policy.weights == [0.25, 0.75]
    assert GridMask(cell_size=np.array([0.2, 0.4])).sampler.cell_size == (0.2, 0.4)


@pytest.mark.parametrize("build, match", [
    (lambda: MixUp(multi_label="False"), "multi_label must be True or False.*'False'"),
    (lambda: MixUp(per_sample="no"), "per_sample must be True or False"),
    (lambda: MixUp(channels_last="True"), "channels_last must be True or False"),
    (lambda: MixUp(reformulate=1), "reformulate must be True or False.*1"),
    (lambda: MixUp(alpha="0.4"), "alpha must be a number.*'0.4'"),
    (lambda: CutMix(num_boxes=0), "num_boxes must be an int >= 1.*0"),
    (lambda: CutMix(size_range=(0.5, 0.5)), "size_range must have 0 <= low < high"),
    (lambda: MixCollate(MixUp(), collate_fn="stack"), "callable collate_fn"),
])
def test_flags_and_options_of_the_wrong_type_are_refused(build, match):
    with pytest.raises(MixMaskError, match=match):
        build()


def test_draws_never_fall_back_to_the_global_generator():
    from mixmask.functional import sample_lam, sample_partners

    with pytest.raises(MixMaskError, match="CPU torch.Generator.*None"):
        sample_lam(4, 1.0, None)
    with pytest.raises(MixMaskError, match="CPU torch.Generator.*None"):
        sample_partners(4, None)
    with pytest.raises(MixMaskError, match="CPU torch.Generator"):
        CutMix().sample(_batch(), generator=3)


def test_in_place_apply_with_bad_labels_leaves_the_batch_as_it_was():
    x, transform = _batch(), CutMix(num_classes=3, seed=0)
    params = transform.sample(x)
    shots = snapshot(x)
    with pytest.raises(MixMaskError, match="labels in"):
        transform.apply(params, x, torch.tensor([0, 1, 2, 5]), inplace=True)
    assert_untouched([x], shots)
